"""`gmn.graph.execute`: run a parameter graph as the network it describes.

Every weight, bias, normalisation parameter, activation and connection is read from the
graph itself: ``edge_index`` places each edge's weight (and, in the ``"position"`` encoding,
its kernel offset ``(dy, dx)``) into a dense kernel, ``x`` gives biases and norm parameters,
``node_act``/``node_act_arg`` the activations. What the graph's features do not carry is read
from the template's ``program`` (recorded while tracing): which edges form one layer, the
convolution settings (stride, padding, dilation), the parameter-free shape operations between
layers (pooling, flatten) and the epsilon of each norm. So a graph edited in graph space runs
without the original class, and a converter that records a wrong topology is caught: the
result differs from the network's.

A node computes ``act(norm(Σ weighted inputs + bias) + Σ residual inputs)``, evaluated per
neuron group in dependency order (BatchNorm in eval mode, with the running statistics).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch

from .activations import by_index
from .converters import same_padding
from .errors import ConversionError
from .param_tensors import apply_transform
from .parameter_graph import NODE_SPEC

BIAS_SCALE = NODE_SPEC.index("bias_scale")


def execute(graph, inputs: Tensor) -> Tensor:
    """Evaluate ``graph`` on ``inputs``.

    Args:
        graph: a :class:`ParameterGraph`, or a ``Batch`` of them (any templates).
        inputs: what the network reads, e.g. [B, in_features] or [B, C, H, W].

    Returns:
        the network's output; for a ``Batch`` of G graphs, the G outputs stacked: [G, *output].
    """
    if isinstance(graph, Batch):
        return torch.stack([_run(graph.get_example(i), inputs) for i in range(graph.num_graphs)])
    return _run(graph, inputs)


def _channel_dim(op: dict) -> int:
    return 1 if op.get("spatial") and not op.get("channels_last") else -1


def _fit_tokens(part: Tensor, length: int) -> Tensor:
    """A token group's contribution [1, k, D] padded with zeros (or cut) to ``length``."""
    if part.shape[-2] < length:
        return F.pad(part, (0, 0, 0, length - part.shape[-2]))
    return part[..., :length, :]


def _replay(tensor: Tensor, reads: tuple) -> Tensor:
    for function, args, kwargs in reads:
        if isinstance(function, str):
            tensor = getattr(tensor, function)(*args, **kwargs)
        else:
            tensor = function(tensor, *args, **kwargs)
    return tensor


