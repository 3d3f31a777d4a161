"""`GMN`: a ready graph metanetwork (encoders -> L x GMNLayer -> readout -> MLP head)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import Tensor, nn

from gmn.graph import vocab
from gmn.graph.parameter_graph import NODE_FEATURES
from gmn.nn.canonical import CanonicalStandardize, neuron_slots
from gmn.nn.context import GraphContext, graph_context
from gmn.nn.encoders import EdgeEncoder, NodeEncoder
from gmn.nn.layer import GMNLayer
from gmn.nn.readout import Readout
from gmn.nn.state import GraphState
from gmn.scatter import scatter

MLP_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class GMNConfig:
    """Hyper-parameters of :class:`GMN`. The defaults build a model that trains and evaluates
    with no fitting call (``fit_feature_statistics`` is optional: it standardises the input
    columns). :data:`gmn.nn.presets.INR_WEIGHTS_ONLY` is the INR benchmark's weights-only
    configuration.

    Attributes:
        out_dim: width of the graph-level output (classes, or regression targets).
        hidden_dim: width d of node and graph states.
        edge_dim: width of edge states (default ``hidden_dim // 2``). Edges outnumber nodes (17 to
            1 in a SIREN 2→32→32→1), so a narrower edge state is the main speed lever.
        num_layers: number of :class:`GMNLayer`.
        node_in_dim: columns of ``x`` (5 converter features; more with extra node features).
        edge_in_dim: columns of ``edge_attr`` (3 for the ``"position"`` encoding).
        num_node_types, num_edge_types, num_activations: vocabulary sizes (default: the
            sizes of :mod:`gmn.graph.vocab` when the config is built, so activations added by
            ``gmn.register_activation`` count).
        max_layers: size of the ``node_layer`` embedding (deepest input network + 1).
        max_io_positions: size of the input/output position embedding (widest input or
            output layer of an input network).
        aggregations: reductions over incoming and outgoing edges (``mean``/``sum``/``max``).
        use_global: keep a per-graph state (initially the mean encoded node) updated every
            layer.
        norm: ``"layer"`` or ``"none"``.
        dropout: dropout on every update and in the head.
        activation: ``"silu"``, ``"relu"`` or ``"gelu"``.
        readout: poolings concatenated before the head (see :mod:`gmn.nn.readout`).
        attention_heads: heads of the ``"attention"`` pooling.
        bilinear_readout_dim: width of the ``"edge_bilinear"`` pooling (default
            ``4 * hidden_dim``).
        bilinear_readout_channels: scalars per edge it reads (a linear map of the edge state).
        fourier_frequencies: K; every standardised node and edge feature is encoded as
            ``[x, sin(ω_k x), cos(ω_k x)]`` for K log-spaced ω in ``[fourier_min,
            fourier_max]`` before the encoders' linear map (0: a linear map of the raw
            features).
        fourier_min, fourier_max: range of ω (radians per standard deviation of the feature).
        edge_message: ``"additive"``, ``"gated"`` or ``"bilinear"`` (:class:`gmn.nn.EdgeUpdate`).
        rank_embedding: add to each hidden neuron an embedding of its slot within its layer
            (canonical slot with ``canonical_standardization``, else its rank by bias; see
            :mod:`gmn.nn.canonical`; equivariant as long as no two neurons of a layer tie).
        canonical_standardization: also give the encoders every node and edge feature
            standardised by the training statistics of its canonical position
            (:mod:`gmn.nn.canonical`; set by :meth:`GMN.fit_feature_statistics`, which must
            run before the first forward); what it changes on shared-initialisation INRs is
            measured in docs/accuracy.md.
    """

    out_dim: int = 10
    hidden_dim: int = 64
    edge_dim: int | None = None
    num_layers: int = 1
    node_in_dim: int = len(NODE_FEATURES)
    edge_in_dim: int = 3
    num_node_types: int = len(vocab.NODE_TYPES)
    num_edge_types: int = len(vocab.EDGE_TYPES)
    num_activations: int | None = None
    max_layers: int = 64
    max_io_positions: int = 1024
    aggregations: tuple[str, ...] = ("mean",)
    use_global: bool = False
    norm: str = "layer"
    dropout: float = 0.2
    activation: str = "silu"
    readout: tuple[str, ...] = field(
        default=("output_mean", "node_mean", "edge_mean", "edge_bilinear"))
    attention_heads: int = 4
    bilinear_readout_dim: int | None = None
    bilinear_readout_channels: int = 1
    fourier_frequencies: int = 0
    fourier_min: float = 1.0
    fourier_max: float = 300.0
    edge_message: str = "bilinear"
    rank_embedding: bool = True
    canonical_standardization: bool = False

    def __post_init__(self):
        if self.num_activations is None:
            self.num_activations = len(vocab.ACTIVATIONS)
        if self.edge_dim is None:
            self.edge_dim = max(1, self.hidden_dim // 2)
        for key in ("aggregations", "readout"):
            value = getattr(self, key)
            setattr(self, key, (value,) if isinstance(value, str) else tuple(value))
        for key in ("out_dim", "hidden_dim", "edge_dim", "node_in_dim", "edge_in_dim",
                    "num_node_types", "num_edge_types", "num_activations", "max_layers",
                    "max_io_positions"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ValueError(f"GMN option {key} must be a positive int, "
                                 f"got {getattr(self, key)!r}")

    @classmethod
    def from_kwargs(cls, **kwargs) -> GMNConfig:
        """Build a config, rejecting unknown keys with the list of valid ones."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(f"unknown GMN option(s) {unknown}; valid options: {valid}")
        return cls(**kwargs)


