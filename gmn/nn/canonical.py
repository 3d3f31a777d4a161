"""`CanonicalStandardize`: each weight and bias standardised by the training statistics of its
canonical position, a permutation-invariant stand-in for per-coordinate standardisation.

Networks trained from a shared initialisation differ from it, and from each other, by a small
fraction of a layer's spread (``docs/accuracy.md`` measures it). A weight-space MLP sees those
differences because it standardises every coordinate with that coordinate's own statistics; a
GMN must not use coordinates, since hidden neurons carry no index. But hidden neurons can be put
in a canonical order that permutes with them (a canonicalisation in the sense of Kaba et al.,
2023): within its layer, by the value of its bias (:func:`neuron_slots`). Input and output
neurons keep their fixed positions. Keyed by (layer, slot) for a neuron and by the slots of its
two ends for a weight, statistics over the training networks standardise each scalar against
"the same" neuron or weight of the other networks.

The result is exactly invariant to hidden-neuron permutations whenever no two neurons of a
layer share a bias value (ties are broken by node order). Across networks with independent
initialisations the slots do not align neurons, and the statistics pool unrelated neurons.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmn.graph.parameter_graph import validate_graph
from gmn.nn.rank import rank_within_layer

SLOT_BITS = 20  # up to 2^20 neurons per layer
NODE_KEY_BITS = 31  # and 2^11 layers: an edge key (two node keys) stays below 2^62


def neuron_slots(graph, batch: Tensor | None = None) -> Tensor:
    """[N] long: an input/output neuron's position, a hidden neuron's rank within its graph
    and layer by bias, then (ties, e.g. convolutions without bias) by its other node features,
    the sum and the sum of squares of its incoming weights. Permuting hidden neurons permutes
    the slots. ``batch`` [N]: the graph of each node (default: the graph's validated
    ``batch`` field, ``gmn.graph.parameter_graph.validate_graph``)."""
    if batch is None:
        batch = validate_graph(graph)[0]
    layers = int(graph.node_layer.max()) + 1 if graph.node_layer.numel() else 1
    group = batch * layers + graph.node_layer
    weight = graph.edge_attr[:, 0]
    incoming = graph.x.new_zeros(len(graph.x), 2).index_add_(
        0, graph.edge_index[1], torch.stack([weight, weight * weight], 1).to(graph.x.dtype)
    )
    rank = rank_within_layer(torch.cat([graph.x, incoming], 1), group)
    return torch.where(graph.node_io_pos >= 0, graph.node_io_pos, rank)


def canonical_keys(graph, slots: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """([N] node keys, [E] edge keys), long: node = (layer, slot), edge = (its source key,
    its target key). Equal keys name the same canonical neuron or weight across networks of
    one architecture (parallel edges, e.g. the kernel taps of a convolution, share one)."""
    if slots is None:
        slots = neuron_slots(graph)
    if graph.node_layer.numel() and int(graph.node_layer.max()) >= 1 << (NODE_KEY_BITS - SLOT_BITS):
        raise ValueError(f"canonical keys support up to {1 << (NODE_KEY_BITS - SLOT_BITS)} layers")
    node_key = (graph.node_layer << SLOT_BITS) | slots
    source, target = graph.edge_index
    edge_key = (node_key[source] << NODE_KEY_BITS) | node_key[target]
    return node_key, edge_key


class KeyedStandardize(nn.Module):
    """Per-key standardisation of [n, F] features: ``(v - mean[key]) / std[key]``, with the
    statistics of every key seen by :meth:`fit`; rows whose key was never seen become 0.

    Buffers ``keys`` [U] (sorted), ``mean`` and ``std`` [U, F]; :meth:`fit` and loading a
    ``state_dict`` resize them.
    """

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("mean", torch.zeros(0, num_features))
        self.register_buffer("std", torch.ones(0, num_features))

    @torch.no_grad()
    def fit(self, values: Tensor, keys: Tensor) -> None:
        """[n, F] training values and their [n] keys."""
        unique, inverse = torch.unique(keys, return_inverse=True)
        values = values.double()
        count = torch.zeros(len(unique), dtype=torch.float64, device=values.device)
        count.index_add_(0, inverse, torch.ones_like(inverse, dtype=torch.float64))
        total = torch.zeros(len(unique), values.shape[1], dtype=torch.float64,
                            device=values.device).index_add_(0, inverse, values)
        mean = total / count[:, None]
        spread = torch.zeros_like(total).index_add_(0, inverse, (values - mean[inverse]) ** 2)
        std = (spread / count[:, None]).sqrt()
        self.keys = unique
        self.mean = mean.to(self.mean.dtype)
        self.std = std.clamp_min(self.eps).to(self.std.dtype)

    def forward(self, values: Tensor, keys: Tensor) -> Tensor:
        """[n, F] values, [n] keys -> [n, F] standardised values (0 for unseen keys)."""
        if not len(self.keys):
            return torch.zeros_like(values)
        row = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        seen = (self.keys[row] == keys).unsqueeze(-1)
        z = (values - self.mean[row].to(values.dtype)) / self.std[row].to(values.dtype)
        return torch.where(seen, z, torch.zeros_like(z))

    def statistics(self, keys: Tensor, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        """[n] keys -> the (mean, std) [n, F] of each key; ``mean``, ``std`` [F] for keys
        never seen by :meth:`fit`."""
        n = len(keys)
        if not len(self.keys):
            return mean.expand(n, -1), std.expand(n, -1)
        row = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        seen = (self.keys[row] == keys).unsqueeze(-1)
        return (torch.where(seen, self.mean[row].to(mean), mean),
                torch.where(seen, self.std[row].to(std), std))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("keys", "mean", "std"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def neuron_signatures(graph, slots: Tensor, nodes: Tensor) -> Tensor:
    """[n, 1 + S] for the hidden ``nodes`` [n] (all of one layer ℓ): the bias, then the weights
    from layer ℓ-1 summed into the column of their source's slot (S = 1 + largest slot)."""
    layer = graph.node_layer[nodes[0]]
    source, target = graph.edge_index
    row = torch.full_like(graph.node_layer, -1)
    row[nodes] = torch.arange(len(nodes), device=nodes.device)
    keep = (row[target] >= 0) & (graph.node_layer[source] == layer - 1)
    source, target = source[keep], target[keep]
    width = 1 + (int(slots[source].max()) + 1 if len(source) else 0)
    signature = graph.x.new_zeros(len(nodes), width)
    signature[:, 0] = graph.x[nodes, 0]
    signature.index_put_((row[target], 1 + slots[source]), graph.edge_attr[keep, 0],
                         accumulate=True)
    return signature


