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
from .errors import ConversionError


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


def _channel_dim(spatial: int) -> int:
    return 1 if spatial else -1


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

    def kernel(self, block: dict, src_size: int) -> Tensor:
        """The block's weights as a dense [dst, src, kh, kw] kernel, placed by ``edge_index``."""
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
            weight[dst, src, ky, kx] = attr[:, 0]
        else:
            kh_max, kw_max = self.program["kernel_max"]
            oy, ox = (kh_max - kh) // 2, (kw_max - kw) // 2
            padded = attr.reshape(-1, kh_max, kw_max)[:, oy:oy + kh, ox:ox + kw]
            weight[dst, src] = padded
        return weight

    def contribution(self, block: dict, source: Tensor) -> Tensor:
        op = block["op"] or {}
        kind = block["edge_type"]
        weight = self.kernel(block, self.groups[block["src"]]["size"])
        if kind in ("linear", "linear_from_spatial", "token_embedding"):
            return F.linear(source, weight.reshape(weight.shape[0], -1))
        if kind == "conv":
            spatial = op["spatial"]
            if spatial == 1:
                weight = weight[:, :, 0]
            padding = op["padding"]
            if op["padding_mode"] != "zeros":
                if isinstance(padding, str):
                    raise ConversionError("padding='same' with a non-zero padding mode is not "
                                          "supported by execute")
                pad = [p for p in reversed(padding) for _ in range(2)]
                source = F.pad(source, pad, mode=op["padding_mode"])
                padding = 0
            conv = F.conv1d if spatial == 1 else F.conv2d
            return conv(source, weight, None, op["stride"], padding, op["dilation"])
        # identity / residual: one-to-one edges of constant weight (in the graph's features)
        dim = _channel_dim(op.get("spatial", 0))
        scale = weight.sum(dim=(1, 2, 3))  # [dst]: the one weight each target receives
        src_of = weight.sum(dim=(2, 3)).ne(0).float().argmax(dim=1)
        moved = source.index_select(dim, src_of)
        shape = [1] * moved.dim()
        shape[dim] = -1
        return moved * scale.view(shape)

    def norm(self, tensor: Tensor, spec: dict, nodes: slice, spatial: int) -> Tensor:
        x = self.graph.x[nodes]
        weight = x[:, 1] if spec["affine"] else None
        bias = x[:, 2] if spec["bias"] else None
        if spec["kind"] == "layernorm":
            return F.layer_norm(tensor, (x.shape[0],), weight, bias, spec["eps"])
        moved = tensor if spatial else tensor.movedim(-1, 1)
        if spec["kind"] == "batchnorm":
            stats = (x[:, 3], x[:, 4]) if spec["stats"] else (None, None)
            out = F.batch_norm(moved, *stats, weight, bias, training=not spec["stats"],
                               eps=spec["eps"])
        else:
            out = F.group_norm(moved, spec["groups"], weight, bias, spec["eps"])
        return out if spatial else out.movedim(1, -1)

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
        out = (scores.softmax(dim=-1) @ split(v)).transpose(1, 2).reshape(b, length, embed)
        if unbatched:
            return out[0]
        return out if spec["batch_first"] else out.transpose(0, 1)

    @staticmethod
    def activate(total: Tensor, acts: Tensor, args: Tensor, shape: list[int], gid: int
                 ) -> Tensor:
        """One activation per group; its argument per neuron (``args`` [size], viewed as
        ``shape`` to broadcast over the neurons' dimension) when learned (PReLU)."""
        record = by_index(int(acts[0]))
        if bool((acts != acts[0]).any()) or not record.parameter and bool(
                (args != args[0]).any()):
            raise ConversionError(f"neuron group {gid} mixes activations; execute evaluates "
                                  "one activation per layer")
        return record.fn(total, args.view(shape) if record.parameter else float(args[0]))

    def run(self, inputs: Tensor) -> Tensor:
        g = self.graph
        values: dict[int, Tensor] = {}
        for gid in self.order():
            spec = self.groups[gid]
            if gid == self.program["input"]:
                values[gid] = inputs.to(g.x.dtype)
                continue
            if spec["onehot"]:  # token indicators [1, length, size]
                eye = torch.eye(spec["onehot"], dtype=g.x.dtype, device=g.x.device)
                values[gid] = eye[:, :spec["size"]].unsqueeze(0)
                continue
            nodes = slice(spec["start"], spec["start"] + spec["size"])
            total, residual, spatial = None, None, 0
            for block in self.into.get(gid, []):
                if block["edge_type"] == "attention":
                    continue
                part = self.contribution(block, _replay(values[block["src"]], block["reads"]))
                op = block["op"] or {}
                spatial = op.get("spatial", 0)
                if block["edge_type"] == "residual":
                    residual = part if residual is None else residual + part
                else:
                    total = part if total is None else total + part
            if total is None:
                total = torch.zeros_like(residual)
            shape = [1] * total.dim()
            shape[_channel_dim(spatial)] = -1
            total = total + g.x[nodes, 0].view(shape)
            if spec["norm"]:
                total = self.norm(total, spec["norm"], nodes, spatial)
            if spec["attention"]:
                total = self.attention(values, spec["attention"], total)
            if residual is not None:
                total = total + residual
            values[gid] = self.activate(total, g.node_act[nodes], g.node_act_arg[nodes], shape,
                                        gid)
        out = _replay(values[self.program["output"]], self.program["output_reads"])
        offset = self.template.metadata.get("output_offset", 0.0)
        return out + offset if offset else out


def _run(graph, inputs: Tensor) -> Tensor:
    return _Runner(graph).run(inputs)
