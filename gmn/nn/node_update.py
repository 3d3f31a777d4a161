"""`NodeUpdate`: a new node state from the node and its incoming and outgoing edges."""

from __future__ import annotations

import torch
from torch import nn

from gmn.nn.context import GraphContext
from gmn.nn.state import GraphState
from gmn.scatter import scatter


class NodeUpdate(nn.Module):
    """``h_i' = MLP([h_i, agg_{j->i} e_ji, agg_{i->k} e_ik])``.

    Incoming edges (from the previous layer) and outgoing edges (to the next layer) are
    aggregated separately: direction matters in a feed-forward network. Every reduction in
    ``aggregations`` is applied to both directions and concatenated.

    Args:
        node_dim: width of node states (and of the output).
        edge_dim: width of edge states.
        aggregations: reductions of :func:`gmn.scatter.scatter`, e.g. ``("mean",)``.
        activation: module class for the MLP's nonlinearity.

    Shapes: ``forward(state, ctx) -> state`` with ``state.node`` replaced by the message
    [N, node_dim] (``state.node`` [N, node_dim], ``state.edge`` [E, edge_dim]).
    """

    def __init__(self, *, node_dim: int, edge_dim: int,
                 aggregations: tuple[str, ...] = ("mean",),
                 activation: type[nn.Module] = nn.SiLU):
        super().__init__()
        self.aggregations = tuple(aggregations)
        in_dim = node_dim + 2 * len(self.aggregations) * edge_dim
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, node_dim), activation(), nn.Linear(node_dim, node_dim)
        )

    def forward(self, state: GraphState, ctx: GraphContext) -> GraphState:
        h, e = state.node, state.edge
        source, target = ctx.edge_index
        num_nodes = h.shape[0]
        incoming = [scatter(e, target, num_nodes, reduce) for reduce in self.aggregations]
        outgoing = [scatter(e, source, num_nodes, reduce) for reduce in self.aggregations]
        return state._replace(node=self.mlp(torch.cat([h, *incoming, *outgoing], dim=-1)))
