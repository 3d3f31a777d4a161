"""`ParameterGraph`: a network's parameters as a typed graph (neurons are nodes, weights are edges).

Field contract (every converter produces it, every GMN layer consumes it):

=================  ===================  =====================================================
field              shape / dtype        meaning
=================  ===================  =====================================================
``x``              [N, 5] float         node features, columns ``NODE_FEATURES``: bias,
                                        norm weight (γ), norm bias (β), running mean, running
                                        var; 0 where a neuron has none (input neurons: all 0)
``edge_index``     [2, E] long          row 0 = source neuron (input side), row 1 = target
``edge_attr``      [E, F_e] float       the weight. ``"position"`` encoding (Lim et al.):
                                        F_e = 3, (weight, dy, dx) with (dy, dx) the kernel
                                        offset from the kernel centre (0 for linear/residual).
                                        ``"padded"`` encoding (Kofinas et al.): F_e = k_max,
                                        the flattened kernel zero-padded (centred) to the
                                        largest kernel; a linear weight is a 1x1 kernel
``node_type``      [N] long             index into ``vocab.NODE_TYPES``
``edge_type``      [E] long             index into ``vocab.EDGE_TYPES``
``node_layer``     [N] long             layer index (input neurons 0)
``edge_layer``     [E] long             layer index of the edge's target neuron
``node_io_pos``    [N] long             position of an input/output neuron in its layer,
                                        -1 for hidden neurons (which have no identity)
``node_act``       [N] long             index into ``vocab.ACTIVATIONS`` of the activation
                                        applied after the neuron (0 = identity)
``node_act_arg``   [N] float            the activation's argument: ω₀ of a sine, the slope
                                        of a leaky ReLU, α of an ELU, β of a softplus, a
                                        PReLU's learned slope or a learned ω₀ (parameters,
                                        read back by ``gmn.to_state_dict``); 0 otherwise
``node_spec``      [N, S] float         the settings of the operation that produced the
                                        neuron, columns ``NODE_SPEC`` (0 where not applicable):
                                        norm ε, convolution stride/dilation/padding (y, x) and
                                        padding mode, a constant scale or a standardisation
                                        applied to the stored weights before use, a scale
                                        node dividing by its factor, attention
                                        heads and causality, the pooling, padding or input
                                        preprocessing its layer reads through, the output
                                        offset and head
``int_buffers``    [1, K] long          integer buffers (BatchNorm ``num_batches_tracked``)
                                        in state_dict order; K = 0 when the network has none.
                                        Batches concatenate it along dim 1 ([1, ΣK]), so
                                        graphs of different architectures batch together
``template``       GraphTemplate        the architecture's template, used by
                                        ``gmn.to_state_dict`` (a list of them in a ``Batch``)
``y``              optional             a label, for datasets
=================  ===================  =====================================================

Graphs converted by one template share its structure tensors (``edge_index``, types, layers):
clone a field before modifying it in place.

Graphs batch with PyG's ``Batch``/``DataLoader`` unchanged, in any mix of architectures and any
order (every graph carries the same fields; see :mod:`gmn.graph.mixed_batches` for grouped
batching).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from gmn import GMNError

NODE_FEATURES = ("bias", "norm_weight", "norm_bias", "running_mean", "running_var")
NODE_SPEC = (
    "norm_eps",  # ε of the norm applied to the neuron
    "stride_y", "stride_x", "dilation_y", "dilation_x",  # of the convolution producing it
    "padding_y", "padding_x",  # total zero/mode padding of that convolution (before + after)
    "padding_mode",  # index into converters.PADDING_MODES
    "weight_scale", "bias_scale",  # constants the stored weight / bias are multiplied by
    "weight_standardize",  # ε of a per-output-channel standardisation of the stored weights
    "scale_reciprocal",  # a scale node divides by its factor (x / self.std) instead
    "heads", "causal",  # attention value neurons
    "read_pool", "read_size", "read_stride",  # pooling between the source neurons and the layer
    "read_pad",  # padding (F.pad) between the source neurons and the layer: total pixels
    "read_scale", "read_offset",  # x·a + b of the raw input before the layer reading it
    "output_offset", "output_head",  # output neurons: a constant added; 1 softmax, 2 log-softmax
)

NODE_INDEX_FIELDS = ("node_type", "node_layer", "node_io_pos", "node_act")  # [N] long each
EDGE_INDEX_FIELDS = ("edge_type", "edge_layer")  # [E] long each
REQUIRED_FIELDS = ("x", "edge_index", "edge_attr", *NODE_INDEX_FIELDS, *EDGE_INDEX_FIELDS,
                   "node_spec")


class GraphFieldError(GMNError, ValueError):
    """A graph lacks a field of the contract, or a field has the wrong shape or dtype."""


class ParameterGraph(Data):
    """A PyG ``Data`` holding one network's parameters; see the module docstring for fields."""

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "int_buffers":  # [1, K] with K per architecture: concatenate the columns
            return -1
        return super().__cat_dim__(key, value, *args, **kwargs)

    def validate(self, node_in_dim: int | None = None, edge_in_dim: int | None = None,
                 optional: tuple[str, ...] = ()) -> tuple[Tensor, int]:
        """:func:`validate_graph` on this graph (or on a ``Batch`` of them)."""
        return validate_graph(self, node_in_dim, edge_in_dim, optional)


def validate_graph(graph, node_in_dim: int | None = None, edge_in_dim: int | None = None,
                   optional: tuple[str, ...] = ()) -> tuple[Tensor, int]:
    """Check ``graph`` (a ``ParameterGraph`` or a PyG ``Batch`` of them) against the contract.

    Args:
        graph: any object with the fields as attributes (a plain ``Data`` works too).
        node_in_dim, edge_in_dim: the widths ``x`` and ``edge_attr`` must have (``None``:
            any width); a model passes its configured widths, named in the error.
        optional: index fields the caller does not read, left unchecked.

    Returns:
        ``(batch, num_graphs)``: the [N] long graph index of each node (zeros for a single
        graph) and the number of graphs B.

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
    if "node_spec" not in optional:
        _check_features(graph, "node_spec", num_nodes, len(NODE_SPEC), "len(NODE_SPEC)")
    for names, length in ((NODE_INDEX_FIELDS, num_nodes), (EDGE_INDEX_FIELDS, num_edges)):
        for name in names:
            if name not in optional:
                _check_index(graph, name, length)

    batch = getattr(graph, "batch", None)
    if batch is None:
        graphs = getattr(graph, "num_graphs", 1)  # a Batch still knows its size (from ptr)
        if getattr(graph, "ptr", None) is not None or graphs != 1:
            raise GraphFieldError(
                f"graph is a batch of {graphs} graphs without its 'batch' vector; a GMN "
                "would read it as one graph. Keep the batch's 'batch' field"
            )
        return torch.zeros(num_nodes, dtype=torch.long, device=x.device), 1
    return _check_index(graph, "batch", num_nodes), int(graph.num_graphs)


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


def _check_features(graph, name: str, rows: int | None, width: int | None,
                    config_key: str) -> Tensor:
    value = _field(graph, name)
    if value.dim() != 2 or not value.is_floating_point():
        raise GraphFieldError(
            f"field {name!r} must be a 2-D float tensor, got shape {tuple(value.shape)} "
            f"and dtype {value.dtype}"
        )
    if width is not None and value.shape[1] != width:
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