class GMN(nn.Module):
    """A graph metanetwork over ``ParameterGraph`` batches.

    ``GMN(out_dim=10, hidden_dim=64)`` or ``GMN(config=GMNConfig(...))``; unknown keyword
    arguments raise ``TypeError``. ``forward(batch) -> [B, out_dim]``; :meth:`encode` gives
    the node- and edge-level states (equivariant to hidden-neuron permutations).

    Feature standardisation: :meth:`fit_feature_statistics` stores train-set statistics of
    ``x`` and ``edge_attr`` as buffers applied at the input; the batch is never modified.
    """

    def __init__(self, config: GMNConfig | None = None, **kwargs):
        super().__init__()
        if config is not None and kwargs:
            raise TypeError("pass either config or keyword options to GMN, not both")
        self.config = config if config is not None else GMNConfig.from_kwargs(**kwargs)
        c = self.config
        if c.activation not in MLP_ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(MLP_ACTIVATIONS)}, "
                             f"got {c.activation!r}")
        activation = MLP_ACTIVATIONS[c.activation]
        d = c.hidden_dim
        fourier = (c.fourier_frequencies, c.fourier_min, c.fourier_max)
        canonical = c.canonical_standardization
        self.canonical = CanonicalStandardize(c.node_in_dim, c.edge_in_dim) if canonical else None
        self.node_encoder = NodeEncoder(c.node_in_dim, d, c.num_node_types, c.num_activations,
                                        c.max_layers, c.max_io_positions, fourier,
                                        c.rank_embedding, c.node_in_dim if canonical else 0)
        self.edge_encoder = EdgeEncoder(c.edge_in_dim, c.edge_dim, c.num_edge_types, fourier,
                                        c.edge_in_dim if canonical else 0)
        reads_global = "global" in c.readout
        self.layers = nn.ModuleList(
            GMNLayer(dim=d, aggregations=c.aggregations, use_global=c.use_global, norm=c.norm,
                     dropout=c.dropout, activation=activation,
                     update_global=c.use_global and (i < c.num_layers - 1 or reads_global),
                     edge_dim=c.edge_dim, edge_message=c.edge_message)
            for i in range(c.num_layers)
        )
        self.readout = Readout(dim=d, poolings=c.readout, attention_heads=c.attention_heads,
                               edge_dim=c.edge_dim, bilinear_width=c.bilinear_readout_dim,
                               bilinear_channels=c.bilinear_readout_channels)
        self.head = nn.Sequential(
            nn.Linear(self.readout.out_dim, d), activation(), nn.Dropout(c.dropout),
            nn.Linear(d, c.out_dim),
        )

    def encode(self, batch) -> tuple[GraphState, GraphContext]:
        """Validate ``batch`` and run encoders and layers: the last layer's
        :class:`GraphState` (node [N, d], edge [E, edge_dim], graph [B, d] or None) and the
        batch's :class:`GraphContext`."""
        c = self.config
        ctx = graph_context(batch, c.node_in_dim, c.edge_in_dim, c.num_node_types)
        node_extra = edge_extra = slots = None
        if self.canonical is not None:
            slots = self.canonical.slots(batch, ctx.batch)
            node_extra, edge_extra = self.canonical(batch, slots)
        elif c.rank_embedding:
            slots = neuron_slots(batch, ctx.batch)
        h = self.node_encoder(batch, node_extra, slots)
        e = self.edge_encoder(batch, edge_extra)
        u = scatter(h, ctx.batch, ctx.num_graphs, "mean") if c.use_global else None
        state = GraphState(h, e, u)
        for layer in self.layers:
            state = layer(state, ctx)
        return state, ctx

    def forward(self, batch) -> Tensor:
        """``batch``: a ``ParameterGraph`` or a PyG ``Batch`` of B of them -> [B, out_dim]."""
        state, ctx = self.encode(batch)
        return self.head(self.readout(state, ctx))

    @torch.no_grad()
    def fit_feature_statistics(self, graphs) -> None:
        """Set every input statistic from a batch of training graphs: the column statistics
        of ``x`` and ``edge_attr`` and, with ``canonical_standardization``, those of each
        canonical position."""
        self.node_encoder.standardize.set_statistics(graphs.x.mean(0), graphs.x.std(0))
        self.edge_encoder.standardize.set_statistics(graphs.edge_attr.mean(0),
                                                     graphs.edge_attr.std(0))
        if self.canonical is not None:
            self.canonical.fit(graphs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
