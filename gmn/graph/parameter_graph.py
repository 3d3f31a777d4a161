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
                                        of a leaky ReLU, α of an ELU, β of a softplus; 0
                                        otherwise
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
order (every graph carries the same fields; see :mod:`gmn.graph.mixed` for grouped batching).
"""

from __future__ import annotations

from torch_geometric.data import Data

NODE_FEATURES = ("bias", "norm_weight", "norm_bias", "running_mean", "running_var")

REQUIRED_FIELDS = (
    "x",
    "edge_index",
    "edge_attr",
    "node_type",
    "edge_type",
    "node_layer",
    "edge_layer",
    "node_io_pos",
    "node_act",
)


class ParameterGraph(Data):
    """A PyG ``Data`` holding one network's parameters; see the module docstring for fields."""

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "int_buffers":  # [1, K] with K per architecture: concatenate the columns
            return -1
        return super().__cat_dim__(key, value, *args, **kwargs)
