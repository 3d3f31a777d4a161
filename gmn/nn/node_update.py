"""`NodeUpdate`: a new node state from the node and its incoming and outgoing edges."""

from __future__ import annotations

import torch
from torch import Tensor, nn

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

    Shapes: ``forward(h [N, node_dim], e [E, edge_dim], edge_index [2, E]) -> [N, node_dim]``.
    """

    def __init__(self, node_dim: int, edge_dim: int, aggregations: tuple[str, ...] = ("mean",),
                 activation: type[nn.Module] = nn.SiLU):
        super().__init__()
        self.aggregations = tuple(aggregations)
        in_dim = node_dim + 2 * len(self.aggregations) * edge_dim
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, node_dim), activation(), nn.Linear(node_dim, node_dim)
        )

    def forward(self, h: Tensor, e: Tensor, edge_index: Tensor) -> Tensor:
        source, target = edge_index
        num_nodes = h.shape[0]
        incoming = [scatter(e, target, num_nodes, reduce) for reduce in self.aggregations]
        outgoing = [scatter(e, source, num_nodes, reduce) for reduce in self.aggregations]
        return self.mlp(torch.cat([h, *incoming, *outgoing], dim=-1))
