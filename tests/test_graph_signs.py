"""Hidden-neuron sign flips keep the function of odd-activation networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from gmn.data import RandomSignFlip
from gmn.graph import canonicalize_signs, flip_signs
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


def siren_zoo(n: int = 8, hidden=(6, 5)) -> tuple[nn.Module, Weights]:
    """``n`` float64 SIRENs (ω₀ = 30) whose biases span several half-periods of their sines."""
    model = make_siren(seed=2, dtype=torch.float64, hidden=hidden)
    states = [make_siren(seed=10 + i, dtype=torch.float64, hidden=hidden).state_dict()
              for i in range(n)]
    return model, Weights.from_state_dicts(template_for(model), states)


def canonical_written_out(state: dict, omega: float) -> dict:
    """One SIREN's canonical form, neuron by neuron in plain Python (the reference)."""
    state = {k: v.clone() for k, v in state.items()}
    layers = sorted({int(k.split(".")[1]) for k in state})
    for layer in layers[:-1]:
        weight, bias = state[f"seq.{layer}.weight"], state[f"seq.{layer}.bias"]
        following = state[f"seq.{layer + 1}.weight"]
        for j in range(len(bias)):
            phase = omega * float(bias[j])
            turns = math.floor(phase / math.pi)
            rest = phase - turns * math.pi
            flip = rest > math.pi / 2
            weight[j] *= -1.0 if flip else 1.0
            bias[j] = ((math.pi - rest) if flip else rest) / omega
            following[:, j] *= -1.0 if turns % 2 else 1.0
    return state


def test_canonical_sirens_match_the_neuron_by_neuron_reference():
    model, weights = siren_zoo()
    canonical = canonicalize_signs(weights)
    phases = 30.0 * weights.stacked()["seq.0.bias"]
    assert phases.max() - phases.min() > 4 * math.pi, "biases span several half-periods"
    for state, got in zip(weights.state_dicts(), canonical.state_dicts()):
        for key, value in canonical_written_out(state, 30.0).items():
            torch.testing.assert_close(got[key], value, rtol=0, atol=1e-14)


@pytest.mark.parametrize("build", ["siren", "tanh"])
def test_canonical_networks_compute_the_same_function(build):
    if build == "siren":
        model, weights = siren_zoo()
    else:
        model = tanh_mlp()
        states = [model.state_dict()] * 4
        weights = flip_signs(Weights.from_state_dicts(template_for(model), states),
                             torch.Generator().manual_seed(1))
    canonical = canonicalize_signs(weights)
    assert not torch.equal(canonical.params, weights.params), "some neuron changed"
    x = torch.rand(33, 2 if build == "siren" else 3, dtype=torch.float64) * 2 - 1
    for state, new in zip(weights.state_dicts(), canonical.state_dicts()):
        torch.testing.assert_close(outputs(model, new, x), outputs(model, state, x),
                                   rtol=0, atol=1e-10)
    biases = [v for k, v in canonical.stacked().items() if k.endswith("bias")][:-1]
    upper = math.pi / 2 / 30.0 if build == "siren" else math.inf
    assert all(((b >= 0) & (b <= upper + 1e-15)).all() for b in biases)


def test_every_flip_phase_shift_and_permutation_has_one_canonical_form():
    """A GMN reading canonical networks is invariant to sign flips, phase shifts by whole
    periods and hidden-neuron permutations, all drawn at random together (float64)."""
    from gmn.graph import permute
    from gmn.nn import GMN

    model, weights = siren_zoo(hidden=(7, 6))
    moved = flip_signs(weights, torch.Generator().manual_seed(4))
    stacked = moved.stacked()
    turns = torch.randint(-3, 4, stacked["seq.1.bias"].shape,
                          generator=torch.Generator().manual_seed(5)).double()
    moved = moved.replace({"seq.1.bias": stacked["seq.1.bias"] + turns * 2 * math.pi / 30.0})
    moved = permute(moved, torch.Generator().manual_seed(6))
    x = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    for state, new in zip(weights.state_dicts(), moved.state_dicts()):
        torch.testing.assert_close(outputs(model, new, x), outputs(model, state, x),
                                   rtol=0, atol=1e-10)  # the same functions
    assert not torch.allclose(moved.params, weights.params)
    torch.manual_seed(0)
    gmn = GMN(out_dim=3, hidden_dim=16, num_layers=2, canonical_standardization=False,
              rank_embedding=False, dropout=0.0).double().eval()
    reference = gmn(canonicalize_signs(weights).graphs())
    torch.testing.assert_close(gmn(canonicalize_signs(moved).graphs()), reference,
                               rtol=0, atol=1e-9)
    assert not torch.allclose(gmn(moved.graphs()), reference, atol=1e-3), \
        "without the canonical form the GMN sees the flips"


def test_canonical_signs_refuse_a_relu_network_by_group():
    model = make_mlp(seed=0)
    weights = Weights.from_state_dicts(template_for(model), [model.state_dict()])
    with pytest.raises(ValueError, match=r"neuron group 1 .*activations \['relu'\]"):
        canonicalize_signs(weights)
