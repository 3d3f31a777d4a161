"""The arithmetic of a traced network: activations, multiplications, products, additions,
concatenations (a mixin of :class:`gmn.graph.trace._Walker`).

A multiplication by a constant or a parameter is pending until its reader is known: a scaled
activation folds it into its argument (``sin(w0 * x)``), a layer into its weight scale
(``(2π x) @ B``), anything else gets a ``scale`` node group. A product of two tensors is a
``product`` group, an addition a residual edge or a ``sum`` group, a constant or a parameter
added the bias of a ``sum`` group (or position embeddings on ``token`` nodes).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from . import activations as act_table
from .builder import Axis, NeuronGroup, Value
from .errors import ConversionError
from .param_tensors import ParamTensor
from .shapes import LAYOUT, extent, is_number, where


class Arithmetic:
    """Methods of :class:`gmn.graph.trace._Walker` (which provides ``builder``, ``value``,
    ``first``, ``settled``, ``constant``, ``describe``, ``mutate``)."""

    def activation_call(self, node: fx.Node, key, rest: tuple, kwargs: dict) -> Value:
        what = f"operation {self.describe(node)}"
        if key in act_table.CLAMPS:
            return self.clamp(node, rest, kwargs)
        record, argument, inplace = act_table.match_function(key, rest, kwargs, what)
        return self.activation(node, record, argument, inplace)

    def clamp(self, node: fx.Node, rest: tuple, kwargs: dict, target=None) -> Value:
        """``clamp(x, a, b)`` (``F.hardtanh``, ``torch.clamp``, ``nn.Hardtanh``): ``clamp_max``
        after ``clamp_min``, one argument each."""
        low, high, inplace = act_table.clamp_bounds(target or node.target, rest, kwargs,
                                                    f"operation {self.describe(node)}")
        result = None
        for name, bound in (("clamp_min", low), ("clamp_max", high)):
            if bound is not None:
                record = act_table.TABLE[name]
                result = self.activation(node, record, bound, False, chained=result)
        return self.mutate(node, result) if inplace else result

    def activation(self, node: fx.Node, record, argument: float, inplace: bool,
                   module: nn.Module | None = None, chained: Value | None = None) -> Value:
        value = chained if chained is not None else self.first(node, scaled=record.scaled)
        learned = None
        if value.scale_param is not None and value.scale_divides:
            value = self.settled(value, node)
        if value.scale_param is not None:
            if value.scale != 1.0:
                raise ConversionError(f"activation {self.describe(node)} reads a constant and "
                                      "a parameter multiplied together; only one of them is "
                                      "supported as its input scale")
            learned = value.scale_param
        elif value.scale != 1.0:
            argument = argument * value.scale
        group = value.group
        if group.size is None:
            raise ConversionError(f"activation {record.name!r} applied to the raw network input "
                                  f"{where(node)}; a parameter graph's input neurons carry no "
                                  "function")
        # an elementwise function commutes with trailing flatten/squeeze: apply it before them
        cut = len(value.reads)
        while cut and value.reads[cut - 1][0] in LAYOUT:
            cut -= 1
        before, after = value.reads[:cut], value.reads[cut:]
        spatial = value.layout_from if after else extent(value)
        if not (value.exclusive and group.act == "identity" and not before and (
                chained is None)):
            new = self.builder.new_group(group.size, "activation", group.layer + 1)
            self.builder.identity(group, new, "identity", reads=before, spatial=spatial,
                                  channels_last=value.channels_last)
            group = new
        if record.parameter:
            argument = self.learned_argument(node.target, module, record, group, value)
        elif learned is not None:
            argument = self.scale_indices(learned, value, group, node)
        group.act, group.act_arg, group.stage = record.name, argument, "act"
        result = Value(group, True, value.spatial, value.flattened, after,
                       singleton=value.singleton, layout_from=value.layout_from,
                       tokens=value.tokens, channels_last=value.channels_last)
        return self.mutate(node, result) if inplace else result

    def learned_argument(self, path: str, module: nn.Module, record, group: NeuronGroup,
                         value: Value) -> Tensor:
        """[size] flat indices of an activation's parameter (PReLU's slopes): one per neuron,
        moving with it under permutations, or one shared by all neurons."""
        key = f"{path}.{record.parameter}" if path else record.parameter
        count = getattr(module, record.parameter).numel()
        if count == 1:
            return self.builder.param(key, (None,)).expand(group.size)
        if count != group.size or value.tokens or value.flattened:
            raise ConversionError(
                f"{type(module).__name__} {path!r} has {count} parameters for {group.size} "
                "neurons" + (" of a token sequence (they would index its tokens)"
                             if value.tokens else "") + "; one per channel or one is supported")
        return self.builder.param(key, (Axis(group.gid),))

    def multiply(self, node: fx.Node, divide: bool = False) -> Value:
        """``c * x`` and ``x * p`` (a parameter): a pending scale, folded into the next scaled
        activation or recorded as a ``scale`` node group; ``a * b`` of two tensors of the
        network: a ``product`` node group (a gate, squeeze-and-excitation)."""
        left = node.args[0]
        right = node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        operands = [self.env.get(a) if isinstance(a, fx.Node) else a for a in (left, right)]
        tensors = [a for a, v in zip((left, right), operands) if isinstance(v, Value)]
        if len(tensors) == 2:
            if divide:
                raise ConversionError(f"division {self.describe(node)} of two tensors is not "
                                      "supported")
            return self.product(node, *tensors)
        other = operands[1] if tensors[0] is left else operands[0]
        if divide and tensors[0] is not left:
            raise ConversionError(f"division {self.describe(node)} by a tensor of the network "
                                  "is not supported")
        found = self.value(tensors[0], node, scaled=True)
        if found.scale_param is not None and not isinstance(other, ParamTensor):
            found = self.settled(found, node)
        if isinstance(other, ParamTensor):
            if found.scale_param is not None or found.scale != 1.0:
                found = self.settled(found, node)
            return dataclasses.replace(found, scale_param=other, scale_divides=divide,
                                       scaled_at=where(node))
        if not is_number(other):
            raise ConversionError(f"operation {self.describe(node)} multiplies by "
                                  f"{type(other).__name__}; only numbers, parameters and "
                                  "tensors of the network are supported")
        factor = 1.0 / float(other) if divide else float(other)
        return dataclasses.replace(found, scale=found.scale * factor, scaled_at=where(node))

    def product(self, node: fx.Node, left: fx.Node, right: fx.Node) -> Value:
        """The elementwise product of two tensors: a ``product`` group fed one to one by both
        (``product`` edges); a [B, C, 1, 1] gate broadcasts over the positions of [B, C, H, W]."""
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size is None or b.group.size is None:
            raise ConversionError(f"product {self.describe(node)} of the raw network input: its "
                                  "size is not known before a layer reads it; let a layer read "
                                  "the input first")
        big, small = (a, b) if a.spatial >= b.spatial else (b, a)
        same = (a.spatial == b.spatial and a.singleton == b.singleton)
        gate = small.spatial == 0 and small.singleton == big.spatial and not big.singleton
        if a.group.size != b.group.size or a.flattened != b.flattened or not (same or gate) or (
                a.tokens != b.tokens or a.channels_last != b.channels_last):
            raise ConversionError(
                f"product {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or of different layouts) is not supported; only tensors of the same neurons, "
                "or a per-channel gate [B, C, 1, 1] of a map [B, C, H, W], multiply")
        layer = max(a.group.layer, b.group.layer) + 1
        out = self.builder.new_group(a.group.size, "product", layer)
        out.combine = "product"
        for operand in (a, b):
            self.builder.identity(operand.group, out, "product", reads=operand.reads,
                                  spatial=extent(operand), channels_last=operand.channels_last)
        out.stage = "sum"
        return Value(out, True, big.spatial, big.flattened, singleton=big.singleton,
                     tokens=big.tokens, channels_last=big.channels_last)

    def head(self, node: fx.Node, name: str, dim) -> Value:
        """A softmax / log-softmax over the output features: recorded, not a weight."""
        value = self.first(node)
        if not all(u.op == "output" for u in node.users):
            raise ConversionError(f"{name} {self.describe(node)} is only supported as the "
                                  "network's last operation")
        if dim not in (1, -1) or (dim == -1 and value.spatial):
            raise ConversionError(f"{name} {self.describe(node)} must run over the feature "
                                  f"dimension (dim=1 or -1), not dim={dim}")
        self.builder.metadata["output_head"] = name
        reads = (*value.reads, (getattr(F, name), (dim,), {}))
        return Value(value.group, value.exclusive, value.spatial, value.flattened, reads)

    def add(self, node: fx.Node, sign: float = 1.0) -> Value:
        left = node.args[0]
        right = node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        alpha = self.constant(node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1))
        if not is_number(alpha):
            raise ConversionError(f"operation {self.describe(node)}: alpha={alpha!r} is not a "
                                  "number")
        weight = sign * float(alpha)
        operands = [self.env.get(a) if isinstance(a, fx.Node) else a for a in (left, right)]
        tensors = [a for a, v in zip((left, right), operands) if isinstance(v, Value)]
        if len(tensors) == 1:
            other = operands[1] if tensors[0] is left else operands[0]
            if tensors[0] is not left and sign != 1.0:
                return self.subtract_from(node, tensors[0], other, weight)
            if isinstance(other, ParamTensor):
                return self.add_parameter(node, tensors[0], other, weight)
            return self.add_constant(node, tensors[0], weight * other if is_number(other)
                                     else other)
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size != b.group.size or extent(a) != extent(b) or a.flattened or (
                b.flattened) or a.channels_last != b.channels_last:
            raise ConversionError(
                f"addition {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or different layouts) is not supported"
            )
        carriers = [v for v in (a, b) if v.exclusive and v.group.stage in ("fresh", "norm")
                    and not v.reads and v.group.combine == "sum" and (v is a or weight == 1.0)]
        if a.group is not b.group and carriers:
            result = max(carriers, key=lambda v: v.group.layer)
            skip = b if result is a else a
            self.builder.identity(skip.group, result.group, "residual", reads=skip.reads,
                                  constant=weight if skip is b else 1.0, spatial=extent(a),
                                  channels_last=a.channels_last)
            result.group.layer = max(result.group.layer, skip.group.layer + 1)
        else:
            layer = max(a.group.layer, b.group.layer) + 1
            result = Value(self.builder.new_group(a.group.size, "sum", layer), True,
                           a.spatial, a.flattened, singleton=a.singleton,
                           channels_last=a.channels_last)
            self.builder.identity(a.group, result.group, "residual", reads=a.reads,
                                  spatial=extent(a), channels_last=a.channels_last)
            self.builder.identity(b.group, result.group, "residual", reads=b.reads,
                                  constant=weight, spatial=extent(b),
                                  channels_last=b.channels_last)
        result.group.stage = "sum"
        return Value(result.group, True, result.spatial, result.flattened,
                     singleton=result.singleton, tokens=a.tokens or b.tokens,
                     channels_last=a.channels_last)

    def size_input(self, value: Value, count: int, node: fx.Node) -> None:
        """The raw network input's size, given by a per-channel parameter applied to it
        (``(x - self.mean) / self.std``)."""
        if count <= 1:
            raise ConversionError(f"operation {self.describe(node)} on the raw network input "
                                  "before any layer has read it: its size is not known")
        value.group.size = count

    def new_sum(self, value: Value, node: fx.Node) -> NeuronGroup:
        """A ``sum`` group fed one to one by ``value``'s neurons (to carry more terms)."""
        if value.group.size is None:
            raise ConversionError(f"operation {self.describe(node)} on the raw network input "
                                  "before any layer has read it: its size is not known")
        out = self.builder.new_group(value.group.size, "sum", value.group.layer + 1)
        self.builder.identity(value.group, out, "identity", reads=value.reads,
                              spatial=extent(value), channels_last=value.channels_last)
        out.stage = "sum"
        return out

    def add_constant(self, node: fx.Node, tensor: fx.Node, constant) -> Value:
        """A constant added to the network's output is architecture: recorded, not a weight.
        Inside the network it is the constant bias of a ``sum`` group."""
        if not is_number(constant):
            raise ConversionError(
                f"operation {self.describe(node)} adds a {type(constant).__name__} that is not "
                "a number, a parameter or a buffer (a tensor constant); register it as a buffer")
        found = self.value(tensor, node)
        if found.group.size is None:  # preprocessing of the raw input: replayed, like a pad
            return dataclasses.replace(found, reads=(*found.reads,
                                                     (torch.add, (float(constant),), {})))
        if all(u.op == "output" for u in node.users) and not found.reads:
            offset = self.builder.metadata.get("output_offset", 0.0) + float(constant)
            self.builder.metadata["output_offset"] = offset
            return Value(found.group, found.exclusive, found.spatial, found.flattened,
                         singleton=found.singleton, tokens=found.tokens,
                         channels_last=found.channels_last)
        out = self.new_sum(found, node)
        out.constant_features["bias"] = float(constant)
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=extent(found))

    def subtract_from(self, node: fx.Node, tensor: fx.Node, constant, weight: float) -> Value:
        """``c - x`` (a highway gate's ``1 - t``): a ``sum`` group fed by ``x`` through
        ``scale`` edges of weight -1, with the constant bias ``c``."""
        if not is_number(constant):
            raise ConversionError(f"operation {self.describe(node)} subtracts a tensor of the "
                                  "network from a parameter or tensor; only from a number")
        found = self.value(tensor, node)
        if found.group.size is None:  # preprocessing of the raw input: replayed, like a pad
            return dataclasses.replace(found, reads=(*found.reads, (torch.mul, (weight,), {}),
                                                     (torch.add, (float(constant),), {})))
        out = self.builder.new_group(found.group.size, "sum", found.group.layer + 1)
        self.builder.identity(found.group, out, "scale", reads=found.reads, constant=weight,
                              spatial=extent(found), channels_last=found.channels_last)
        out.constant_features["bias"] = float(constant)
        out.stage = "sum"
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=extent(found))

    def concatenate(self, node: fx.Node) -> Value:
        """``torch.cat`` of tensors of the network along the feature dimension (Fourier
        features ``cat([sin(Bx), cos(Bx)], -1)``): a ``concat`` group fed one to one, each part
        at its offset (these neurons do not move under permutations). Parameters first along
        the tokens of a sequence (``cat((cls_token.expand(B, -1, -1), x), dim=1)``): class
        tokens, ``token`` nodes sending ``token_embedding`` edges to the first positions."""
        parts = self.constant(node.args[0]) if node.args else self.constant(
            node.kwargs["tensors"])
        arg_nodes = node.args[0] if node.args else node.kwargs["tensors"]
        dim = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0))
        values = [p for p in parts if isinstance(p, Value)]
        params = [p for p in parts if isinstance(p, ParamTensor)]
        if params and len(values) == 1 and parts[-1] is values[0] and dim in (1, -2):
            return self.class_tokens(node, params, arg_nodes[-1])
        if params or any(not isinstance(p, Value) for p in parts):
            raise ConversionError(f"concatenation {self.describe(node)} mixes tensors of the "
                                  "network with parameters or constants; only class tokens "
                                  "before a token sequence (dim=1) are supported")
        read = [self.value(a, node) for a in arg_nodes]
        first = read[0]
        rank = 3 if first.tokens else 2 + extent(first)
        channel_dim = rank - 1 if (first.channels_last or not extent(first)) else 1
        layouts = {(v.spatial, v.singleton, v.flattened, v.tokens, v.channels_last) for v in read}
        if len(layouts) != 1 or not isinstance(dim, int) or dim % rank != channel_dim or (
                first.flattened) or any(v.group.size is None for v in read):
            raise ConversionError(f"concatenation {self.describe(node)} along dim {dim} is not "
                                  "supported; only along the feature/channel dimension of "
                                  "values of one layout")
        total = sum(v.group.size for v in read)
        layer = max(v.group.layer for v in read) + 1
        out = self.builder.new_group(total, "concat", layer)
        offset = 0
        for v in read:
            self.builder.identity(v.group, out, "identity", reads=v.reads, spatial=extent(v),
                                  channels_last=v.channels_last, offset=offset)
            offset += v.group.size
        out.stage = "sum"
        return Value(out, True, first.spatial, singleton=first.singleton, tokens=first.tokens,
                     channels_last=first.channels_last)
