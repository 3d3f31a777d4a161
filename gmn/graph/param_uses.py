"""Parameters and buffers used in a traced network's ``forward`` (a mixin of
:class:`gmn.graph.trace._Walker`).

Functional layers on a module's own parameters (``F.linear(x, self.weight, self.bias)``, the
norms, ``F.embedding``), with the weight identified by :func:`gmn.graph.param_tensors.identify`
(stored, transposed, scaled, standardised); ``x @ self.B``; a parameter scaling neurons
(layer scale, a learned ω₀) or added to them (a bias, position embeddings); class tokens
concatenated before a token sequence.
"""

from __future__ import annotations

import dataclasses
import operator

import torch
import torch.nn.functional as F
from torch import Tensor, fx

from . import converters
from .builder import Axis, NeuronGroup, Value
from .converters import Norm, Weight
from .errors import ConversionError
from .param_tensors import ParamTensor, identify
from .shapes import channel_position, channel_shape, extent, prepend_tokens, where

MATMUL = {torch.matmul, operator.matmul, torch.mm, "matmul", "mm"}
FUNCTIONAL_LAYERS = {  # functional layers on parameters, with their argument names
    F.linear: ("input", "weight", "bias"),
    F.conv1d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.conv2d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.layer_norm: ("input", "normalized_shape", "weight", "bias", "eps"),
    F.rms_norm: ("input", "normalized_shape", "weight", "eps"),
    F.group_norm: ("input", "num_groups", "weight", "bias", "eps"),
    F.batch_norm: ("input", "running_mean", "running_var", "weight", "bias", "training",
                   "momentum", "eps"),
    F.instance_norm: ("input", "running_mean", "running_var", "weight", "bias",
                      "use_input_stats", "momentum", "eps"),
    F.embedding: ("input", "weight", "padding_idx", "max_norm"),
    F.prelu: ("input", "weight"),
}
DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "eps": 1e-5,
            "weight": None, "running_mean": None, "running_var": None, "training": False,
            "momentum": 0.1, "use_input_stats": True, "padding_idx": None, "max_norm": None}
DEFAULTS_OF = {F.rms_norm: {"eps": None}}  # where a function's default differs