class _Runner:
    def __init__(self, graph):
        self.graph = graph
        template = getattr(graph, "template", None)
        if isinstance(template, list):
            template = template[0]
        if template is None or not hasattr(template, "program"):
            raise ConversionError("the graph carries no template; execute needs the template it "
                                  "was converted with")
        custom = template.metadata.get("custom_converters")
        if custom:
            raise ConversionError(f"module {custom[0]!r} was converted by a user-registered "
                                  "converter; execute only knows the built-in layers")
        self.template = template
        self.program = template.program
        self.groups = self.program["groups"]
        self.into: dict[int, list[dict]] = {}
        for block in self.program["blocks"]:
            self.into.setdefault(block["dst"], []).append(block)
        if graph.num_nodes != template.num_nodes or graph.edge_index.shape[1] != (
                template.num_edges):
            raise ConversionError(f"graph has {graph.num_nodes} nodes and "
                                  f"{graph.edge_index.shape[1]} edges; its template has "
                                  f"{template.num_nodes} and {template.num_edges}")

    def order(self) -> list[int]:
        """Neuron groups in dependency order."""
        done, order = set(), []
        pending = list(range(len(self.groups)))
        while pending:
            ready = [g for g in pending
                     if all(b["src"] in done for b in self.into.get(g, []))
                     and all(a in done for a in self.attention_sources(g))]
            if not ready:
                raise ConversionError("the graph has a cycle")
            for g in ready:
                done.add(g)
                order.append(g)
            pending = [g for g in pending if g not in done]
        return order

    def attention_sources(self, g: int) -> tuple[int, ...]:
        spec = self.groups[g]["attention"]
        return (spec["query"], spec["key"]) if spec else ()

    def kernel(self, block: dict, src_size: int, values: Tensor | None = None) -> Tensor:
        """The block's weights as a dense [dst, src, kh, kw] kernel, placed by ``edge_index``
        (``values``: place these [E] instead of the weights, e.g. ones for a mask)."""
        g = self.graph
        edges = slice(block["start"], block["stop"])
        src = g.edge_index[0, edges] - self.groups[block["src"]]["start"]
        dst = g.edge_index[1, edges] - self.groups[block["dst"]]["start"]
        attr = g.edge_attr[edges]
        kh, kw = block["kernel"]
        size = self.groups[block["dst"]]["size"]
        weight = attr.new_zeros(size, src_size, kh, kw)
        if self.template.encoding == "position":
            ky = torch.round(attr[:, 1] + (kh - 1) / 2).long()
            kx = torch.round(attr[:, 2] + (kw - 1) / 2).long()
            weight[dst, src, ky, kx] = attr[:, 0] if values is None else values.to(attr)
        else:
            kh_max, kw_max = self.program["kernel_max"]
            oy, ox = (kh_max - kh) // 2, (kw_max - kw) // 2
            padded = attr.reshape(-1, kh_max, kw_max)[:, oy:oy + kh, ox:ox + kw]
            weight[dst, src] = padded if values is None else values.to(attr).view(-1, 1, 1)
        return weight

    def used_kernel(self, block: dict, src_size: int) -> Tensor:
        """The kernel as the layer uses it: the stored weights, transformed (scaled or
        standardised per output channel over its real entries) when the layer does."""
        weight = self.kernel(block, src_size)
        transform = (block["op"] or {}).get("transform")
        if transform is None:
            return weight
        mask = None
        if transform[0] == "standardize":  # over the kernel's real entries only
            ones = weight.new_ones(block["stop"] - block["start"])
            mask = self.kernel(block, src_size, ones).bool()
        return apply_transform(transform, weight, mask)

    def contribution(self, block: dict, source: Tensor) -> Tensor:
        op = block["op"] or {}
        kind = block["edge_type"]
        weight = self.used_kernel(block, self.groups[block["src"]]["size"])
        if kind == "embedding":  # source: the ids; the kernel [D, V, 1, 1]
            return F.embedding(source, weight[:, :, 0, 0].T)
        if kind in ("linear", "linear_from_spatial", "token_embedding"):
            return F.linear(source, weight.reshape(weight.shape[0], -1))
        if kind == "conv":
            spatial = op["spatial"]
            if spatial == 1:
                weight = weight[:, :, 0]
            padding = op["padding"]
            if op["padding_mode"] != "zeros":
                if isinstance(padding, str):  # 'same': the odd pixel goes after
                    pairs = same_padding(tuple(weight.shape[2:]), op["dilation"])
                else:
                    pairs = tuple((p, p) for p in padding)
                pad = [p for pair in reversed(pairs) for p in pair]
                source = F.pad(source, pad, mode=op["padding_mode"])
                padding = 0
            conv = F.conv1d if spatial == 1 else F.conv2d
            return conv(source, weight, None, op["stride"], padding, op["dilation"])
        if kind == "conv_transpose":  # the kernel [out, in, ...] as torch stores it: [in, out]
            weight = weight.transpose(0, 1)
            if op["spatial"] == 1:
                return F.conv_transpose1d(source, weight[:, :, 0], None, op["stride"],
                                          op["padding"], op["output_padding"], 1, op["dilation"])
            return F.conv_transpose2d(source, weight, None, op["stride"], op["padding"],
                                      op["output_padding"], 1, op["dilation"])
        # one-to-one edges (identity, residual, scale, product): the weight each target receives
        dim = _channel_dim(op)
        scale = weight.sum(dim=(1, 2, 3))  # [dst]: the one weight each target receives
        if op.get("reciprocal"):
            scale = 1.0 / scale
        src_of = weight.sum(dim=(2, 3)).ne(0).float().argmax(dim=1)
        moved = source.index_select(dim, src_of)
        shape = [1] * moved.dim()
        shape[dim] = -1
        return moved * scale.view(shape)

    def norm(self, tensor: Tensor, spec: dict, nodes: slice, channel_dim: int) -> Tensor:
        """γ and β are the node features (a norm without them has the constants 1 and 0)."""
        x = self.graph.x[nodes]
        weight, bias, kind, eps = x[:, 1], x[:, 2], spec["kind"], spec["eps"]
        if kind == "layernorm":
            return F.layer_norm(tensor, (x.shape[0],), weight, bias, eps)
        if kind == "rmsnorm":
            return F.rms_norm(tensor, (x.shape[0],), weight, eps)
        moved = tensor if channel_dim == 1 else tensor.movedim(-1, 1)
        if kind == "batchnorm":
            out = F.batch_norm(moved, x[:, 3], x[:, 4], weight, bias, training=False, eps=eps)
        elif kind == "batchnorm_batchstats":
            out = F.batch_norm(moved, None, None, weight, bias, training=True, eps=eps)
        elif kind == "instancenorm":
            out = F.instance_norm(moved, None, None, weight, bias, use_input_stats=True, eps=eps)
        else:
            out = F.group_norm(moved, spec["groups"], weight, bias, eps)
        return out if channel_dim == 1 else out.movedim(1, -1)

    def attention(self, values: dict, spec: dict, v: Tensor) -> Tensor:
        q, k = values[spec["query"]], values[spec["key"]]
        unbatched = q.dim() == 2
        if unbatched:
            q, k, v = q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)
        elif not spec["batch_first"]:
            q, k, v = (t.transpose(0, 1) for t in (q, k, v))
        b, length, embed = q.shape
        heads = spec["heads"]

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, -1, heads, embed // heads).transpose(1, 2)

        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(embed // heads)
        if spec.get("causal"):
            future = torch.ones(length, length, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        out = (scores.softmax(dim=-1) @ split(v)).transpose(1, 2).reshape(b, length, embed)
        if unbatched:
            return out[0]
        return out if spec["batch_first"] else out.transpose(0, 1)

    @staticmethod
    def activate(total: Tensor, acts: Tensor, args: Tensor, shape: list[int], gid: int,
                 learned: bool) -> Tensor:
        """One activation per group; its argument per neuron (``args`` [size], viewed as
        ``shape`` to broadcast over the neurons' dimension) when learned (PReLU, a learned
        ω₀)."""
        record = by_index(int(acts[0]))
        if bool((acts != acts[0]).any()) or not learned and bool((args != args[0]).any()):
            raise ConversionError(f"neuron group {gid} mixes activations; execute evaluates "
                                  "one activation per layer")
        return record.fn(total, args.view(shape) if learned else float(args[0]))

    def run(self, inputs: Tensor) -> Tensor:
        g = self.graph
        values: dict[int, Tensor] = {}
        for gid in self.order():
            spec = self.groups[gid]
            if gid == self.program["input"]:
                ids = spec.get("input_kind") == "ids"
                values[gid] = inputs if ids else inputs.to(g.x.dtype)
                continue
            if spec["token"]:  # each neuron the indicator of its position: [1, size, size], or
                eye = torch.eye(spec["size"], dtype=g.x.dtype, device=g.x.device)  # of row 0
                values[gid] = (eye if spec["token"] == "positions" else eye[:1]).unsqueeze(0)
                continue
            nodes = slice(spec["start"], spec["start"] + spec["size"])
            parts, residual, channel_dim, tokens = [], None, -1, []
            for block in self.into.get(gid, []):
                if block["edge_type"] == "attention":
                    continue
                part = self.contribution(block, _replay(values[block["src"]], block["reads"]))
                token = self.groups[block["src"]]["token"]
                if token == "positions":
                    tokens.append(part)
                    continue
                channel_dim = _channel_dim(block["op"] or {})
                if block["edge_type"] == "residual":
                    residual = part if residual is None else residual + part
                else:
                    parts.append(part)
            if spec["combine"] == "product":
                total = parts[0] * parts[1]
            else:
                total = parts[0] if parts else torch.zeros_like(residual) if (
                    residual is not None) else None
                for part in parts[1:]:
                    total = total + part
                for part in tokens:
                    total = part if total is None else total + _fit_tokens(part, total.shape[-2])
            shape = [1] * total.dim()
            shape[channel_dim] = -1
            bias = g.x[nodes, 0]
            scale = g.node_spec[nodes, BIAS_SCALE]
            bias = torch.where(scale != 0, bias * scale, bias)
            total = total + bias.view(shape)
            if spec["norm"]:
                total = self.norm(total, spec["norm"], nodes, channel_dim)
            if spec["attention"]:
                total = self.attention(values, spec["attention"], total)
            if residual is not None:
                total = total + residual
            values[gid] = self.activate(total, g.node_act[nodes], g.node_act_arg[nodes], shape,
                                        gid, spec["learned_act"])
        out = _replay(values[self.program["output"]], self.program["output_reads"])
        offset = self.template.metadata.get("output_offset", 0.0)
        return out + offset if offset else out


def _run(graph, inputs: Tensor) -> Tensor:
    return _Runner(graph).run(inputs)
