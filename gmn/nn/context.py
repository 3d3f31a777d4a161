"""`GraphContext`: the checked structure of a (batched) `ParameterGraph` that GMN layers share.

:func:`graph_context` validates a graph against the field contract of
:mod:`gmn.graph.parameter_graph` and raises an error that names the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NODE_INDEX_FIELDS = ("node_type", "node_layer", "node_io_pos", "node_act")
EDGE_INDEX_FIELDS = ("edge_type",)


class GraphFieldError(ValueError):
    """A graph lacks a field the GMN needs, or a field has the wrong shape or dtype."""


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


def _field(graph, name: str) -> Tensor:
    value = getattr(graph, name, None)
    if value is None:
        raise GraphFieldError(
            f"graph is missing field {name!r}; a GMN needs the ParameterGraph fields "
            "(see gmn.graph.parameter_graph)"
        )
    if not isinstance(value, Tensor):
        raise GraphFieldError(f"field {name!r} must be a Tensor, got {type(value).__name__}")
    return value


def _check_features(graph, name: str, rows: int | None, width: int, config_key: str) -> Tensor:
    value = _field(graph, name)
    if value.dim() != 2 or not value.is_floating_point():
        raise GraphFieldError(
            f"field {name!r} must be a 2-D float tensor, got shape {tuple(value.shape)} "
            f"and dtype {value.dtype}"
        )
    if value.shape[1] != width:
        raise GraphFieldError(
            f"field {name!r} has {value.shape[1]} feature columns but the model expects "
            f"{config_key}={width}"
        )
    if rows is not None and value.shape[0] != rows:
        raise GraphFieldError(f"field {name!r} has {value.shape[0]} rows, expected {rows}")
    return value


def _check_index(graph, name: str, length: int) -> Tensor:
    value = _field(graph, name)
    if value.dtype != torch.long or value.dim() != 1 or value.shape[0] != length:
        raise GraphFieldError(
            f"field {name!r} must be a 1-D long tensor of length {length}, got shape "
            f"{tuple(value.shape)} and dtype {value.dtype}"
        )
    return value


def graph_context(graph, node_in_dim: int, edge_in_dim: int, num_node_types: int) -> GraphContext:
    """Validate ``graph`` (a ``ParameterGraph`` or a PyG ``Batch`` of them) and describe it.

    Raises:
        GraphFieldError: naming the missing or malformed field.
    """
    x = _check_features(graph, "x", None, node_in_dim, "node_in_dim")
    num_nodes = x.shape[0]
    edge_index = _field(graph, "edge_index")
    if edge_index.dtype != torch.long or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise GraphFieldError(
            f"field 'edge_index' must be a [2, E] long tensor, got shape "
            f"{tuple(edge_index.shape)} and dtype {edge_index.dtype}"
        )
    num_edges = edge_index.shape[1]
    _check_features(graph, "edge_attr", num_edges, edge_in_dim, "edge_in_dim")
    for name in NODE_INDEX_FIELDS:
        _check_index(graph, name, num_nodes)
    for name in EDGE_INDEX_FIELDS:
        _check_index(graph, name, num_edges)

    batch = getattr(graph, "batch", None)
    if batch is None:
        graphs = getattr(graph, "num_graphs", 1)  # a Batch still knows its size (from ptr)
        if getattr(graph, "ptr", None) is not None or graphs != 1:
            raise GraphFieldError(
                f"graph is a batch of {graphs} graphs without its 'batch' vector; a GMN "
                "would read it as one graph. Keep the batch's 'batch' field"
            )
        batch = torch.zeros(num_nodes, dtype=torch.long, device=x.device)
        num_graphs = 1
    else:
        batch = _check_index(graph, "batch", num_nodes)
        num_graphs = int(graph.num_graphs)
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
