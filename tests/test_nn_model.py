"""GMN model: gradients, configuration, input validation, standardisation, determinism."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph.parameter_graph import REQUIRED_FIELDS
from gmn.nn import GMN, INR_WEIGHTS_ONLY, POOLINGS, GraphFieldError
from gmn.testing import make_cnn, make_siren


def siren_batch(n: int = 3, dtype=torch.float32) -> Batch:
    return Batch.from_data_list([gmn.from_state_dict(make_siren(seed=s, dtype=dtype))
                                 for s in range(n)])


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = GMN(out_dim=4, hidden_dim=16, edge_dim=8, num_layers=2, use_global=True,
                aggregations=("mean", "sum", "max"), readout=POOLINGS)
    # SIREN first: PyG collates the first graph's keys, and only the CNN has int_buffers
    batch = Batch.from_data_list([gmn.from_state_dict(make_siren(seed=0)),
                                  gmn.from_state_dict(make_cnn(seed=0))])
    model.fit_feature_statistics(batch)
    model(batch).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_unknown_option_is_rejected_by_name():
    with pytest.raises(TypeError, match="hiden_dim"):
        GMN(hiden_dim=32)
    with pytest.raises(ValueError, match="node_median"):
        GMN(readout=("node_median",))
    with pytest.raises(ValueError, match="hidden_dim must be a positive int"):
        GMN(hidden_dim=0)
    assert GMN(readout="attention", hidden_dim=8).config.readout == ("attention",)


@pytest.mark.parametrize("name", REQUIRED_FIELDS)
def test_missing_field_is_named(name):
    graph = gmn.from_state_dict(make_siren())
    model = GMN(hidden_dim=8, num_layers=1)
    model.fit_feature_statistics(graph)
    if name == "edge_layer":  # not read by the GMN: a graph without it still works
        del graph[name]
        assert model(graph).shape == (1, 10)
        return
    del graph[name]
    with pytest.raises(GraphFieldError, match=repr(name)):
        model(graph)


def test_wrong_widths_dtypes_and_ranges_are_named():
    graph = gmn.from_state_dict(make_siren())
    model = GMN(hidden_dim=8, num_layers=1)
    model.fit_feature_statistics(graph)
    wide = graph.clone()
    wide.x = torch.cat([graph.x, graph.x[:, :1]], dim=1)
    with pytest.raises(GraphFieldError, match="'x' has 6 feature columns.*node_in_dim=5"):
        model(wide)
    narrow = graph.clone()
    narrow.edge_attr = graph.edge_attr[:, :1]
    with pytest.raises(GraphFieldError, match="'edge_attr' has 1 feature columns.*edge_in_dim=3"):
        model(narrow)
    floats = graph.clone()
    floats.node_type = graph.node_type.float()
    with pytest.raises(GraphFieldError, match="'node_type' must be a 1-D long"):
        model(floats)
    short = graph.clone()
    short.edge_type = graph.edge_type[:-1]
    with pytest.raises(GraphFieldError, match="'edge_type'"):
        model(short)
    deep = graph.clone()
    deep.node_layer = graph.node_layer + 100
    with pytest.raises(GraphFieldError, match="'node_layer'.*max_layers=64"):
        model(deep)
    # the configured width is accepted (extra node features, e.g. function samples)
    wider = GMN(hidden_dim=8, num_layers=1, node_in_dim=6)
    wider.fit_feature_statistics(wide)
    assert wider(wide).shape == (1, 10)


def test_the_default_gmn_trains_and_evaluates_without_a_fitting_call():
    torch.manual_seed(0)
    batch = siren_batch()
    model = GMN(out_dim=3)
    torch.nn.functional.cross_entropy(model(batch), torch.arange(3)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name
    assert model.eval()(batch).shape == (3, 3)


def test_an_unfitted_canonical_gmn_is_refused_by_name_in_training_and_in_eval_mode():
    graph = gmn.from_state_dict(make_siren())
    for model in (GMN(hidden_dim=8, canonical_standardization=True),
                  GMN(out_dim=10, **INR_WEIGHTS_ONLY)):
        for training in (True, False):
            with pytest.raises(RuntimeError, match="fit_feature_statistics"):
                model.train(training)(graph)
        model.fit_feature_statistics(graph)
        assert model.train()(graph).shape == model.eval()(graph).shape == (1, 10)


def test_feature_statistics_standardise_without_touching_the_batch():
    torch.manual_seed(0)
    batch = siren_batch()
    x_mean, x_std = batch.x.mean(0), batch.x.std(0) + 0.1
    e_mean, e_std = batch.edge_attr.mean(0), batch.edge_attr.std(0) + 0.1
    model = GMN(hidden_dim=8, num_layers=1).eval()
    standardised = batch.clone()
    standardised.x = (batch.x - x_mean) / x_std
    standardised.edge_attr = (batch.edge_attr - e_mean) / e_std
    expected = model(standardised)
    x_before = batch.x.clone()
    model.node_encoder.standardize.set_statistics(x_mean, x_std)
    model.edge_encoder.standardize.set_statistics(e_mean, e_std)
    torch.testing.assert_close(model(batch), expected)
    assert torch.equal(batch.x, x_before)
    assert "node_encoder.standardize.mean" in model.state_dict()
    with pytest.raises(ValueError, match="mean must have shape"):
        model.node_encoder.standardize.set_statistics(x_mean[:2], x_std)


def test_same_seed_same_model_and_output():
    batch = siren_batch()
    outputs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        model = GMN(hidden_dim=8, num_layers=2)
        model.fit_feature_statistics(batch)
        outputs.append(model(batch))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


def test_standardize_fit_gives_zero_mean_unit_std_columns():
    from gmn.nn import Standardize

    features = torch.randn(200, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 3
    standardize = Standardize(3).double()
    standardize.fit(features)
    out = standardize(features)
    torch.testing.assert_close(out.mean(0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(3, dtype=torch.float64))
