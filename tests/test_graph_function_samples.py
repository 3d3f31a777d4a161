"""Function samples (gmn.graph.function_samples): known answers and equivariance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gmn.graph.function_samples import (
    UnsupportedArchitectureError,
    function_samples,
    random_query_points,
    with_function_samples,
)
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren, image_grid


def weights(template, models_or_states) -> Weights:
    return Weights.from_state_dicts(template, [m if isinstance(m, dict) else m.state_dict()
                                               for m in models_or_states])


def sirens(n: int, seed: int = 0, **kwargs) -> list[Siren]:
    torch.manual_seed(seed)
    return [Siren(**kwargs) for _ in range(n)]


def hidden_outputs(model: nn.Module, points: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's post-activation output, by hand, for a SIREN."""
    outs, h = [], points
    for layer in model.seq[:-1]:
        h = model.act(layer(h))
        outs.append(h)
    outs.append(model(points))
    return outs


@pytest.mark.parametrize("style", ["dwsnets", "standard"])
def test_siren_output_neuron_equals_forward(style):
    models = sirens(4, style=style)
    template = GraphTemplate.from_module(models[0])
    points = image_grid(6, 6)
    feats = function_samples(weights(template, models), points, flat=False)
    assert feats.shape == (4, template.num_nodes, 36)
    with torch.no_grad():
        for b, model in enumerate(models):
            expected = torch.cat([points.T, *(o.T for o in hidden_outputs(model, points))])
            torch.testing.assert_close(feats[b], expected, atol=1e-5, rtol=1e-5)
            # the output neuron is the SIREN's own output at the query points (incl. +0.5)
            torch.testing.assert_close(feats[b, -1], model(points)[:, 0], atol=1e-5, rtol=1e-5)


def test_all_parameter_forms_agree():
    models = sirens(3)
    template = GraphTemplate.from_module(models[0])
    points = random_query_points(10, 2, seed=3)
    state_dicts = [m.state_dict() for m in models]
    from_list = function_samples(weights(template, state_dicts), points)
    stacked = {k: torch.stack([sd[k] for sd in state_dicts]) for k in state_dicts[0]}
    from_stacked = function_samples(Weights.from_stacked(template, stacked), points)
    matrix = torch.stack([template.flatten(sd) for sd in state_dicts])
    from_matrix = function_samples(Weights(template, matrix), points)
    batch = weights(template, state_dicts).graphs()
    from_batch = function_samples(Weights.from_graphs(batch), points)
    for other in (from_stacked, from_matrix, from_batch):
        torch.testing.assert_close(from_list, other)
    assert from_list.shape == (3 * template.num_nodes, 10)


def test_plain_mlp_with_several_activations():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.LeakyReLU(0.2), nn.Linear(6, 5), nn.Tanh(),
                          nn.Linear(5, 4), nn.GELU(), nn.Linear(4, 2))
    template = GraphTemplate.from_module(model)
    points = random_query_points(7, 3, seed=0)
    feats = function_samples(weights(template, [model]), points, flat=False)[0]
    expected, h = [points.T], points
    with torch.no_grad():
        for module in model:
            h = module(h)
            if not isinstance(module, nn.Linear) or module is model[-1]:
                expected.append(h.T)
    torch.testing.assert_close(feats, torch.cat(expected), atol=1e-5, rtol=1e-5)


def test_pre_activation_option():
    models = sirens(2)
    template = GraphTemplate.from_module(models[0])
    points = image_grid(3, 3)
    feats = function_samples(weights(template, models), points,
                               pre_activation=True, flat=False)
    with torch.no_grad():
        z = models[1].seq[0](points)
    torch.testing.assert_close(feats[1, 2:34], z.T, atol=1e-5, rtol=1e-5)


def test_equivariant_under_hidden_neuron_permutation():
    """Permuting a hidden layer's neurons (rows of W_i, b_i and columns of W_{i+1}) leaves the
    function unchanged and permutes exactly those neurons' feature rows."""
    model = sirens(1, seed=5)[0]
    template = GraphTemplate.from_module(model)
    points = image_grid(5, 5)
    state = model.state_dict()
    perm1, perm2 = torch.randperm(32), torch.randperm(32)
    permuted = dict(state)
    permuted["seq.0.weight"] = state["seq.0.weight"][perm1]
    permuted["seq.0.bias"] = state["seq.0.bias"][perm1]
    permuted["seq.1.weight"] = state["seq.1.weight"][perm2][:, perm1]
    permuted["seq.1.bias"] = state["seq.1.bias"][perm2]
    permuted["seq.2.weight"] = state["seq.2.weight"][:, perm2]
    a, b = function_samples(weights(template, [state, permuted]), points, flat=False)
    node_perm = torch.cat([torch.arange(2), 2 + perm1, 34 + perm2, torch.tensor([66])])
    torch.testing.assert_close(b, a[node_perm], atol=1e-5, rtol=1e-5)


def test_with_function_samples_appends_columns_and_leaves_batch_alone():
    models = sirens(3)
    template = GraphTemplate.from_module(models[0])
    batch = weights(template, models).graphs()
    x_before = batch.x.clone()
    out = with_function_samples(batch, Weights.from_graphs(batch), image_grid(4, 4))
    assert out.x.shape == (batch.x.shape[0], 5 + 16)
    torch.testing.assert_close(out.x[:, :5], x_before)
    assert torch.equal(batch.x, x_before) and batch.x.shape[1] == 5
    assert out.num_graphs == 3 and torch.equal(out.batch, batch.batch)


def test_gradients_flow_to_parameters():
    models = sirens(2)
    template = GraphTemplate.from_module(models[0])
    flat = weights(template, models).params.requires_grad_(True)
    function_samples(Weights(template, flat), image_grid(3, 3)).sum().backward()
    assert flat.grad is not None and bool(flat.grad.abs().sum() > 0)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)),
    nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)),
])
def test_unsupported_architectures_raise(model):
    template = GraphTemplate.from_module(model)
    with pytest.raises(UnsupportedArchitectureError):
        function_samples(weights(template, [model]), torch.zeros(2, 3))


def test_wrong_point_width_raises():
    models = sirens(1)
    template = GraphTemplate.from_module(models[0])
    with pytest.raises(ValueError, match="points must be"):
        function_samples(weights(template, models), torch.zeros(4, 3))
