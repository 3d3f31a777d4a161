"""`GraphBuilder`: collects neuron groups and weight blocks, then lays them out as index tensors.

Converters never see parameter values: they see *flat indices* into the parameter vector
(the floating state_dict entries flattened and concatenated in state_dict order). The
finished structure says, for every node feature, edge feature and activation argument, which
flat index (or which constant) fills it, so that converting any number of same-architecture
models is one gather.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .errors import ConversionError
from .parameter_graph import NODE_FEATURES, NODE_SPEC
from .vocab import ACTIVATION, EDGE_TYPE, NODE_TYPE

ENCODINGS = ("position", "padded")
BYTES_PER_EDGE = 150  # peak memory of tracing, layout and one graph, per edge (docs/graph.md)
MEMORY_LIMIT_BYTES: int | None = None  # None: half of the machine's physical memory


OUTPUT_HEADS = ("none", "softmax", "log_softmax")


def memory_limit() -> int:
    """Bytes a graph under construction may take (``MEMORY_LIMIT_BYTES``, else half the RAM)."""
    if MEMORY_LIMIT_BYTES is not None:
        return MEMORY_LIMIT_BYTES
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


@dataclass(eq=False)
class NeuronGroup:
    """Consecutive nodes made by one operation: one per output feature or channel.

    ``size`` is ``None`` for the network input until the first layer that reads it says how
    many features it has. ``stage`` tracks what has been applied to the neurons so far
    (``"fresh"`` → ``"norm"`` → ``"sum"`` → ``"act"``) and decides what can still be fused.
    """

    gid: int
    size: int | None
    layer: int
    op: str
    stage: str = "fresh"
    norm: str | None = None
    act: str = "identity"
    act_arg: float | Tensor = 0.0  # a constant, or [size] flat indices of a learned one (PReLU)
    features: dict[str, Tensor] = field(default_factory=dict)  # column -> [size] flat indices
    constant_features: dict[str, float] = field(default_factory=dict)  # column -> constant
    spec: dict[str, float] = field(default_factory=dict)  # NODE_SPEC column -> value
    norm_spec: dict | None = None  # how ``gmn.graph.execute`` normalises (eps, groups, …)
    combine: str = "sum"  # how execute joins the incoming blocks: "sum" or "product"
    input_kind: str = "features"  # the network input: "features", or "ids" (an embedding's)
    input_spatial: int = 0  # the network input: its spatial dimensions, once a layer says
    attention: dict | None = None  # value neurons of an attention: heads, q/k groups, layout
    # a ``token`` group never moves: "positions", its neurons are the first ``size`` positions
    # of a sequence, each the indicator of its position ([1, size, size] when run); "first",
    # the entries of a table of which every position reads the first ([1, 1, size])
    token: str = ""
    start: int = -1  # first node id, set by ``GraphBuilder.finish``

    @property
    def node_type(self) -> str:
        return f"{self.op}+{self.norm}" if self.norm else self.op


@dataclass(eq=False)
class EdgeBlock:
    """Edges ``src[i] → dst[i]`` carrying a kernel of flat indices ``weight[i]`` ([kh, kw]),
    or the constant 1 when ``weight`` is ``None`` (residual and identity edges)."""

    src_group: NeuronGroup
    dst_group: NeuronGroup
    src: Tensor  # [e] local index in src_group
    dst: Tensor  # [e] local index in dst_group
    weight: Tensor | None  # [e, kh, kw] flat indices
    edge_type: str
    reads: tuple = ()  # shape operations between the source neurons and this block (execute)
    op: dict | None = None  # convolution settings (stride, padding, …) for execute
    constant: float = 1.0  # the weight of a block without ``weight``


@dataclass(eq=False)
class Value:
    """A tensor in the network's dataflow: the neurons it lives on and its layout.

    ``exclusive``: nothing else reads these neurons, so an operation applied to the value may
    be recorded on the neurons themselves (a fused norm, an activation, a residual sum).
    ``spatial``: number of spatial dimensions after the channel one (0 for features).
    ``flattened``: spatial positions were flattened into the feature dimension.
    ``reads``: ``(function or method name, args, kwargs)`` applied, in order, to the neurons'
    tensor to get this value (pooling, flatten); ``gmn.graph.execute`` replays them.
    ``tokens``: the tensor is known to be a sequence [B, T, features] (made by a patch
    embedding ``conv(x).flatten(2).transpose(1, 2)`` or a ViT's embeddings), so dimension 1
    indexes tokens.
    """

    group: NeuronGroup
    exclusive: bool = True
    spatial: int = 0
    flattened: bool = False
    reads: tuple = ()  # shape operations applied since the neurons were computed (pooling, …)
    scale: float = 1.0  # a pending multiplication by a constant (folded into an activation)
    scale_param: object = None  # a pending multiplication by a parameter (a ParamTensor)
    scale_divides: bool = False  # ... or a division by it
    singleton: int = 0  # size-1 spatial dimensions left by a global pool, before a flatten
    layout_from: int = 0  # dimensions after the channel one before trailing flatten/squeeze
    scaled_at: str = ""  # where the pending multiplication sits, for error messages
    tokens: bool = False
    channels_last: bool = False  # a map [B, *S, C] (after ``permute(0, 2, 3, 1)``)

    def produced(self, group: NeuronGroup, spatial: int | None = None,
                 singleton: int | None = None) -> Value:
        """The value a layer reading this one produces on ``group``: the same kind of tensor
        (features, tokens, a channels-last map keep their layout; a convolution passes its
        ``spatial``/``singleton``)."""
        keeps_map = self.channels_last or spatial is not None
        return Value(group, spatial=(spatial if spatial is not None else self.spatial)
                     if keeps_map else 0,
                     singleton=(singleton if singleton is not None else self.singleton)
                     if keeps_map else 0,
                     tokens=self.tokens, channels_last=self.channels_last)


@dataclass(frozen=True)
class Axis:
    """One dimension of a parameter tensor indexes the neurons of ``group``; ``inner``
    consecutive entries per neuron (a flattened C×S feature map has ``inner = S``), and the
    whole pattern repeats ``outer`` times (the stacked q, k, v rows of an attention's
    ``in_proj_weight``, whose three groups share one permutation)."""

    gid: int
    inner: int = 1
    outer: int = 1


class GraphBuilder:
    """Accumulates a network's graph structure.

    Args:
        keys: the floating state_dict keys, in order.
        shapes: their shapes.
    """

    def __init__(self, keys: list[str], shapes: list[torch.Size]):
        self.shapes = dict(zip(keys, shapes))
        sizes = [math.prod(s) for s in shapes]
        offsets = torch.tensor([0, *sizes]).cumsum(0).tolist()
        self.offsets = dict(zip(keys, offsets[:-1]))
        self.num_params = offsets[-1]
        self.groups: list[NeuronGroup] = []
        self.blocks: list[EdgeBlock] = []
        self.param_axes: dict[str, tuple[Axis | None, ...]] = {}
        self.ties: list[tuple[int, int]] = []
        self.permutation_blocks: dict[int, int] = {}
        self.fixed: set[int] = set()  # groups whose neurons never move (concatenations)
        self.shared: list[Tensor] = []
        self.metadata: dict = {}
        self.path = ""  # the module being converted, for error messages
        self._edges = 0

    # --- what converters call -------------------------------------------------------------
    def new_group(self, size: int | None, op: str, layer: int) -> NeuronGroup:
        if op not in NODE_TYPE:
            raise ConversionError(f"unknown node type {op!r}; see gmn.graph.vocab.NODE_TYPES")
        group = NeuronGroup(gid=len(self.groups), size=size, layer=layer, op=op)
        self.groups.append(group)
        return group

    def param(self, key: str, axes: tuple[Axis | None, ...], scalar: bool = False) -> Tensor:
        """Flat indices of state_dict entry ``key``, shaped like it; each entry is used once.
        ``scalar``: a 0-d entry is allowed (a learned scale or ω₀)."""
        if key not in self.shapes:
            owner = key.rpartition(".")[0]
            stored = [k for k in self.shapes if k.startswith(f"{owner}.") and "." not in k[
                len(owner) + 1:].replace("parametrizations.", "")] if owner else []
            hint = (f"; module {owner!r} stores {', '.join(stored)} instead: a reparametrisation "
                    "(spectral_norm, weight_norm) computes its weight in a hook or property, "
                    "which a graph of the stored values cannot express; remove it "
                    "(torch.nn.utils.remove_spectral_norm / remove_weight_norm) before "
                    "converting" if stored else "")
            raise ConversionError(f"the network uses parameter {key!r}, not in its state_dict"
                                  + hint)
        if key in self.param_axes:
            raise ConversionError(
                f"parameter {key!r} is used twice (a module called twice shares its weights); "
                "weight sharing is not supported"
            )
        shape = self.shapes[key]
        if len(shape) == 0 and not scalar:
            raise ConversionError(f"parameter {key!r} is 0-d; weights need at least one dimension")
        self.param_axes[key] = axes
        offset = self.offsets[key]
        return torch.arange(offset, offset + math.prod(shape)).reshape(shape)

    def connect(self, src: NeuronGroup, dst: NeuronGroup, weight: Tensor | None,
                edge_type: str, src_idx: Tensor | None = None, dst_idx: Tensor | None = None,
                reads: tuple = (), op: dict | None = None, constant: float = 1.0) -> None:
        """Dense edges from every neuron of ``src`` to every neuron of ``dst``, with
        ``weight`` [dst, src, kh, kw] flat indices; or, with ``weight=None``, the given
        one-to-one pairs ``src_idx[i] → dst_idx[i]`` of constant weight ``constant``.
        ``reads``: the source value's shape operations (``Value.reads``); ``op``: convolution
        settings, both for ``gmn.graph.execute``."""
        if edge_type not in EDGE_TYPE:
            raise ConversionError(f"unknown edge type {edge_type!r}; see gmn.graph.vocab")
        if weight is None:
            self._reserve(len(src_idx))
            block = EdgeBlock(src, dst, src_idx, dst_idx, None, edge_type, reads, op, constant)
        else:
            out, inp, kh, kw = weight.shape
            self._reserve(out * inp * kh * kw)
            dst_idx = torch.arange(out).repeat_interleave(inp)
            src_idx = torch.arange(inp).repeat(out)
            block = EdgeBlock(src, dst, src_idx, dst_idx, weight.reshape(out * inp, kh, kw),
                              edge_type, reads, op)
        self.blocks.append(block)

    def connect_pairs(self, src: NeuronGroup, dst: NeuronGroup, weight: Tensor, edge_type: str,
                      src_idx: Tensor, dst_idx: Tensor, reads: tuple = (),
                      op: dict | None = None) -> None:
        """Edges ``src_idx[i] → dst_idx[i]`` carrying kernels ``weight[i]`` ([e, kh, kw] flat
        indices): a sparse block, e.g. one group of a grouped convolution."""
        self._reserve(weight.numel())
        self.blocks.append(EdgeBlock(src, dst, src_idx, dst_idx, weight, edge_type, reads, op))

    def _reserve(self, edges: int) -> None:
        """Refuse, before allocating, a graph larger than :func:`memory_limit`."""
        self._edges += edges
        needed = self._edges * BYTES_PER_EDGE
        if needed > memory_limit():
            raise ConversionError(
                f"the graph would have at least {self._edges:,} edges (after module "
                f"{self.path or '<root>'!r}), about {needed / 2**30:.1f} GiB to build; the limit "
                f"is {memory_limit() / 2**30:.1f} GiB (gmn.graph.builder.MEMORY_LIMIT_BYTES)"
            )

    def identity(self, src: NeuronGroup, dst: NeuronGroup, edge_type: str, reads: tuple = (),
                 constant: float = 1.0, spatial: int = 0, channels_last: bool = False,
                 weight: Tensor | None = None, offset: int | None = None,
                 reciprocal: bool = False) -> None:
        """One edge of weight ``constant`` (or of the flat indices ``weight`` [size], a learned
        scale) from each neuron of ``src`` to the same neuron of ``dst``, which must then be
        permuted together; or, with an ``offset``, to neuron ``offset + i`` of ``dst`` (a part
        of a concatenation: neither group moves). ``reciprocal``: the target divides by the
        weight (``x / self.std``)."""
        part = offset is not None
        offset = offset or 0
        if not part and src.size != dst.size or offset + src.size > dst.size:
            raise ConversionError(
                f"cannot join {src.size} neurons to {dst.size} neurons one to one"
            )
        index = torch.arange(src.size)
        op = {"spatial": spatial, "channels_last": channels_last, "reciprocal": reciprocal}
        if weight is None:
            self.connect(src, dst, None, edge_type, index, index + offset, reads=reads, op=op,
                         constant=constant)
        else:
            self.connect_pairs(src, dst, weight.reshape(-1, 1, 1), edge_type, index,
                               index + offset, reads=reads, op=op)
        if part:
            self.fixed.update((src.gid, dst.gid))
        else:
            self.ties.append((src.gid, dst.gid))

    def share(self, index: Tensor) -> None:
        """The flat parameter indices ``index`` fill several slots (a scalar scale or slope
        used by every neuron of a group): exempt from the one-slot-per-scalar check."""
        self.shared.append(index.reshape(-1))

    def constrain_permutation(self, group: NeuronGroup, block: int) -> None:
        """The neurons of ``group`` may only be permuted within consecutive blocks of ``block``."""
        previous = self.permutation_blocks.get(group.gid, group.size)
        self.permutation_blocks[group.gid] = math.gcd(previous, block)

    # --- layout ---------------------------------------------------------------------------
    def finish(self, encoding: str, outputs: NeuronGroup, inputs: NeuronGroup) -> dict:
        """Lay the graph out as index tensors (the static part of a ``GraphTemplate``)."""
        if encoding not in ENCODINGS:
            raise ConversionError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if inputs.size is None:
            raise ConversionError("no layer reads the network input")
        constants: dict[float, int] = {}

        def const(value: float) -> int:
            return self.num_params + constants.setdefault(float(value), len(constants))

        zero = const(0.0)
        start = 0
        for group in self.groups:
            group.start = start
            start += group.size
        num_nodes = start

        x_src = torch.full((num_nodes, len(NODE_FEATURES)), zero, dtype=torch.long)
        node_type = torch.empty(num_nodes, dtype=torch.long)
        node_layer = torch.empty(num_nodes, dtype=torch.long)
        node_act = torch.empty(num_nodes, dtype=torch.long)
        act_src = torch.empty(num_nodes, dtype=torch.long)
        node_io_pos = torch.full((num_nodes,), -1, dtype=torch.long)
        for g in self.groups:
            rows = slice(g.start, g.start + g.size)
            node_type[rows] = NODE_TYPE[g.node_type]
            node_layer[rows] = g.layer
            node_act[rows] = ACTIVATION[g.act]
            act_src[rows] = g.act_arg if isinstance(g.act_arg, Tensor) else const(g.act_arg)
            for column, value in g.constant_features.items():
                x_src[rows, NODE_FEATURES.index(column)] = const(value)
            for column, index in g.features.items():
                x_src[rows, NODE_FEATURES.index(column)] = index
        for g in (inputs, outputs, *(g for g in self.groups if g.token)):
            node_io_pos[g.start:g.start + g.size] = torch.arange(g.size)

        kernels = [b.weight.shape[1:] for b in self.blocks if b.weight is not None] or [(1, 1)]
        kh_max = max(k[0] for k in kernels)
        kw_max = max(k[1] for k in kernels)
        sources, targets, types, attrs = [], [], [], []
        for b in self.blocks:
            weight = b.weight
            if weight is None:
                weight = torch.full((len(b.src), 1, 1), const(b.constant), dtype=torch.long)
            e, kh, kw = weight.shape
            if encoding == "position":
                dy = torch.arange(kh, dtype=torch.float64) - (kh - 1) / 2
                dx = torch.arange(kw, dtype=torch.float64) - (kw - 1) / 2
                pos = torch.cartesian_prod(dy, dx)  # [kh*kw, 2]
                pos_idx = torch.tensor([[const(a), const(c)] for a, c in pos.tolist()])
                attr = torch.cat([weight.reshape(e * kh * kw, 1),
                                  pos_idx.repeat(e, 1)], dim=1)
                repeat = kh * kw
            else:
                attr = torch.full((e, kh_max, kw_max), zero, dtype=torch.long)
                oy, ox = (kh_max - kh) // 2, (kw_max - kw) // 2
                attr[:, oy:oy + kh, ox:ox + kw] = weight
                attr = attr.reshape(e, kh_max * kw_max)
                repeat = 1
            sources.append((b.src + b.src_group.start).repeat_interleave(repeat))
            targets.append((b.dst + b.dst_group.start).repeat_interleave(repeat))
            types.append(torch.full((e * repeat,), EDGE_TYPE[b.edge_type], dtype=torch.long))
            attrs.append(attr)
        if not self.blocks:
            raise ConversionError("the network has no weights connecting its neurons")
        edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
        edge_src = torch.cat(attrs)
        self._check_coverage(x_src, edge_src, act_src)
        node_spec = self._node_spec(outputs, num_nodes)
        self.program = self._program(inputs, outputs, [len(s) for s in sources], kh_max, kw_max)
        return dict(
            x_src=x_src,
            edge_src=edge_src,
            constants=torch.tensor(sorted(constants, key=constants.get), dtype=torch.float64),
            edge_index=edge_index,
            edge_type=torch.cat(types),
            edge_layer=node_layer[edge_index[1]],
            node_type=node_type,
            node_layer=node_layer,
            node_io_pos=node_io_pos,
            node_act=node_act,
            act_src=act_src,
            node_spec=node_spec,
        )

    def _node_spec(self, outputs: NeuronGroup, num_nodes: int) -> Tensor:
        """[N, len(NODE_SPEC)] float64: each group's ``spec``, the pooling/padding its incoming
        blocks read through, and the output's offset and head."""
        from .shapes import read_spec  # shapes builds Values: imported here, not at the top

        for block in self.blocks:
            if block.edge_type != "attention":
                for column, value in read_spec(block.reads).items():
                    block.dst_group.spec.setdefault(column, value)
        outputs.spec["output_offset"] = float(self.metadata.get("output_offset", 0.0))
        outputs.spec["output_head"] = float(OUTPUT_HEADS.index(
            self.metadata.get("output_head", "none")))
        spec = torch.zeros(num_nodes, len(NODE_SPEC), dtype=torch.float64)
        for g in self.groups:
            for column, value in g.spec.items():
                spec[g.start:g.start + g.size, NODE_SPEC.index(column)] = value
        return spec

    def _program(self, inputs: NeuronGroup, outputs: NeuronGroup, block_edges: list[int],
                 kh_max: int, kw_max: int) -> dict:
        """What ``gmn.graph.execute`` needs beyond the graph's features: which edge range
        belongs to which block, the shape operations between groups, convolution settings."""
        ends = torch.tensor([0, *block_edges]).cumsum(0).tolist()
        blocks = [dict(src=b.src_group.gid, dst=b.dst_group.gid, start=ends[i], stop=ends[i + 1],
                       edge_type=b.edge_type, reads=b.reads, op=b.op,
                       kernel=tuple(b.weight.shape[1:]) if b.weight is not None else (1, 1))
                  for i, b in enumerate(self.blocks)]
        groups = [dict(start=g.start, size=g.size, norm=g.norm_spec, attention=g.attention,
                       token=g.token, combine=g.combine, input_kind=g.input_kind,
                       learned_act=isinstance(g.act_arg, Tensor)) for g in self.groups]
        return dict(blocks=blocks, groups=groups, input=inputs.gid, output=outputs.gid,
                    output_reads=self.metadata.pop("output_reads", ()), kernel_max=(kh_max, kw_max))

    def _check_coverage(self, x_src: Tensor, edge_src: Tensor, act_src: Tensor) -> None:
        """Every scalar parameter must fill exactly one feature slot (a PReLU's single slope
        fills the activation argument of each neuron it applies to)."""
        used = torch.cat([x_src.reshape(-1), edge_src.reshape(-1), act_src.unique()])
        counts = torch.bincount(used[used < self.num_params], minlength=self.num_params)
        if self.shared:
            shared = torch.cat(self.shared).unique()
            counts[shared] = counts[shared].clamp(max=1)
        bad = torch.nonzero(counts != 1).flatten()
        if len(bad):
            flat = int(bad[0])
            key = max((k for k, o in self.offsets.items() if o <= flat), key=self.offsets.get)
            what = "is not used by the network's forward" if counts[flat] == 0 else "is used twice"
            raise ConversionError(f"state_dict entry {key!r} {what}")
