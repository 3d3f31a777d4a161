"""Parameter-free shape operations of a traced network, recorded on the edges that read them.

Pooling, flatten, reshapes, squeezes, transposes and permutes between layouts, padding,
upsampling, token selection and means: each becomes an entry ``(function, args, kwargs)`` of
the reading edges' ``reads`` (``gmn.graph.execute`` replays them) and updates the
:class:`Value`'s layout. What a parameter graph cannot express (moving features into
positions, mixing tokens) raises :class:`ConversionError` naming the operation and its module.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from . import activations as act_table
from .builder import NeuronGroup, Value
from .errors import ConversionError


def where(node: fx.Node) -> str:
    """``"in module 'block.1' (UserSine)"`` from fx's module stack, or ``"in forward"``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "in the top-level forward"
    path, module_type = list(stack.values())[-1]
    name = getattr(module_type, "__name__", str(module_type))
    return f"in module {path!r} ({name})"


def extent(value: Value) -> int:
    """Dimensions after the batch one besides the channels (as far as layout matters)."""
    return value.spatial + value.singleton


def channel_position(value: Value) -> int:
    """Where the channel dimension is, counted from the end."""
    if value.channels_last or not extent(value):
        return -1
    return -(1 + extent(value))


def channel_shape(value: Value, group: NeuronGroup) -> tuple:
    """The shape of one factor per channel of ``value`` (``(C, 1, 1)`` for a map)."""
    return (group.size,) + (1,) * (-1 - channel_position(value))


def is_number(value) -> bool:
    return act_table.is_finite_number(value)


class Positions:
    """``torch.arange(T)`` of a sequence's length T (possibly unsqueezed or expanded): the
    position ids 0..T-1 an ``nn.Embedding`` of positions reads (nanoGPT's ``wpe(pos)``)."""


class Shape:
    """A non-tensor value derived from a tensor's shape (``x.shape``, ``x.size(1)``);
    ``batch``: it is the batch size (``x.size(0)``, ``x.shape[0]``)."""

    def __init__(self, batch: bool = False):
        self.batch = batch


def flatten_to(x: Tensor, features: int) -> Tensor:
    """``x.view(-1, features)`` as recorded: [B, C, *S] → [B, features]. It is a flatten only
    when C·ΠS = ``features`` (the spatial size is not traced), so another size raises."""
    out = torch.flatten(x, 1)
    if out.shape[1] != features:
        raise ConversionError(f"x.view(-1, {features}) was recorded as a flatten, which it is "
                              f"only for inputs whose C·H·W is {features}; this input gives "
                              f"{out.shape[1]}")
    return out


def add_singletons(x: Tensor, count: int) -> Tensor:
    """[B, C] → [B, C, 1, …, 1] with ``count`` size-1 dimensions (an SE gate to multiply a
    map: ``y.view(b, c, 1, 1)``, ``y[:, :, None, None]``, ``y.unsqueeze(-1)``)."""
    return x.reshape(*x.shape[:2], *([1] * count))


def to_channels_last(x: Tensor) -> Tensor:
    """[B, C, *S] → [B, *S, C]."""
    return x.movedim(1, -1)


def to_channels_first(x: Tensor) -> Tensor:
    """[B, *S, C] → [B, C, *S]."""
    return x.movedim(-1, 1)


def prepend_tokens(x: Tensor, count: int) -> Tensor:
    """[B, T, D] → [B, T + count, D], ``count`` zero tokens first (where class tokens go)."""
    return F.pad(x, (0, 0, count, 0))


def tf_same_pad(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int]) -> Tensor:
    """TensorFlow's "SAME" padding of a map [B, C, H, W] before a convolution, computed from
    the input's size (MobileNetV2's ``apply_tf_padding``)."""
    pads = []
    for size, k, s, d in zip(x.shape[-1:-3:-1], kernel[::-1], stride[::-1], dilation[::-1]):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2 * d, (total - total // 2) * d]
    return F.pad(x, pads)


LAYOUT = (torch.flatten, torch.squeeze, flatten_to)  # commute with elementwise functions
POOL_MODULES = {
    nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d, nn.AvgPool1d: F.avg_pool1d,
    nn.AvgPool2d: F.avg_pool2d, nn.AdaptiveAvgPool1d: F.adaptive_avg_pool1d,
    nn.AdaptiveAvgPool2d: F.adaptive_avg_pool2d, nn.AdaptiveMaxPool1d: F.adaptive_max_pool1d,
    nn.AdaptiveMaxPool2d: F.adaptive_max_pool2d,
}
POOL_SETTINGS = {  # the functional arguments of each pooling module, in order
    nn.MaxPool1d: ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    nn.MaxPool2d: ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    nn.AvgPool1d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    nn.AvgPool2d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                   "divisor_override"),
}
LOCAL_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d}
ADAPTIVE_POOL_FUNCTIONS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d,
                           F.adaptive_max_pool2d}
