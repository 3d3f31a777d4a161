"""Hidden-neuron sign flips keep the function of odd-activation networks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gmn.data import RandomSignFlip
from gmn.graph import flip_signs
from gmn.graph.convert import template_for
from gmn.graph.signs import parameter_signs, sample_signs
from gmn.graph.weights import Weights
from gmn.testing import make_mlp, make_siren


def tanh_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(),
                         nn.Linear(4, 2)).double()


def outputs(model: nn.Module, state: dict, x: torch.Tensor) -> torch.Tensor:
    clone = copy.deepcopy(model)
    clone.load_state_dict(state, strict=True)
    return clone(x)


@pytest.mark.parametrize("build", [lambda: make_siren(seed=1, dtype=torch.float64,
                                                      hidden=(6, 5)), tanh_mlp])
def test_flipped_networks_compute_the_same_function(build):
    model = build()
    states = [model.state_dict()] * 8
    weights = Weights.from_state_dicts(template_for(model), states)
    flipped = flip_signs(weights, torch.Generator().manual_seed(0))
    assert not torch.equal(flipped.params, weights.params), "some neuron was flipped"
    assert torch.equal(flipped.params.abs(), weights.params.abs())
    x = torch.rand(17, next(model.parameters()).shape[1], dtype=torch.float64) * 2 - 1
    reference = model(x)
    for state in flipped.state_dicts():
        torch.testing.assert_close(outputs(model, state, x), reference, rtol=0, atol=1e-12)


def test_each_parameter_takes_the_product_of_its_neurons_signs():
    """Checked against the flip written out layer by layer for one sample."""
    model = tanh_mlp()
    template = template_for(model)
    signs = sample_signs(template, 1, torch.Generator().manual_seed(3))
    factor = parameter_signs(template, signs)
    weights = Weights.from_state_dicts(template, [model.state_dict()])
    got = weights.with_params(weights.params * factor).state_dicts()[0]
    s1, s2 = signs[1][0].double(), signs[2][0].double()
    assert (s1 < 0).any() and (s2 < 0).any() and (s1 > 0).any(), "both signs drawn"
    state = model.state_dict()
    expected = {
        "0.weight": state["0.weight"] * s1[:, None], "0.bias": state["0.bias"] * s1,
        "2.weight": state["2.weight"] * s2[:, None] * s1[None, :], "2.bias": state["2.bias"] * s2,
        "4.weight": state["4.weight"] * s2[None, :], "4.bias": state["4.bias"],
    }
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)
    assert torch.equal(signs[0], torch.ones(1, 3)) and torch.equal(signs[3], torch.ones(1, 2))


def test_the_same_seed_gives_the_same_flips():
    model = make_siren(seed=0, hidden=(8, 8))
    weights = Weights.from_state_dicts(template_for(model), [model.state_dict()] * 4)
    a = RandomSignFlip()(weights, torch.Generator().manual_seed(5))
    b = RandomSignFlip()(weights, torch.Generator().manual_seed(5))
    c = RandomSignFlip()(weights, torch.Generator().manual_seed(6))
    assert torch.equal(a.params, b.params) and not torch.equal(a.params, c.params)


def test_a_network_with_an_even_or_one_sided_activation_is_refused_by_name():
    model = make_mlp(seed=0)  # ReLU between layers
    weights = Weights.from_state_dicts(template_for(model), [model.state_dict()])
    with pytest.raises(ValueError, match=r"neuron group 1 .*activations \['relu'\]"):
        flip_signs(weights)