def hidden_layers(graph) -> list[Tensor]:
    """Per hidden layer, shallowest first: [n] indices of its hidden neurons."""
    hidden = graph.node_io_pos < 0
    layers = torch.unique(graph.node_layer[hidden]).tolist()
    return [torch.nonzero(hidden & (graph.node_layer == layer)).squeeze(1) for layer in layers]


class CanonicalStandardize(nn.Module):
    """Node features ``x`` [N, F_n] and edge features ``edge_attr`` [E, F_e], each standardised
    by the training statistics of its canonical key (:func:`canonical_keys`).

    Slots: a hidden neuron starts at the rank of its bias in its layer, then (shallowest layer
    first, so its sources already have theirs) takes the slot of the nearest reference
    signature (:func:`neuron_signatures`: its bias and its weights by source slot), the mean
    signature of each slot over the training networks. The bias rank alone mislabels a tenth
    of the second-layer neurons of shared-initialisation SIRENs; the signature almost none
    (``docs/accuracy.md``).

    ``fit(graphs)`` on a batch of training graphs; ``forward(graph) -> (node [N, F_n],
    edge [E, F_e])``, equivariant to hidden-neuron permutations (no ties assumed).
    """

    def __init__(self, node_features: int, edge_features: int, refinements: int = 2):
        super().__init__()
        self.refinements = refinements
        self.node = KeyedStandardize(node_features)
        self.edge = KeyedStandardize(edge_features)
        self.signature = KeyedStandardize(0)  # its ``mean``: the reference signature of a key

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has set the statistics (:meth:`forward` raises until then)."""
        return bool(len(self.node.keys))

    def slots(self, graph, batch: Tensor | None = None) -> Tensor:
        """[N] long: every neuron's canonical slot (``batch``: as in :func:`neuron_slots`)."""
        slots = neuron_slots(graph, batch)
        if not len(self.signature.keys):
            return slots
        for nodes in hidden_layers(graph):
            layer = int(graph.node_layer[nodes[0]])
            mine = (self.signature.keys >> SLOT_BITS) == layer
            if not bool(mine.any()):
                continue
            references = self.signature.mean[mine]
            signature = neuron_signatures(graph, slots, nodes)
            width = max(signature.shape[1], references.shape[1])
            signature = nn.functional.pad(signature, (0, width - signature.shape[1]))
            references = nn.functional.pad(references, (0, width - references.shape[1]))
            nearest = torch.cdist(signature, references.to(signature.dtype)).argmin(1)
            slots[nodes] = (self.signature.keys[mine] & ((1 << SLOT_BITS) - 1))[nearest]
        return slots

    @torch.no_grad()
    def fit(self, graphs) -> None:
        self.signature = KeyedStandardize(0).to(graphs.x.device)
        for _ in range(self.refinements):
            slots = self.slots(graphs)
            layers = hidden_layers(graphs)
            if not layers:
                break
            signatures = [neuron_signatures(graphs, slots, nodes) for nodes in layers]
            width = max(s.shape[1] for s in signatures)
            padded = torch.cat([nn.functional.pad(s, (0, width - s.shape[1])) for s in signatures])
            nodes = torch.cat(layers)
            node_key, _ = canonical_keys(graphs, slots)
            self.signature = KeyedStandardize(width).to(graphs.x.device)
            self.signature.fit(padded, node_key[nodes])
        node_key, edge_key = canonical_keys(graphs, self.slots(graphs))
        self.node.fit(graphs.x, node_key)
        self.edge.fit(graphs.edge_attr, edge_key)

    def forward(self, graph, slots: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``slots`` [N]: :meth:`slots` of ``graph``, when already computed. Raises
        ``RuntimeError`` before :meth:`fit` (in training and in eval mode alike)."""
        if not self.fitted:
            raise RuntimeError(
                "canonical standardisation has no statistics: call fit(training_graphs) first; "
                "for a GMN(canonical_standardization=True), "
                "model.fit_feature_statistics(training_graphs) (or build the GMN with "
                "canonical_standardization=False)"
            )
        node_key, edge_key = canonical_keys(graph, self.slots(graph) if slots is None else slots)
        return self.node(graph.x, node_key), self.edge(graph.edge_attr, edge_key)
