"""The GMN presets are library configurations: the zoo preset is the one docs/zoo.md measured
and the generalization benchmark builds, and a change of GMNConfig's defaults moves neither it
nor the INR benchmark's weights-only preset."""

from __future__ import annotations

import dataclasses

import pytest

import benchmarks.generalization.methods as methods
from gmn.nn import GMN, INR_WEIGHTS_ONLY, ZOO_GMN, GMNConfig, zoo_gmn_config

# the configuration measured in docs/zoo.md (commit 5a8dea1), written out in full
MEASURED = dict(out_dim=1, hidden_dim=32, num_layers=2, dropout=0.0, fourier_frequencies=16,
                fourier_min=1.0, fourier_max=30.0, edge_message="additive",
                rank_embedding=False, canonical_standardization=False, aggregations=("mean",),
                use_global=False, norm="layer", activation="silu",
                readout=("node_mean", "edge_mean", "node_max", "edge_max", "output_mean"))


def test_the_preset_is_the_measured_configuration():
    assert zoo_gmn_config() == GMNConfig(**MEASURED)
    assert GMN(config=zoo_gmn_config()).config == GMNConfig(**MEASURED)
    assert methods.zoo_gmn_config is zoo_gmn_config  # what the benchmark builds


def test_overrides_apply_and_unknown_options_are_named():
    config = zoo_gmn_config(hidden_dim=64, dropout=0.1)
    assert (config.hidden_dim, config.dropout, config.edge_dim) == (64, 0.1, 32)
    with pytest.raises(TypeError, match="unknown GMN option.*'bogus'"):
        zoo_gmn_config(bogus=1)


def test_every_field_that_decides_the_model_is_pinned():
    """Other GMNConfig defaults leave the preset as it is."""
    free = {"edge_dim", "node_in_dim", "edge_in_dim", "num_node_types", "num_edge_types",
            "num_activations", "max_layers", "max_io_positions", "attention_heads",
            "bilinear_readout_dim", "bilinear_readout_channels"}  # derived, data, or unused
    fields = {f.name for f in dataclasses.fields(GMNConfig)}
    assert fields - free <= set(ZOO_GMN), sorted(fields - free - set(ZOO_GMN))


def test_the_weights_only_preset_pins_every_option_but_the_data_sizes():
    data_sizes = {"out_dim", "node_in_dim", "edge_in_dim", "num_node_types", "num_edge_types",
                  "num_activations", "max_layers", "max_io_positions"}
    assert set(INR_WEIGHTS_ONLY) == {f.name for f in dataclasses.fields(GMNConfig)} - data_sizes
    assert INR_WEIGHTS_ONLY["canonical_standardization"]  # unlike GMNConfig's defaults
    with pytest.raises(TypeError):
        INR_WEIGHTS_ONLY["hidden_dim"] = 8  # read-only: copy it to change it
