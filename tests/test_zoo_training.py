"""Architecture specs and the grouped training of many CNNs at once, checked against
``ZooCNN`` modules run one at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gmn
from gmn.graph.weight_statistics import weight_statistics
from gmn.zoo.grouped_cnn import Hyper, grouped_forward, init_stacked, train_group
from gmn.zoo.specs import build_architecture, register_architecture

SPECS = [
    {"family": "zoo_cnn", "channels": [4, 4, 4], "kernel": 3, "activation": "relu",
     "batchnorm": True, "residual": True, "stride": 2},
    {"family": "zoo_cnn", "channels": [3, 5], "kernel": 5, "activation": "tanh",
     "residual": True},
    {"family": "zoo_cnn", "channels": [1, 1, 2], "kernel": 3, "activation": "gelu",
     "residual": True},  # in_channels == width 1: still no residual around the first layer
]


def unstack(stacked: dict, g: int) -> dict:
    return {k: v[g] for k, v in stacked.items()}


@pytest.mark.parametrize("spec", SPECS)
def test_grouped_forward_equals_each_module(spec):
    stacked = init_stacked(spec, torch.tensor([0.5, 1.0, 2.0]), torch.Generator().manual_seed(0))
    for key in stacked:
        if "running_var" in key:
            stacked[key] = torch.rand_like(stacked[key]) + 0.5
        elif "running_mean" in key:
            stacked[key] = torch.randn_like(stacked[key])
    x = torch.randn(7, 1, 8, 8)
    for training in (False, True):
        train_stacked = {k: v.clone() for k, v in stacked.items()}
        logits = grouped_forward(spec, train_stacked, x, training=training)
        for g in range(3):
            model = build_architecture(spec)
            model.load_state_dict(unstack(stacked, g))
            model.train(training)
            with torch.no_grad():
                expected = model(x)
            torch.testing.assert_close(logits[:, g], expected, atol=1e-5, rtol=1e-5)
            for key, value in model.state_dict().items():  # running statistics updated alike
                torch.testing.assert_close(train_stacked[key][g], value, atol=1e-6, rtol=1e-5)


def test_init_scale_sets_the_uniform_bound():
    spec = SPECS[0]
    stacked = init_stacked(spec, torch.tensor([1.0, 3.0]), torch.Generator().manual_seed(0))
    fan_in = 4 * 3 * 3
    for g, scale in enumerate((1.0, 3.0)):
        weight = stacked["convs.1.weight"][g]
        assert weight.abs().max() <= scale / fan_in ** 0.5
        assert weight.abs().max() > 0.8 * scale / fan_in ** 0.5
    assert torch.equal(stacked["norms.0.weight"], torch.ones(2, 4))


def test_models_of_a_group_train_independently():
    """A model's result does not depend on which other models share its group."""
    spec = {"family": "zoo_cnn", "channels": [4, 4], "kernel": 3, "batchnorm": False}
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    hypers = [Hyper(1e-2, 1e-4, 1.0, 0.0, 1.0, 2), Hyper(3e-3, 0.0, 0.5, 0.0, 1.0, 3)]
    together, history = train_group(spec, hypers, (x, y), (x, y), seed=0, batch_size=16)
    assert torch.isnan(history[0, 2]) and not torch.isnan(history[1]).any()
    # the same initial weights and data order for model 1 trained alone: init_stacked draws
    # every model from one generator, so rebuild model 1's start by drawing both and dropping 0
    alone_hypers = [Hyper(0.0, 0.0, 1.0, 0.0, 1.0, 2), hypers[1]]
    alone, _ = train_group(spec, alone_hypers, (x, y), (x, y), seed=0, batch_size=16)
    for key in together:
        torch.testing.assert_close(alone[key][1], together[key][1], atol=1e-6, rtol=1e-5)


def test_unknown_family_and_option_are_named():
    with pytest.raises(ValueError, match="'mlp_zoo'"):
        build_architecture({"family": "mlp_zoo"})
    with pytest.raises(ValueError, match="widths"):
        build_architecture({"family": "zoo_cnn", "widths": [4]})
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("zoo_cnn", lambda: None)


@pytest.mark.parametrize("spec", SPECS)
def test_zoo_cnns_convert_and_invert_exactly(spec):
    model = build_architecture(spec).eval()
    graph = gmn.from_state_dict(model)
    restored = gmn.to_state_dict(graph)
    assert all(torch.equal(restored[k], v) for k, v in model.state_dict().items())


def test_weight_statistics_match_numpy():
    generator = torch.Generator().manual_seed(0)
    stacked = {"a.weight": torch.randn(3, 4, 2, 3, 3, generator=generator),
               "a.bias": torch.randn(3, 4, generator=generator),
               "b.weight": torch.randn(3, 5, 4, generator=generator),
               "b.bias": torch.randn(3, 5, generator=generator)}

    def describe(values):
        return [values.mean(), values.var(ddof=1), *np.quantile(values, [0, .25, .5, .75, 1])]

    for layers, blocks in (("all", [["a"], ["b"]]), ("slots", [["a"], ["a"], ["b"], ["a", "b"]])):
        got = weight_statistics(stacked, layers).numpy()
        for n in range(3):
            expected = []
            for block in blocks:
                for part in ("weight", "bias"):
                    values = np.concatenate([stacked[f"{p}.{part}"][n].double().numpy().ravel()
                                             for p in block])
                    expected += describe(values)
            np.testing.assert_allclose(got[n], expected, rtol=1e-12)
