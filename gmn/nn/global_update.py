"""`GlobalUpdate`: a per-graph state updated from the mean node and edge states."""

from __future__ import annotations

import torch
from torch import nn

from gmn.nn.context import GraphContext
from gmn.nn.state import GraphState
from gmn.scatter import scatter


class GlobalUpdate(nn.Module):
    """``u' = MLP([u, mean_i h_i, mean_ij e_ij])`` per graph.

    Shapes: ``forward(state, ctx) -> state`` with ``state.graph`` [B, dim] replaced by the
    message (``state.node`` [N, dim], ``state.edge`` [E, edge_dim]); ``edge_dim`` defaults
    to ``dim``.
    """

    def __init__(self, *, dim: int, activation: type[nn.Module] = nn.SiLU,
                 edge_dim: int | None = None):
        super().__init__()
        in_dim = 2 * dim + (edge_dim or dim)
        self.mlp = nn.Sequential(nn.Linear(in_dim, dim), activation(), nn.Linear(dim, dim))

    def forward(self, state: GraphState, ctx: GraphContext) -> GraphState:
        if state.graph is None:
            raise ValueError("GlobalUpdate needs a graph state (state.graph is None)")
        node_mean = scatter(state.node, ctx.batch, ctx.num_graphs, "mean")
        edge_mean = scatter(state.edge, ctx.edge_batch, ctx.num_graphs, "mean")
        return state._replace(graph=self.mlp(torch.cat([state.graph, node_mean, edge_mean], -1)))
