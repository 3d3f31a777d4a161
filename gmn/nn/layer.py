"""`GMNLayer`: one round of edge, node and (optionally) global updates with residuals."""

from __future__ import annotations

from torch import nn

from gmn.nn.context import GraphContext
from gmn.nn.edge_update import EdgeUpdate
from gmn.nn.global_update import GlobalUpdate
from gmn.nn.node_update import NodeUpdate
from gmn.nn.state import GraphState

NORMS = ("layer", "none")


def make_norm(norm: str, dim: int) -> nn.Module:
    """A per-row normalisation (never across rows, so graphs in a batch stay independent)."""
    if norm == "layer":
        return nn.LayerNorm(dim)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class GMNLayer(nn.Module):
    """Post-norm residual message passing on a parameter graph.

    ``e <- norm(e + EdgeUpdate(h, e))``, then ``h <- norm(h + NodeUpdate(h, e))``, then, with
    ``use_global``, ``u <- norm(u + GlobalUpdate(u, h, e))``. With ``use_global`` the graph
    state is also added to every node state before the updates read it.

    Args:
        dim: width d of node and graph states.
        aggregations: reductions used by :class:`NodeUpdate`.
        use_global: read a per-graph state ``u``.
        update_global: also update ``u`` (default ``use_global``; a last layer whose ``u`` is
            not read afterwards sets it False, so that it holds no unused parameters).
        norm: ``"layer"`` or ``"none"``.
        dropout: dropout probability on each update.
        activation: module class used inside the updates.
        edge_dim: width of edge states (default ``dim``; narrower edges are cheaper, as
            edges outnumber nodes).
        edge_message: ``"additive"``, ``"gated"`` or ``"bilinear"`` (:class:`EdgeUpdate`).

    Shapes: ``forward(state, ctx) -> state``: ``state.node`` [N, d], ``state.edge``
    [E, edge_dim], ``state.graph`` [B, d] (or None without ``use_global``).
    """

    def __init__(self, *, dim: int, aggregations: tuple[str, ...] = ("mean",),
                 use_global: bool = False, norm: str = "layer", dropout: float = 0.0,
                 activation: type[nn.Module] = nn.SiLU, update_global: bool | None = None,
                 edge_dim: int | None = None, edge_message: str = "additive"):
        super().__init__()
        edge_dim = edge_dim or dim
        self.edge_update = EdgeUpdate(node_dim=dim, edge_dim=edge_dim, activation=activation,
                                      message=edge_message)
        self.node_update = NodeUpdate(node_dim=dim, edge_dim=edge_dim,
                                      aggregations=aggregations, activation=activation)
        self.edge_norm = make_norm(norm, edge_dim)
        self.node_norm = make_norm(norm, dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.use_global = use_global
        self.update_global = use_global if update_global is None else update_global
        if self.update_global and not use_global:
            raise ValueError("GMNLayer: update_global=True needs use_global=True")
        if use_global:
            self.global_to_node = nn.Linear(dim, dim)
        if self.update_global:
            self.global_update = GlobalUpdate(dim=dim, activation=activation, edge_dim=edge_dim)
            self.global_norm = make_norm(norm, dim)

    def forward(self, state: GraphState, ctx: GraphContext) -> GraphState:
        if self.use_global:
            if state.graph is None:
                raise ValueError("GMNLayer(use_global=True) needs the graph state (state.graph)")
            state = state._replace(node=state.node + self.global_to_node(state.graph)[ctx.batch])
        message = self.edge_update(state, ctx).edge
        state = state._replace(edge=self.edge_norm(state.edge + self.dropout(message)))
        message = self.node_update(state, ctx).node
        state = state._replace(node=self.node_norm(state.node + self.dropout(message)))
        if self.update_global:
            message = self.global_update(state, ctx).graph
            state = state._replace(graph=self.global_norm(state.graph + self.dropout(message)))
        return state
