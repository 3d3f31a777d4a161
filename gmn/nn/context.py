"""`GraphContext`: the checked structure of a (batched) `ParameterGraph` that GMN layers share.

:func:`graph_context` validates a graph with :func:`gmn.graph.parameter_graph.validate_graph`,
which raises an error that names the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gmn.graph.parameter_graph import GraphFieldError as GraphFieldError  # re-exported
from gmn.graph.parameter_graph import validate_graph

# not read by any gmn.nn block: a graph without it still runs
UNREAD_FIELDS = ("edge_layer",)


@dataclass
class GraphContext:
    """Structure shared by every layer of one forward pass.

    Attributes:
        edge_index: [2, E] long, row 0 = source neuron, row 1 = target neuron.
        batch: [N] long, graph of each node.
        edge_batch: [E] long, graph of each edge.
        node_type: [N] long, node kinds (used by probes for per-type means).
        is_output: [N] bool, output neurons (``node_io_pos >= 0`` outside layer 0).
        num_graphs: B.
        num_node_types: size of the node-type vocabulary.
    """

    edge_index: Tensor
    batch: Tensor
    edge_batch: Tensor
    node_type: Tensor
    is_output: Tensor
    num_graphs: int
    num_node_types: int


def is_output_neuron(node_io_pos: Tensor, node_layer: Tensor) -> Tensor:
    """[N] bool: neurons with an output position (input neurons are those of layer 0)."""
    return (node_io_pos >= 0) & (node_layer > 0)


def graph_context(graph, node_in_dim: int, edge_in_dim: int, num_node_types: int) -> GraphContext:
    """Validate ``graph`` (a ``ParameterGraph`` or a PyG ``Batch`` of them) and describe it.

    Raises:
        GraphFieldError: naming the missing or malformed field.
    """
    batch, num_graphs = validate_graph(graph, node_in_dim, edge_in_dim, UNREAD_FIELDS)
    edge_index = graph.edge_index
    is_output = is_output_neuron(graph.node_io_pos, graph.node_layer)
    return GraphContext(
        edge_index=edge_index,
        batch=batch,
        edge_batch=batch[edge_index[0]],
        node_type=graph.node_type,
        is_output=is_output,
        num_graphs=num_graphs,
        num_node_types=num_node_types,
    )
