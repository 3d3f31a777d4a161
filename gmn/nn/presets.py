"""Named :class:`~gmn.nn.GMNConfig` settings, each measured on one of the benchmarks.

``ZOO_GMN``: predicting a CNN's test accuracy from its weights (``python -m
benchmarks.generalization``; measured in ``docs/zoo.md``). Fourier features of every scalar
(16 frequencies, ω ∈ [1, 30] per standard deviation) let the encoders form per-layer moments
of the weights; additive messages; readout node mean and max, edge mean and max and
output-neuron mean; 2 layers of width 32; no slot or canonical features (a zoo's CNNs start
from their own seeds, while ``GMNConfig``'s defaults assume one shared initialisation); no
dropout. Every field that decides the model is pinned here, so a change of ``GMNConfig``'s
defaults leaves the preset as measured.
"""

from __future__ import annotations

from gmn.nn.model import GMNConfig

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