class ParamUses:
    """Methods of :class:`gmn.graph.trace._Walker` (which provides ``builder``, ``model``,
    ``env``, ``value``, ``first``, ``first_node``, ``bind``, ``constant``, ``describe``,
    ``new_sum``, ``size_input``)."""

    def scale_indices(self, tensor: ParamTensor, value: Value, group: NeuronGroup,
                      node: fx.Node) -> Tensor:
        """[size] flat indices of a parameter multiplying the neurons of ``value`` (one per
        channel, broadcast along the channel dimension, or one for all)."""
        found = identify(tensor, self.model, f"the factor {tensor.keys[0]!r} "
                                             f"{where(node)}")
        if found.transform is not None or found.transposed:
            raise ConversionError(f"the factor {found.key!r} {where(node)} is transformed "
                                  "before use; only a stored parameter can scale neurons")
        shape = tuple(tensor.value.shape)
        count = tensor.value.numel()
        if count == 1:
            index = self.builder.param(found.key, (None,) * len(shape), scalar=True)
            self.builder.share(index)
            return index.reshape(1).expand(group.size)
        channel = channel_position(value)
        trimmed = shape[next((i for i, s in enumerate(shape) if s != 1), len(shape)):]
        if count != group.size or len(trimmed) != -channel or (
                value.flattened or value.tokens and channel != -1):
            raise ConversionError(
                f"{found.key!r} of shape {shape} multiplies {group.size} neurons "
                f"{where(node)}; one factor per channel (shape {channel_shape(value, group)}) or "
                "one for all is supported")
        axes = [None] * len(shape)
        axes[len(shape) + channel] = Axis(group.gid)
        return self.builder.param(found.key, tuple(axes)).reshape(-1)

    def add_parameter(self, node: fx.Node, tensor: fx.Node, param: ParamTensor,
                      weight: float, token: str = "positions") -> Value:
        """``x + p``: a learned bias (one value per channel) on a ``sum`` group, or, for
        ``p`` of shape [1, T, D] / [T, D] on a token sequence, position embeddings: ``token``
        nodes sending ``token_embedding`` edges (ViT's ``x + self.pos_embed``). ``token="first"``:
        every position reads the table's first row (:func:`add_first_row`)."""
        found = self.value(tensor, node)
        shape = tuple(param.value.shape)
        what = f"{param.keys[0]!r} added {where(node)}"
        if found.group.size is None and token == "positions":
            self.size_input(found, shape[-1] if shape else 1, node)
        identified = identify(param, self.model, what)
        if identified.transform is not None or identified.transposed:
            raise ConversionError(f"{what} is transformed before use; only a stored parameter "
                                  "can be added")
        size = found.group.size
        out = self.new_sum(found, node)
        trimmed = shape[next((i for i, s in enumerate(shape) if s != 1), len(shape)):]
        channel = channel_position(found)
        if weight not in (1.0, -1.0):
            raise ConversionError(f"{what} with alpha={weight}: not supported")
        if len(trimmed) == -channel and shape[channel] == size and not found.flattened and (
                token == "positions"):
            axes = [None] * len(shape)
            axes[len(shape) + channel] = Axis(out.gid)
            out.features["bias"] = self.builder.param(identified.key, tuple(axes)).reshape(-1)
            out.spec["bias_scale"] = weight if weight != 1.0 else 0.0
        elif len(shape) in (2, 3) and shape[-1] == size and (len(shape) == 2 or shape[0] == 1) \
                and not found.spatial and weight == 1.0:
            count = shape[-2]
            tokens = self.builder.new_group(count, "token", 0)
            tokens.token = token
            axes = (None, Axis(out.gid)) if len(shape) == 2 else (None, None, Axis(out.gid))
            index = self.builder.param(identified.key, axes).reshape(count, size)
            self.builder.connect(tokens, out, index.T.reshape(size, count, 1, 1),
                                 "token_embedding", op=dict(spatial=0, channels_last=False))
            return Value(out, tokens=True)
        else:
            raise ConversionError(
                f"{what} has shape {shape}; a value of {size} neurons takes one bias per "
                f"channel (shape {channel_shape(found, found.group)}) or, on a token "
                f"sequence, position embeddings [1, T, {size}]")
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=extent(found))

    def class_tokens(self, node: fx.Node, params: list[ParamTensor], sequence: fx.Node
                     ) -> Value:
        value = self.value(sequence, node)
        size = value.group.size
        if value.spatial or value.flattened or (size is None):
            raise ConversionError(f"concatenation {self.describe(node)}: class tokens go before "
                                  "a token sequence [B, T, D]")
        counts = []
        for p in params:
            shape = tuple(p.value.shape)
            if len(shape) != 3 or shape[0] != 1 or shape[2] != size:
                raise ConversionError(f"class token {p.keys[0]!r} {where(node)} has shape "
                                      f"{shape}; [1, k, {size}] (expanded to the batch) is "
                                      "supported")
            counts.append(shape[1])
        total = sum(counts)
        out = self.builder.new_group(size, "sum", value.group.layer + 1)
        self.builder.identity(value.group, out, "identity",
                              reads=(*value.reads, (prepend_tokens, (total,), {})))
        tokens = self.builder.new_group(total, "token", 0)
        tokens.token = "positions"
        offset = 0
        for p, count in zip(params, counts):
            found = identify(p, self.model, f"class token {p.keys[0]!r} {where(node)}")
            stored = tuple(self.builder.shapes[found.key])
            if found.transform is not None or found.transposed or stored != (1, count, size):
                raise ConversionError(f"class token {found.key!r} {where(node)} must be a "
                                      f"stored [1, {count}, {size}] parameter, expanded")
            index = self.builder.param(found.key, (None, None, Axis(out.gid)))[0]  # [k, D]
            src = torch.arange(offset, offset + count).repeat_interleave(size)
            dst = torch.arange(size).repeat(count)
            self.builder.connect_pairs(tokens, out, index.reshape(-1, 1, 1), "token_embedding",
                                       src, dst, op=dict(spatial=0, channels_last=False))
            offset += count
        out.stage = "sum"
        return Value(out, tokens=True)

    def matmul(self, node: fx.Node) -> Value:
        """``x @ W`` with ``W`` a parameter or buffer [in, out] (possibly ``self.W.T``): a
        linear layer (Fourier features ``x @ self.B``)."""
        left, right = node.args[0], node.args[1]
        weight = self.env.get(right)
        if isinstance(weight, Tensor):
            raise ConversionError(f"operation {self.describe(node)} multiplies by a tensor the "
                                  "state_dict does not hold (a non-persistent buffer or a "
                                  "constant); register it with register_buffer(persistent=True)")
        if not isinstance(weight, ParamTensor) or not isinstance(self.env.get(left), Value):
            raise ConversionError(f"operation {self.describe(node)} multiplies two tensors of "
                                  "the network (attention written by hand?); only x @ W with a "
                                  "parameter or buffer W is supported (use nn.MultiheadAttention "
                                  "for attention)")
        found = identify(weight, self.model, f"the matrix {weight.keys[0]!r} {where(node)}")
        if weight.value.dim() != 2:
            raise ConversionError(f"the matrix {found.key!r} {where(node)} has shape "
                                  f"{tuple(weight.value.shape)}; a 2-D [in, out] is supported")
        value, used = self.folded(node, Weight(found.key, not found.transposed, found.transform))
        inputs, outputs = weight.value.shape
        return converters.linear(self.builder, self.builder.path, value, inputs, outputs, used,
                                 None)

    def folded(self, node: fx.Node, weight: Weight) -> tuple[Value, Weight]:
        """The input of a weighted layer and its weight, a pending constant multiplication of
        the input folded into the weight (:func:`converters.folded`); a multiplication by a
        parameter, or of a standardised weight, is a scale node."""
        value = self.first(node, scaled=True)
        if value.scale_param is not None or weight.transform is not None and (
                weight.transform[0] != "scale"):
            return self.first(node), weight
        return converters.folded(value, weight)

    def functional_layer(self, node: fx.Node, key) -> Value:
        """``F.linear(x, self.weight, self.bias)`` and the other functional layers, reading
        parameters (possibly transformed: see :func:`identify`) — what a subclass of
        ``nn.Linear``/``nn.Conv2d``/a norm with its own ``forward`` computes."""
        bound = self.bind(node, FUNCTIONAL_LAYERS[key])
        path = self.builder.path
        name = getattr(key, "__name__", str(key))

        def weight(arg_name: str, shape=None, required=True) -> Weight | None:
            arg = bound[arg_name]
            tensor = self.env.get(arg) if isinstance(arg, fx.Node) else None
            if arg is None and not required:
                return None
            if not isinstance(tensor, ParamTensor):
                raise ConversionError(f"{name} {self.describe(node)}: its {arg_name} must be a "
                                      "parameter or buffer of the network, got "
                                      f"{type(tensor if tensor is not None else arg).__name__}")
            found = identify(tensor, self.model, f"the {arg_name} of {name} {where(node)}",
                             shape)
            return Weight(found.key, found.transposed, found.transform)

        def stored(w: Weight) -> tuple[int, ...]:
            shape = tuple(self.builder.shapes[w.key])
            return shape[::-1] if w.transposed else shape

        if key is F.linear:
            value, w = self.folded(node, weight("weight"))
            out_features, in_features = stored(w)
            bias = weight("bias", required=False)
            self.check_bias(bias, node)
            return converters.linear(self.builder, path, value, in_features, out_features, w,
                                     bias)
        if key in (F.conv1d, F.conv2d):
            value, w = self.folded(node, weight("weight"))
            if w.transposed:
                raise ConversionError(f"{name} {self.describe(node)}: a transposed kernel")
            bias = weight("bias", required=False)
            self.check_bias(bias, node)
            return converters.conv(self.builder, path, value, w, bias, stored(w),
                                   bound["stride"], bound["padding"], bound["dilation"],
                                   bound["groups"])
        value = self.first(node)
        if key is F.embedding:
            if bound["max_norm"] is not None:
                raise ConversionError(f"{name} {self.describe(node)} with max_norm")
            w = weight("weight")
            if w.transform is not None or w.transposed:
                raise ConversionError(f"{name} {self.describe(node)}: a transformed table")
            return converters.embedding(self.builder, path, value, w, stored(w))
        if key is F.prelu:
            raise ConversionError(f"{name} {self.describe(node)}: use nn.PReLU")
        return self.functional_norm(node, key, bound, value, weight)

    def model_device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def model_dtype(self) -> torch.dtype:
        return next((p.dtype for p in self.model.parameters()), torch.get_default_dtype())

    def check_bias(self, bias: Weight | None, node: fx.Node) -> None:
        if bias is not None and (bias.transposed or bias.transform is not None and (
                bias.transform[0] != "scale")):
            raise ConversionError(f"the bias of {self.describe(node)} is transformed; only a "
                                  "constant scale of a stored bias is supported")

    def functional_norm(self, node: fx.Node, key, bound: dict, value: Value, weight) -> Value:
        name = key.__name__
        keys = {}
        for arg_name in ("weight", "bias", "running_mean", "running_var"):
            if arg_name in bound:
                found = weight(arg_name, required=False)
                if found is not None and (found.transform is not None or found.transposed):
                    raise ConversionError(f"the {arg_name} of {name} {self.describe(node)} is "
                                          "transformed before use; not supported")
                keys[arg_name] = found.key if found is not None else None
        if key in (F.layer_norm, F.rms_norm):
            shape = tuple(bound["normalized_shape"])
            if len(shape) != 1 or (value.spatial and not value.channels_last):
                raise ConversionError(f"{name} {self.describe(node)} over {shape}: only over "
                                      "the feature dimension (the last one) is supported")
            kind = "layernorm" if key is F.layer_norm else "rmsnorm"
            eps = bound["eps"]
            if eps is None:  # rms_norm: the machine epsilon of the input's dtype
                eps = torch.finfo(self.model_dtype()).eps
            return converters.normalise(self.builder, self.builder.path, value,
                                        Norm(kind, shape[0], eps, **keys))
        channels = value.group.size
        if key is F.group_norm:
            out = converters.normalise(self.builder, self.builder.path, value, Norm(
                "groupnorm", channels, bound["eps"], groups=bound["num_groups"], **keys))
            self.builder.constrain_permutation(out.group, channels // bound["num_groups"])
            return out
        statistics = bound["training"] if key is F.batch_norm else bound["use_input_stats"]
        if statistics:  # running statistics passed in are updated, not used: left unused
            kind = "batchnorm_batchstats" if key is F.batch_norm else "instancenorm"
            keys["running_mean"] = keys["running_var"] = None
        else:
            kind = "batchnorm"
        return converters.normalise(self.builder, self.builder.path, value,
                                    Norm(kind, channels, bound["eps"], **keys))
