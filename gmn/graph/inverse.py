"""`gmn.to_state_dict`: a parameter graph → the state_dict it was converted from, bit for bit."""

from __future__ import annotations

from torch import Tensor

from .errors import ConversionError
from .parameter_graph import ParameterGraph
from .template import GraphTemplate
from .weights import Weights


def to_state_dict(graph: ParameterGraph, template: GraphTemplate | None = None
                  ) -> dict[str, Tensor]:
    """Read the parameters back out of ``graph``.

    Every parameter scalar sits in exactly one node or edge feature, so this is a gather:
    the result equals the converted state_dict bit for bit and loads with ``strict=True``.
    Integer buffers (``num_batches_tracked``) come from ``graph.int_buffers``.

    Args:
        graph: a single :class:`ParameterGraph` (for a batch, of any mix of architectures,
            use :func:`gmn.graph.to_state_dicts`).
        template: the graph's template; defaults to ``graph.template``.
    """
    template = template if template is not None else getattr(graph, "template", None)
    if isinstance(template, list):
        raise ConversionError("graph is a batch; use gmn.graph.to_state_dicts(batch)")
    if not isinstance(template, GraphTemplate):
        raise ConversionError("graph carries no template; pass template= (the GraphTemplate "
                              "it was built with)")
    return Weights.from_graphs(graph, template).state_dicts()[0]
