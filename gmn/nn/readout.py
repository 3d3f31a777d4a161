"""Readouts: node, edge and graph states -> one vector per graph.

Pooling names (``GMN(readout=...)``): ``node_mean|sum|max``, ``edge_mean|sum|max``,
``output_mean|sum|max`` (over output neurons only), ``attention`` (learned attention over
nodes), ``global`` (the graph state of a GMN with ``use_global=True``) and
``edge_bilinear`` (:class:`BilinearEdgePooling`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmn.nn.context import GraphContext
from gmn.nn.state import GraphState
from gmn.scatter import scatter

REDUCTIONS = ("mean", "sum", "max")
POOLINGS = (
    *(f"{over}_{reduce}" for over in ("node", "edge", "output") for reduce in REDUCTIONS),
    "attention",
    "global",
    "edge_bilinear",
)


def pool_output_neurons(h: Tensor, ctx: GraphContext, reduce: str) -> Tensor:
    """Reduce the states of output neurons per graph: [N, d] -> [B, d].

    Uses masks rather than boolean indexing, so shapes stay static (``torch.compile``).
    """
    mask = ctx.is_output.unsqueeze(-1)
    if reduce == "max":
        masked = torch.where(mask, h, torch.full_like(h, float("-inf")))
        return scatter(masked, ctx.batch, ctx.num_graphs, "max")
    total = scatter(h * mask, ctx.batch, ctx.num_graphs, "sum")
    if reduce == "sum":
        return total
    count = scatter(mask.to(h.dtype), ctx.batch, ctx.num_graphs, "sum")
    return total / count.clamp_min(1)


class AttentionPooling(nn.Module):
    """Multi-head attention pooling over the nodes of each graph.

    ``out_g = concat_k sum_{i in g} softmax_{i in g}(w_k · h_i) V_k h_i``.

    Shapes: ``forward(h [N, d], ctx) -> [B, d]``; ``d`` must divide by ``heads``.
    """

    def __init__(self, *, dim: int, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention pooling: dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.score = nn.Linear(dim, heads)
        self.value = nn.Linear(dim, dim)

    def forward(self, h: Tensor, ctx: GraphContext) -> Tensor:
        score = self.score(h)  # [N, heads]
        score = score - scatter(score, ctx.batch, ctx.num_graphs, "max")[ctx.batch].detach()
        weight = score.exp()
        weight = weight / scatter(weight, ctx.batch, ctx.num_graphs, "sum")[ctx.batch]
        value = self.value(h).unflatten(-1, (self.heads, -1))  # [N, heads, d / heads]
        pooled = scatter(weight.unsqueeze(-1) * value, ctx.batch, ctx.num_graphs, "sum")
        return pooled.flatten(1)


class BilinearEdgePooling(nn.Module):
    """``out_g = mean_{i->j in g} (Q h_j) ⊙ P(r_ij ⊗ [h_i, 1])``, ``width`` wide, with
    ``r_ij = R e_ij`` (``channels`` scalars per edge).

    With aligned (canonically embedded) neurons this is a read-out of the edges that is
    linear in each edge's scalars ``r_ij`` and weighs them by a bilinear form of the states of
    the edge's two ends, of rank ``width``: a linear read-out of a 32→32 layer's aligned
    weights for 10 classes needs a rank above the edge state's width. It is computed node by
    node: ``m_j = Σ_{i->j} r_ij ⊗ [h_i, 1]`` ([N, channels, d + 1], one scatter of
    [E, channels·(d + 1)]), then ``Σ_j (Q h_j) ⊙ P m_j`` per graph, so no [E, width] tensor
    is ever built.

    Shapes: ``forward(h [N, d], e [E, edge_dim], ctx) -> [B, width]``.
    """

    def __init__(self, *, dim: int, edge_dim: int, width: int, channels: int = 1):
        super().__init__()
        self.channels = channels
        self.edge = nn.Linear(edge_dim, channels)
        self.source = nn.Linear(channels * (dim + 1), width, bias=False)
        self.target = nn.Linear(dim, width)

    def forward(self, h: Tensor, e: Tensor, ctx: GraphContext) -> Tensor:
        source, target = ctx.edge_index
        r = self.edge(e)  # [E, c]
        ones = h.new_ones(h.shape[0], 1)
        h1 = torch.cat([h, ones], 1)  # [N, d + 1]
        per_edge = (r.unsqueeze(-1) * h1.index_select(0, source).unsqueeze(1)).flatten(1)
        m = scatter(per_edge, target, h.shape[0], "sum")  # [N, c (d + 1)]
        value = self.target(h) * self.source(m)  # [N, width]
        total = scatter(value, ctx.batch, ctx.num_graphs, "sum")
        edges = scatter(h.new_ones(len(source), 1), ctx.edge_batch, ctx.num_graphs, "sum")
        return total / edges.clamp_min(1)


class Readout(nn.Module):
    """Concatenation of the named poolings: [B, out_dim].

    ``out_dim`` is ``dim`` per node, output, attention or global pooling plus ``edge_dim``
    (default ``dim``) per edge pooling.

    Shapes: ``forward(state, ctx) -> [B, out_dim]`` (``state.node`` [N, d], ``state.edge``
    [E, edge_dim], ``state.graph`` [B, d] or None).
    """

    def __init__(self, *, dim: int, poolings: tuple[str, ...] = ("node_mean", "edge_mean"),
                 attention_heads: int = 4, edge_dim: int | None = None,
                 bilinear_width: int | None = None, bilinear_channels: int = 1):
        super().__init__()
        unknown = [name for name in poolings if name not in POOLINGS]
        if unknown or not poolings:
            raise ValueError(f"unknown readout pooling(s) {unknown}; choose from {POOLINGS}")
        self.poolings = tuple(poolings)
        bilinear_width = bilinear_width or 4 * dim
        self.out_dim = sum(
            bilinear_width if name == "edge_bilinear"
            else (edge_dim or dim) if name.startswith("edge_") else dim
            for name in self.poolings
        )
        if "edge_bilinear" in self.poolings:
            self.bilinear = BilinearEdgePooling(dim=dim, edge_dim=edge_dim or dim,
                                                width=bilinear_width,
                                                channels=bilinear_channels)
        if "attention" in self.poolings:
            self.attention = AttentionPooling(dim=dim, heads=attention_heads)

    def forward(self, state: GraphState, ctx: GraphContext) -> Tensor:
        h, e, u = state
        return torch.cat([self._pool(name, h, e, u, ctx) for name in self.poolings], dim=-1)

    def _pool(self, name: str, h: Tensor, e: Tensor, u: Tensor | None,
              ctx: GraphContext) -> Tensor:
        if name == "attention":
            return self.attention(h, ctx)
        if name == "edge_bilinear":
            return self.bilinear(h, e, ctx)
        if name == "global":
            if u is None:
                raise ValueError("readout 'global' needs a GMN with use_global=True")
            return u
        over, reduce = name.split("_")
        if over == "output":
            return pool_output_neurons(h, ctx, reduce)
        if over == "node":
            return scatter(h, ctx.batch, ctx.num_graphs, reduce)
        return scatter(e, ctx.edge_batch, ctx.num_graphs, reduce)
