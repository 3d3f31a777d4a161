"""`GlobalUpdate`: a per-graph state updated from the mean node and edge states."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmn.nn.context import GraphContext
from gmn.scatter import scatter


class GlobalUpdate(nn.Module):
    """``u' = MLP([u, mean_i h_i, mean_ij e_ij])`` per graph.

    Shapes: ``forward(u [B, dim], h [N, dim], e [E, edge_dim], ctx) -> [B, dim]``;
    ``edge_dim`` defaults to ``dim``.
    """

    def __init__(self, dim: int, activation: type[nn.Module] = nn.SiLU,
                 edge_dim: int | None = None):
        super().__init__()
        in_dim = 2 * dim + (edge_dim or dim)
        self.mlp = nn.Sequential(nn.Linear(in_dim, dim), activation(), nn.Linear(dim, dim))

    def forward(self, u: Tensor, h: Tensor, e: Tensor, ctx: GraphContext) -> Tensor:
        node_mean = scatter(h, ctx.batch, ctx.num_graphs, "mean")
        edge_mean = scatter(e, ctx.edge_batch, ctx.num_graphs, "mean")
        return self.mlp(torch.cat([u, node_mean, edge_mean], dim=-1))