PAD_MODULES = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
               nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d,
               nn.ReplicationPad2d, nn.CircularPad1d, nn.CircularPad2d)
TRANSPOSES = {torch.transpose, "transpose", torch.permute, "permute", "movedim",
              torch.movedim}


class ShapeOps:
    """The shape operations of :class:`gmn.graph.trace._Walker` (a mixin: it provides
    ``first``, ``constant``, ``describe`` and ``alias``)."""

    def sizes_free(self, arguments, node: fx.Node) -> None:
        """Refuse a shape operation whose settings are a tensor's size (not traced)."""
        found: list = []

        def visit(a) -> None:
            if isinstance(a, (tuple, list)):
                for b in a:
                    visit(b)
            elif isinstance(a, dict):
                visit(list(a.values()))
            elif isinstance(a, (Shape, Value)):
                found.append(a)

        visit(arguments)
        if found:
            raise ConversionError(f"operation {self.describe(node)} takes a tensor's size as a "
                                  "setting; sizes are not traced (only the batch size is): "
                                  "give it fixed numbers")

    def shaped(self, value: Value, reads_entry, **layout) -> Value:
        fields = dict(spatial=value.spatial, flattened=value.flattened, singleton=value.singleton,
                      layout_from=value.layout_from, tokens=value.tokens,
                      channels_last=value.channels_last)
        if reads_entry[0] in LAYOUT and not (value.reads and value.reads[-1][0] in LAYOUT):
            fields["layout_from"] = value.spatial + value.singleton
        fields.update(layout)
        return Value(value.group, value.exclusive, reads=(*value.reads, reads_entry), **fields)

    def flatten(self, value: Value, start_dim: int, node: fx.Node, features: int | None = None
                ) -> Value:
        """From dimension 1: features (``features``: the size ``x.view(-1, features)`` gives,
        checked when run); from dimension 2 of a map: its spatial dimensions merged into one."""
        if value.channels_last:
            raise ConversionError(f"flatten {self.describe(node)} of a channels-last map is not "
                                  "supported; permute it back to [B, C, H, W] first")
        if start_dim == 2 and value.spatial and not value.singleton and features is None:
            return self.shaped(value, (torch.flatten, (2,), {}), spatial=1)
        if start_dim != 1 or value.tokens:
            raise ConversionError(f"flatten {self.describe(node)} from dimension {start_dim} is "
                                  "not supported: only from dimension 1 (2 of a feature map), "
                                  "and never across the tokens of a sequence")
        read = (torch.flatten, (1,), {}) if features is None else (flatten_to, (features,), {})
        return self.shaped(value, read, spatial=0, singleton=0,
                           flattened=value.flattened or value.spatial > 0)

    def reshape(self, node: fx.Node) -> Value:
        """``x.view(x.size(0), -1)`` and friends: a flatten from dimension 1. ``x.view(-1, N)``
        (CNN-zoo style) is a flatten when N = C·H·W; N must be a whole number of positions
        per channel, and ``execute`` checks the rest (the spatial size is not traced).
        ``x.view(B, C, -1)`` of a map merges its spatial dimensions."""
        value = self.first(node)
        shape = self.constant(node.args[1:]) if len(node.args) > 1 else self.constant(
            node.kwargs.get("shape", ()))
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        batch_first = bool(shape) and (shape[0] == -1 or isinstance(shape[0], Shape))
        if len(shape) > 2 and batch_first and all(d == 1 for d in shape[2:]) and (
                shape[1] == value.group.size or isinstance(shape[1], Shape)):
            return self.singletons(value, len(shape) - 2, node)
        if len(shape) == 3 and isinstance(shape[0], Shape) and shape[2] == -1 and (
                shape[1] == value.group.size and value.spatial and not value.singleton):
            self.alias(node)
            return self.flatten(value, 2, node)
        features = shape[1] if len(shape) == 2 else None
        exact = batch_first and isinstance(shape[0], Shape) and features == -1
        sized = batch_first and type(features) is int and features > 0
        if not (exact or sized):
            raise ConversionError(f"reshape {self.describe(node)} to {_shown(shape)} is not "
                                  "supported; only x.view(x.size(0), -1), x.view(-1, C*H*W), "
                                  "x.view(B, C, -1) and torch.flatten(x, 1) are")
        if sized and value.group.size and features % value.group.size:
            raise ConversionError(
                f"reshape {self.describe(node)} to {features} features is no flatten: its "
                f"input has {value.group.size} channels, and {features} is not a multiple")
        if sized and value.group.size == features and not (
                value.spatial or value.singleton or value.tokens):
            self.alias(node)  # x.view(-1, D) of features [B, D]: nothing changes
            return value
        self.alias(node)
        return self.flatten(value, 1, node, features if sized else None)

    def transpose(self, node: fx.Node) -> Value:
        """Layout changes between the layouts a graph knows: a map [B, C, *S] and its
        channels-last form [B, *S, C] (``permute(0, 2, 3, 1)`` and back, as ConvNeXt writes
        it), and a patch embedding's ``x.flatten(2).transpose(1, 2)`` (a map [B, C, L]
        becomes the token sequence [B, L, C])."""
        value = self.first(node)
        dims = self.constant(tuple(node.args[1:]) or tuple(node.kwargs.values()))
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        key = node.target
        rank = 3 if value.tokens else 2 + value.spatial + value.singleton
        order = _permutation(key, dims, rank)
        self.alias(node)
        if order == (0, 2, 1) and value.tokens:  # tokens [B, T, D] -> a map [B, D, T]
            return self.shaped(value, (torch.transpose, (1, 2), {}), spatial=1, tokens=False)
        if order is not None and not value.flattened and (value.spatial or value.singleton):
            if (not value.channels_last and rank == 3 and order == (0, 2, 1)
                    and not value.singleton):  # a map [B, C, L] -> tokens [B, L, C]
                return self.shaped(value, (torch.transpose, (1, 2), {}), spatial=0, tokens=True)
            last = (0, *range(2, rank), 1)
            first = (0, rank - 1, *range(1, rank - 1))
            if not value.channels_last and order == last:
                return self.shaped(value, (to_channels_last, (), {}), channels_last=True)
            if value.channels_last and order == first:
                return self.shaped(value, (to_channels_first, (), {}), channels_last=False)
        why = ("only a map [B, C, *S] to its channels-last form [B, *S, C] and back, a "
               "patch embedding's x.flatten(2).transpose(1, 2), and a token sequence [B, T, D] "
               "to [B, D, T] and back, are")
        raise ConversionError(f"{_name(key)} {self.describe(node)} with dims {dims} is not "
                              f"supported: {why}")

    def squeeze(self, node: fx.Node) -> Value:
        """``x.squeeze(-1)`` after a global pool: drops singleton spatial dimensions."""
        value = self.first(node)
        dims = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        if dims is None:
            raise ConversionError(
                f"squeeze {self.describe(node)} without dims also drops a batch of one; write "
                "x.flatten(1) or squeeze the spatial dims explicitly (x.squeeze(-1))")
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if tuple(dims) == (-1,) and value.group.size == 1 and not value.spatial and all(
                u.op == "output" for u in node.users):  # a one-output head: [B, 1] -> [B]
            self.alias(node)
            return self.shaped(value, (torch.squeeze, (-1,), {}))
        rank = value.spatial + value.singleton + 2
        resolved = sorted({d % rank for d in dims if isinstance(d, int)})
        if value.channels_last or not resolved or resolved[0] < 2 + value.spatial or len(
                resolved) != len(dims):
            raise ConversionError(f"squeeze {self.describe(node)} over dims {dims} is not "
                                  "supported; only the size-1 dimensions a global pool leaves "
                                  "may go")
        self.alias(node)
        return self.shaped(value, (torch.squeeze, (tuple(resolved),), {}),
                           singleton=value.singleton - len(resolved))

    def singletons(self, value: Value, count: int, node: fx.Node) -> Value:
        """Features [B, C] as [B, C, 1, …, 1]: :func:`add_singletons`."""
        if value.spatial or value.singleton or value.flattened or value.tokens or (
                value.channels_last):
            raise ConversionError(f"{self.describe(node)} adds size-1 dimensions to a tensor "
                                  "that is not features [B, C]; not supported")
        self.alias(node)
        return self.shaped(value, (add_singletons, (count,), {}), singleton=count)

    def unsqueeze(self, node: fx.Node) -> Value:
        """``y.unsqueeze(-1)`` / ``y.unsqueeze(2)`` of features [B, C] (or of a [B, C, 1])."""
        value = self.first(node)
        dim = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        rank = 2 + value.singleton
        if dim not in (-1, rank) or value.spatial or value.flattened or value.tokens:
            raise ConversionError(f"unsqueeze {self.describe(node)} at dim {dim} is not "
                                  "supported; only trailing size-1 dimensions of features "
                                  "[B, C] (a gate for a map) are")
        self.alias(node)
        return self.shaped(value, (add_singletons, (value.singleton + 1,), {}),
                           singleton=value.singleton + 1)

    def select_token(self, node: fx.Node) -> Value:
        """``x[:, i]`` (ViT's class token ``x[:, 0, :]``) of a sequence known to be [B, T, D]:
        the features of one token; ``y[:, :, None, None]`` of features [B, C]: size-1
        dimensions (:meth:`singletons`)."""
        value = self.first(node)
        index = self.constant(node.args[1])
        index = index if isinstance(index, tuple) else (index,)
        every = slice(None)
        if len(index) > 2 and index[:2] == (every, every) and all(i is None for i in index[2:]):
            return self.singletons(value, len(index) - 2, node)
        if not (value.tokens and len(index) in (2, 3) and index[0] == every
                and type(index[1]) is int and index[2:] in ((), (every,))):
            raise ConversionError(f"indexing {self.describe(node)} with {_shown(index)} is not "
                                  "supported; only x[:, i] of a token sequence [B, T, D] (after "
                                  "a patch embedding) is")
        self.alias(node)
        return self.shaped(value, (operator.getitem, ((every, index[1]),), {}), tokens=False)

    def local_pool(self, value: Value, function, args: tuple, kwargs: dict, node: fx.Node
                   ) -> Value:
        self.sizes_free((args, kwargs), node)
        if _raw_input(value):
            return self.shaped(value, (function, tuple(args), dict(kwargs)))
        if not value.spatial or value.channels_last:
            raise ConversionError(f"{_name(function)} {self.describe(node)} reads features or a "
                                  "channels-last map, not a map [B, C, *S]")
        return self.shaped(value, (function, tuple(args), dict(kwargs)))

    def adaptive_pool(self, value: Value, function, size, node: fx.Node) -> Value:
        self.sizes_free(size, node)
        if not value.spatial or value.channels_last:
            raise ConversionError(f"{_name(function)} {self.describe(node)} reads features or a "
                                  "channels-last map, not a map [B, C, *S]")
        sizes = size if isinstance(size, (tuple, list)) else (size,)
        if all(s == 1 for s in sizes):  # a global pool: features, with size-1 dims left
            return self.shaped(value, (function, (size,), {}), spatial=0,
                               singleton=value.spatial)
        return self.shaped(value, (function, (size,), {}))

    def pad(self, value: Value, pads, mode: str, fill, node: fx.Node) -> Value:
        """``F.pad`` / a pad module over the spatial dimensions of a map [B, C, *S]."""
        self.sizes_free(pads, node)
        pads = tuple(int(p) for p in pads)
        if _raw_input(value):  # its layout is known once a layer reads it
            return self.shaped(value, (F.pad, (pads,), {"mode": mode, "value": fill}))
        if not value.spatial or value.channels_last or len(pads) > 2 * value.spatial:
            raise ConversionError(f"padding {self.describe(node)} by {pads} is only supported "
                                  "over the spatial dimensions of a map [B, C, *S]")
        return self.shaped(value, (F.pad, (pads,), {"mode": mode, "value": fill}))

    def tf_pad(self, value: Value, args: tuple, node: fx.Node) -> Value:
        """TensorFlow "SAME" padding (:func:`tf_same_pad`), replayed from the input's size."""
        if not (_raw_input(value) or value.spatial == 2 and not value.channels_last):
            raise ConversionError(f"padding {self.describe(node)} reads a map [B, C, H, W]")
        return self.shaped(value, (tf_same_pad, tuple(args), {}))

    def upsample(self, value: Value, kwargs: dict, node: fx.Node) -> Value:
        """``F.interpolate`` / ``nn.Upsample`` of a map, replayed as it is."""
        self.sizes_free(kwargs, node)
        if _raw_input(value):
            return self.shaped(value, (F.interpolate, (), kwargs))
        if not value.spatial or value.channels_last:
            raise ConversionError(f"interpolation {self.describe(node)} reads features, not a "
                                  "map [B, C, *S]")
        return self.shaped(value, (F.interpolate, (), kwargs))

    def reduce(self, node: fx.Node, key) -> Value:
        """A mean or max over all spatial dimensions is global pooling; a mean over the token
        dimension of a sequence of features keeps the features: ``dim=1`` of a sequence known
        to be [B, T, D] (``Value.tokens``), or ``dim=-2`` (the rank of the network input is
        not traced, so there ``dim=1`` could be the features)."""
        value = self.first(node)
        dims = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        keepdim = self.constant(node.kwargs.get("keepdim",
                                                node.args[2] if len(node.args) > 2 else False))
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        function = {"amax": torch.amax, "sum": torch.sum}.get(getattr(key, "__name__", key),
                                                               torch.mean)
        over_tokens = value.tokens and len(dims) == 1 and dims[0] in (1, -2)
        if value.spatial == 0 and not keepdim and (over_tokens or all(
                isinstance(d, int) and d < -1 for d in dims)):
            return self.shaped(value, (function, (tuple(dims),), {}), tokens=False)
        rank = value.spatial + 2
        resolved = sorted({d % rank for d in dims if isinstance(d, int)})
        spatial_dims = list(range(1, rank - 1)) if value.channels_last else list(range(2, rank))
        if value.spatial == 0 or resolved != spatial_dims:
            raise ConversionError(
                f"reduction {self.describe(node)} over dims {dims} is not supported; only a "
                "mean/max over all spatial dimensions of a map, or over the tokens of a "
                "sequence: dim=1 where it is known to be [B, T, D] (after a patch embedding "
                "x.flatten(2).transpose(1, 2)), else written dim=-2")
        return self.shaped(value, (function, (tuple(dims),), {"keepdim": bool(keepdim)}),
                           spatial=0, singleton=value.spatial if keepdim else 0,
                           channels_last=False)


