"""Named :class:`~gmn.nn.GMNConfig` settings, each measured on one of the benchmarks. Every
field that decides the model is pinned here, so a change of ``GMNConfig``'s defaults leaves a
preset as measured.

``INR_WEIGHTS_ONLY``: the weights-only GMN of the INR benchmark's ``gmn`` family (``python -m
benchmarks.inr_classification``; measured in ``docs/accuracy.md``): width 64, 1 layer,
bilinear edge messages, readout output-neuron, node and edge means and the edge-bilinear
pooling, slot embeddings and canonical features: each weight and bias is also read against
the training statistics of its canonical position, which assumes INRs fitted from one
shared initialisation. ``GMN(out_dim=C, **INR_WEIGHTS_ONLY)``, then
``fit_feature_statistics(training_graphs)`` before its first forward (``RuntimeError``
otherwise). Read-only (a ``MappingProxyType``): copy it to change it.

``ZOO_GMN``: predicting a CNN's test accuracy from its weights (``python -m
benchmarks.generalization``; measured in ``docs/zoo.md``). Fourier features of every scalar
(16 frequencies, ω ∈ [1, 30] per standard deviation) let the encoders form per-layer moments
of the weights; additive messages; readout node mean and max, edge mean and max and
output-neuron mean; 2 layers of width 32; no slot or canonical features (a zoo's CNNs start
from their own seeds, while ``INR_WEIGHTS_ONLY`` assumes one shared initialisation); no
dropout.
"""

from __future__ import annotations

from types import MappingProxyType

from gmn.nn.model import GMNConfig

INR_WEIGHTS_ONLY = MappingProxyType({
    "hidden_dim": 64, "edge_dim": None, "num_layers": 1, "aggregations": ("mean",),
    "use_global": False, "norm": "layer", "dropout": 0.2, "activation": "silu",
    "readout": ("output_mean", "node_mean", "edge_mean", "edge_bilinear"),
    "attention_heads": 4, "bilinear_readout_dim": None, "bilinear_readout_channels": 1,
    "fourier_frequencies": 0, "fourier_min": 1.0, "fourier_max": 300.0,
    "edge_message": "bilinear", "rank_embedding": True, "canonical_standardization": True,
})

ZOO_GMN = {
    "out_dim": 1, "hidden_dim": 32, "num_layers": 2, "aggregations": ("mean",),
    "use_global": False, "norm": "layer", "dropout": 0.0, "activation": "silu",
    "readout": ("node_mean", "edge_mean", "node_max", "edge_max", "output_mean"),
    "fourier_frequencies": 16, "fourier_min": 1.0, "fourier_max": 30.0,
    "edge_message": "additive", "rank_embedding": False, "canonical_standardization": False,
}


def zoo_gmn_config(**overrides) -> GMNConfig:
    """The ``ZOO_GMN`` preset with ``overrides`` (any ``GMNConfig`` field) on top; an unknown
    field raises ``TypeError`` listing the valid ones."""
    return GMNConfig.from_kwargs(**{**ZOO_GMN, **overrides})
