"""`GraphState`: the states a GMN carries through its blocks, one type in and out.

Every message-passing block of :mod:`gmn.nn` is ``forward(state, ctx) -> GraphState`` (a readout
takes ``(state, ctx)`` and returns a Tensor; encoders, standardisers and the NFN layers of
:mod:`gmn.nn.nfn` have signatures of their own): an update block returns the state with the part
it computes replaced by its message (:class:`EdgeUpdate` the edges, :class:`NodeUpdate` the
nodes, :class:`GlobalUpdate` the graph state), and a :class:`GMNLayer` returns the next state. A
custom layer implements the same signature, and ``gmn.probe`` recognises any module that returns
a ``GraphState``.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class GraphState(NamedTuple):
    """node [N, d], edge [E, d_edge], graph [B, d] or None (no per-graph state)."""

    node: Tensor
    edge: Tensor
    graph: Tensor | None = None
