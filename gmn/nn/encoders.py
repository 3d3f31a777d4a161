"""Encoders: typed node and edge features of a `ParameterGraph` -> initial hidden states.

Every embedding is shared by all hidden neurons of a kind, so the encoding is equivariant
to hidden-neuron permutations. Only input and output neurons get a position embedding
(``node_io_pos``); hidden neurons (``node_io_pos == -1``) share one "no identity" row.

Vocabulary tables draw the rows of the vocabularies' first sizes at random
(``vocab.DRAWN_SIZES``); rows of entries appended later start at zero. The operation settings
(``node_spec``) enter through a fixed random projection drawn from its own generator, not a
learned map: it neither draws from the model's random stream nor adds a parameter. So a model
on graphs without the new entries and settings is initialised, and trains, bit for bit as it
did before they existed (a new parameter, even one whose gradient is zero, changes the last
bits of the gradient-norm clipping's sums).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmn.graph import vocab
from gmn.graph.parameter_graph import NODE_SPEC
from gmn.nn.context import GraphFieldError, is_output_neuron
from gmn.nn.fourier import ScalarFourierFeatures
from gmn.nn.standardize import Standardize


def check_index_range(
    name: str, index: Tensor, size: int, config_key: str, minimum: int = 0
) -> None:
    """Raise naming ``name`` if ``index`` leaves ``[minimum, size)`` (skipped when compiling)."""
    if torch.compiler.is_compiling() or index.numel() == 0:
        return
    low, high = torch.aminmax(index)
    low, high = int(low), int(high)
    if low < minimum or high >= size:
        raise GraphFieldError(
            f"field {name!r} has values in [{low}, {high}] but the model's {config_key}={size}"
        )


def scalar_encoder(in_dim: int, dim: int, fourier: tuple[int, float, float]) -> nn.Module:
    """[n, in_dim] standardised scalars -> [n, dim]: a linear map, or with ``fourier`` =
    (K > 0, lowest, highest frequency) :class:`ScalarFourierFeatures` then a linear map."""
    k, low, high = fourier
    if not k:
        return nn.Linear(in_dim, dim)
    encoding = ScalarFourierFeatures(in_dim, k, low, high)
    return nn.Sequential(encoding, nn.Linear(encoding.out_dim, dim))


def vocabulary_embedding(size: int, dim: int, vocabulary: str) -> nn.Embedding:
    """``nn.Embedding(size, dim)`` whose rows beyond ``vocab.DRAWN_SIZES[vocabulary]`` are
    zero: the random draw is that of the drawn size alone."""
    drawn = min(size, vocab.DRAWN_SIZES[vocabulary])
    table = nn.Embedding(drawn, dim)
    if size == drawn:
        return table
    weight = torch.cat([table.weight.detach(), table.weight.new_zeros(size - drawn, dim)])
    return nn.Embedding(size, dim, _weight=weight)


# node_spec columns the encoder reads: the settings of the operations inside the network (the
# output's offset and head, like the activation argument, are the same for every network of a
# dataset; a model that needs them adds them as extra features)
SPEC_COLUMNS = tuple(i for i, name in enumerate(NODE_SPEC) if not name.startswith("output_"))
SPEC_PROJECTION_SEED = 24


def _signed_log1p(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def with_extra(features: Tensor, extra: Tensor | None) -> Tensor:
    return features if extra is None else torch.cat([features, extra.to(features.dtype)], -1)


class NodeEncoder(nn.Module):
    """Node features + embeddings of type, activation, layer and input/output position.

    Args:
        in_dim: width of ``x`` (5 for the converters' features, more with extra features).
        dim: hidden width d.
        num_node_types, num_activations, max_layers: embedding table sizes.
        max_io_positions: largest number of input (or output) neurons of an input network.

    Shapes: ``forward(graph) -> [N, d]``.
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_node_types: int,
        num_activations: int,
        max_layers: int,
        max_io_positions: int,
        fourier: tuple[int, float, float] = (0, 1.0, 1.0),
        rank_embedding: bool = False,
        extra_dim: int = 0,
    ):
        super().__init__()
        self.max_io_positions = max_io_positions
        # hidden neurons: embedding of the rank of their bias within their layer (gmn.nn.rank)
        self.node_rank = nn.Embedding(max_io_positions, dim) if rank_embedding else None
        self.standardize = Standardize(in_dim)
        self.features = scalar_encoder(in_dim + extra_dim, dim, fourier)
        self.node_type = vocabulary_embedding(num_node_types, dim, "node_types")
        self.node_act = vocabulary_embedding(num_activations, dim, "activations")
        self.node_layer = nn.Embedding(max_layers, dim)
        # row 0: hidden neuron; 1..P: input positions; P+1..2P: output positions
        self.node_io_pos = nn.Embedding(1 + 2 * max_io_positions, dim)
        # the operation settings (norm ε, strides, weight transforms, …), signed log1p-scaled,
        # through a fixed projection (the layers after the encoder learn to read it)
        generator = torch.Generator().manual_seed(SPEC_PROJECTION_SEED)
        projection = torch.randn(dim, len(SPEC_COLUMNS), generator=generator)
        self.register_buffer("spec_projection", projection / len(SPEC_COLUMNS) ** 0.5,
                             persistent=False)

    def forward(self, graph, extra: Tensor | None = None, slots: Tensor | None = None) -> Tensor:
        """``extra`` [N, extra_dim]: more standardised scalars per node (canonical ones);
        ``slots`` [N]: every neuron's slot (``gmn.nn.canonical``), required by the rank
        embedding."""
        check_index_range("node_type", graph.node_type, self.node_type.num_embeddings,
                          "num_node_types")
        check_index_range("node_act", graph.node_act, self.node_act.num_embeddings,
                          "num_activations")
        check_index_range("node_layer", graph.node_layer, self.node_layer.num_embeddings,
                          "max_layers")
        check_index_range("node_io_pos", graph.node_io_pos, self.max_io_positions,
                          "max_io_positions", minimum=-1)
        is_output = is_output_neuron(graph.node_io_pos, graph.node_layer).long()
        io_row = torch.where(
            graph.node_io_pos < 0,
            torch.zeros_like(graph.node_io_pos),
            1 + graph.node_io_pos + self.max_io_positions * is_output,
        )
        h = (
            self.features(with_extra(self.standardize(graph.x), extra))
            + self.node_type(graph.node_type)
            + self.node_act(graph.node_act)
            + self.node_layer(graph.node_layer)
            + self.node_io_pos(io_row)
            + F.linear(_signed_log1p(graph.node_spec[:, SPEC_COLUMNS]), self.spec_projection.to(
                graph.node_spec.dtype)).to(graph.x.dtype)
        )
        if self.node_rank is not None:
            if slots is None:
                raise ValueError("the rank embedding needs every neuron's slot: pass slots="
                                 "gmn.nn.canonical.neuron_slots(graph, batch)")
            check_index_range("neuron rank", slots, self.node_rank.num_embeddings,
                              "max_io_positions")
            hidden = (graph.node_io_pos < 0).unsqueeze(-1)
            h = h + torch.where(hidden, self.node_rank(slots), torch.zeros_like(h))
        return h


class EdgeEncoder(nn.Module):
    """Edge features (the weight, and kernel position or padded kernel) + edge-type embedding.

    Shapes: ``forward(graph) -> [E, d]``.
    """

    def __init__(self, in_dim: int, dim: int, num_edge_types: int,
                 fourier: tuple[int, float, float] = (0, 1.0, 1.0), extra_dim: int = 0):
        super().__init__()
        self.standardize = Standardize(in_dim)
        self.features = scalar_encoder(in_dim + extra_dim, dim, fourier)
        self.edge_type = vocabulary_embedding(num_edge_types, dim, "edge_types")

    def forward(self, graph, extra: Tensor | None = None) -> Tensor:
        """``extra`` [E, extra_dim]: more standardised scalars per edge (canonical ones)."""
        check_index_range("edge_type", graph.edge_type, self.edge_type.num_embeddings,
                          "num_edge_types")
        features = with_extra(self.standardize(graph.edge_attr), extra)
        return self.features(features) + self.edge_type(graph.edge_type)
