"""`EdgeUpdate`: a new edge state from the edge and its two end neurons, factorised."""

from __future__ import annotations

import torch
from torch import nn

from gmn.nn.context import GraphContext
from gmn.nn.state import GraphState

EDGE_MESSAGES = ("additive", "gated", "bilinear")


class EdgeUpdate(nn.Module):
    """``m_ij = σ(A h_i + B h_j + C e_ij + b)`` for the edge i -> j (``"additive"``), or
    ``m_ij = σ(A h_i + B h_j + C e_ij + b) ⊙ (A' h_i + B' h_j + C' e_ij + b')`` (``"gated"``):
    a product of two such maps, so an edge's value and its end neurons' states combine
    multiplicatively (the INR itself multiplies each weight by its source's activation), or
    the gated message ``+ (P h_i) ⊙ (Q h_j) ⊙ (R e_ij)`` (``"bilinear"``): the edge times a
    bilinear form of its two neurons' states, so that an edge can be weighed by any function
    of the identities of its two ends (of rank ≤ edge_dim); a sum of sigmoids of
    ``A h_i + B h_j`` cannot do that, and a linear read-out of aligned weights needs it
    (``docs/accuracy.md``).

    This is a dense layer on ``[h_i, h_j, e_ij]``, but ``A h`` and ``B h`` are computed once
    per node ([N, edge_dim]) and gathered per edge, so the only per-edge matmul is ``C e``:
    no [E, 2 d_node + d_edge] concatenation is ever built. The gather and the sum
    ``A h_i + B h_j`` are one ``embedding_bag`` (bags of two rows of ``[A h; B h]``), which
    writes the [E, edge_dim] result once instead of two gathers and an add. Stacked in a residual
    :class:`GMNLayer`, the next layer's ``C`` plays the role of an output projection.

    Args:
        node_dim: width of node states.
        edge_dim: width of edge states (and of the output).
        activation: module class for σ.
        message: ``"additive"``, ``"gated"`` or ``"bilinear"``.

    Shapes: ``forward(state, ctx) -> state`` with ``state.edge`` replaced by the message
    [E, edge_dim] (``state.node`` [N, node_dim], ``state.edge`` [E, edge_dim]).
    """

    def __init__(self, *, node_dim: int, edge_dim: int,
                 activation: type[nn.Module] = nn.SiLU, message: str = "additive"):
        super().__init__()
        if message not in EDGE_MESSAGES:
            raise ValueError(f"edge message must be one of {EDGE_MESSAGES}, got {message!r}")
        self.gated = message in ("gated", "bilinear")
        width = 2 * edge_dim if self.gated else edge_dim
        self.bilinear = None
        if message == "bilinear":  # P, Q, R
            self.bilinear = nn.ModuleList([nn.Linear(node_dim, edge_dim),
                                           nn.Linear(node_dim, edge_dim),
                                           nn.Linear(edge_dim, edge_dim)])
        self.source = nn.Linear(node_dim, width)  # its bias is b
        self.target = nn.Linear(node_dim, width, bias=False)
        self.edge = nn.Linear(edge_dim, width, bias=False)
        self.act = activation()

    def forward(self, state: GraphState, ctx: GraphContext) -> GraphState:
        h, e = state.node, state.edge
        source, target = ctx.edge_index
        projections = torch.cat([self.source(h), self.target(h)])  # [2N, edge_dim]
        rows = torch.stack([source, target + h.shape[0]], dim=1)  # [E, 2]
        from_nodes = nn.functional.embedding_bag(rows, projections, mode="sum")
        pre = torch.addmm(from_nodes, e, self.edge.weight.t())
        if not self.gated:
            return state._replace(edge=self.act(pre))
        value, gate = pre.chunk(2, dim=-1)
        message = self.act(value) * gate
        if self.bilinear is not None:
            from_source, from_target, from_edge = self.bilinear
            message = message + from_source(h)[source] * from_target(h)[target] * from_edge(e)
        return state._replace(edge=message)