# pooling functions a block may read through, by their ``read_pool`` code in ``node_spec``
POOL_KINDS = {F.max_pool1d: 1, F.max_pool2d: 1, F.avg_pool1d: 2, F.avg_pool2d: 2,
              F.adaptive_avg_pool1d: 3, F.adaptive_avg_pool2d: 3, torch.mean: 3,
              F.adaptive_max_pool1d: 4, F.adaptive_max_pool2d: 4, torch.amax: 4,
              F.interpolate: 5, torch.sum: 6}


def _first_number(value) -> float:
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return float(value) if isinstance(value, (int, float)) and value is not None else 0.0


def read_spec(reads: tuple) -> dict[str, float]:
    """The ``node_spec`` read columns of a block's shape operations: the first pooling (its
    kind, size and stride; a global mean or max has size 0) and the total padding (F.pad)."""
    spec: dict[str, float] = {}
    for function, args, kwargs in reads:
        kind = POOL_KINDS.get(function)
        if kind and "read_pool" not in spec:
            global_reduction = function in (torch.mean, torch.amax, torch.sum)
            spec["read_pool"] = float(kind)
            spec["read_size"] = 0.0 if global_reduction else _first_number(
                args[0] if args else kwargs.get("kernel_size", kwargs.get(
                    "output_size", kwargs.get("scale_factor", kwargs.get("size")))))
            stride = args[1] if len(args) > 1 else kwargs.get("stride")
            spec["read_stride"] = 0.0 if global_reduction else _first_number(stride)
        if function is F.pad:
            spec["read_pad"] = spec.get("read_pad", 0.0) + float(sum(args[0]))
        if function in (torch.mul, torch.add):  # preprocessing of the raw input: x·a + b
            scale, offset = spec.get("read_scale", 1.0), spec.get("read_offset", 0.0)
            if function is torch.mul:
                scale, offset = scale * args[0], offset * args[0]
            else:
                offset += args[0]
            spec["read_scale"], spec["read_offset"] = scale, offset
        if function is tf_same_pad:  # the padding of an input whose size the stride divides
            kernel, stride = args[0], args[1]
            spec["read_pad"] = spec.get("read_pad", 0.0) + float(
                sum(max(k - s, 0) for k, s in zip(kernel, stride)))
    return spec


def _raw_input(value: Value) -> bool:
    """The network input before any layer has said what it is (its size and layout)."""
    return value.group.op == "input" and value.group.size is None


def _permutation(key, dims: tuple, rank: int) -> tuple[int, ...] | None:
    """The dimension order a transpose/permute/movedim produces, or ``None``."""
    if not all(isinstance(d, int) for d in dims):
        return None
    order = list(range(rank))
    if key in (torch.transpose, "transpose") and len(dims) == 2:
        a, b = (d % rank for d in dims)
        order[a], order[b] = order[b], order[a]
    elif key in (torch.permute, "permute") and len(dims) == rank:
        order = [d % rank for d in dims]
    elif key in (torch.movedim, "movedim") and len(dims) == 2:
        source, target = (d % rank for d in dims)
        order.insert(target, order.pop(source))
    else:
        return None
    return tuple(order)


def _name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _shown(values) -> str:
    return "(" + ", ".join("<batch size>" if isinstance(v, Shape) and v.batch else
                           "<a size>" if isinstance(v, Shape) else repr(v)
                           for v in values) + ")"
