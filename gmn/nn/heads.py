"""`ParameterHead`: node and edge states of a GMN -> a value for every weight and bias.

A parameter graph holds each parameter in one place: a bias (or a norm parameter) in a
column of its neuron's features ``x``, a weight in column 0 of its edge's features
``edge_attr``. A head that gives every node and every edge an output of those widths gives
every parameter an output; ``GraphTemplate.params_from_features`` reads them back as an
[N, P] parameter matrix (the inverse of building the graph), differentiably. Since every
output is computed from its own node (or its edge and the edge's two ends) with weights
shared by all nodes (edges), the head commutes with any permutation of hidden neurons: with
the equivariant states of ``GMN.encode``, permuting a network's hidden neurons permutes its
output parameters the same way (``gmn.nn.GMNEditor``).
"""

from __future__ import annotations

import torch
from torch import nn

from gmn.nn.context import GraphContext
from gmn.nn.state import GraphState


def _mlp(in_dim: int, hidden: int, out_dim: int, activation: type[nn.Module],
         zero_init: bool) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(in_dim, hidden), activation(), nn.Linear(hidden, out_dim))
    if zero_init:
        nn.init.zeros_(mlp[-1].weight)
        nn.init.zeros_(mlp[-1].bias)
    return mlp


class ParameterHead(nn.Module):
    """Per-node and per-edge outputs: ``MLP(h_i)`` for node i, ``MLP([e_ij, h_i, h_j])`` for
    edge i -> j.

    Args:
        dim: width d of node states.
        edge_dim: width of edge states.
        node_out: outputs per node (5: one per column of ``x``, ``NODE_FEATURES``).
        edge_out: outputs per edge (the template's ``edge_dim``: 3 for the ``"position"``
            encoding, whose columns 1 and 2 are kernel offsets, not parameters, and so are
            never read back).
        hidden: width of the MLPs' hidden layer (default ``dim``).
        activation: module class of the hidden activation.
        zero_init: start the last linear maps at zero (a head predicting a change then starts
            as "no change").

    Shapes: ``forward(state, ctx) -> GraphState(node [N, node_out], edge [E, edge_out])``.
    """

    def __init__(self, *, dim: int, edge_dim: int, node_out: int = 5, edge_out: int = 3,
                 hidden: int | None = None, activation: type[nn.Module] = nn.SiLU,
                 zero_init: bool = True):
        super().__init__()
        hidden = hidden or dim
        self.node = _mlp(dim, hidden, node_out, activation, zero_init)
        self.edge = _mlp(edge_dim + 2 * dim, hidden, edge_out, activation, zero_init)

    def forward(self, state: GraphState, ctx: GraphContext) -> GraphState:
        source, target = ctx.edge_index
        ends = torch.cat([state.edge, state.node[source], state.node[target]], dim=-1)
        return GraphState(self.node(state.node), self.edge(ends))
