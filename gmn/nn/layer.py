"""`GMNLayer`: one round of edge, node and (optionally) global updates with residuals."""

from __future__ import annotations

from torch import Tensor, nn

from gmn.nn.context import GraphContext
from gmn.nn.edge_update import EdgeUpdate
from gmn.nn.global_update import GlobalUpdate
from gmn.nn.node_update import NodeUpdate

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
        edge_message: ``"additive"`` or ``"gated"`` (:class:`EdgeUpdate`).

    Shapes: ``forward(h [N, d], e [E, edge_dim], ctx, u [B, d] | None) -> (h, e, u)``.
    """

    def __init__(self, dim: int, aggregations: tuple[str, ...] = ("mean",),
                 use_global: bool = False, norm: str = "layer", dropout: float = 0.0,
                 activation: type[nn.Module] = nn.SiLU, update_global: bool | None = None,
                 edge_dim: int | None = None, edge_message: str = "additive"):
        super().__init__()
        edge_dim = edge_dim or dim
        self.edge_update = EdgeUpdate(dim, edge_dim, activation, edge_message)
        self.node_update = NodeUpdate(dim, edge_dim, aggregations, activation)
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
            self.global_update = GlobalUpdate(dim, activation, edge_dim)
            self.global_norm = make_norm(norm, dim)

    def forward(self, h: Tensor, e: Tensor, ctx: GraphContext,
                u: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        if self.use_global:
            if u is None:
                raise ValueError("GMNLayer(use_global=True) needs the graph state u")
            h = h + self.global_to_node(u)[ctx.batch]
        e = self.edge_norm(e + self.dropout(self.edge_update(h, e, ctx.edge_index)))
        h = self.node_norm(h + self.dropout(self.node_update(h, e, ctx.edge_index)))
        if self.update_global:
            u = self.global_norm(u + self.dropout(self.global_update(u, h, e, ctx)))
        return h, e, u
