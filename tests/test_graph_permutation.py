"""Hidden-neuron permutations keep the function and give an isomorphic graph."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.convert import template_for
from gmn.graph.permutation import node_permutation, permute, sample_permutations
from gmn.graph.weights import Weights
from gmn.testing import (
    FEED_FORWARD_BUILDERS,
    example_input,
    make_cnn,
    make_mlp,
    make_residual_mlp,
    make_resnet,
    make_siren,
)

BUILDERS = FEED_FORWARD_BUILDERS


def permute_state(model: nn.Module, state: dict, generator: torch.Generator) -> dict:
    """One state_dict of ``model``'s architecture, its hidden neurons permuted."""
    weights = Weights.from_state_dicts(template_for(model), [state])
    return permute(weights, generator).state_dicts()[0]


def groupnorm_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(),
                         nn.Conv2d(8, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3)).double().eval()


def flattened_conv1d_net() -> nn.Module:
    """Conv1d whose flattened feature map feeds a linear layer (channels move with their
    spatial positions)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6, 3)).double().eval()


def outputs(model: nn.Module, state: dict, x: torch.Tensor) -> torch.Tensor:
    clone = copy.deepcopy(model)
    clone.load_state_dict(state, strict=True)
    return clone(x)


@pytest.mark.parametrize("build", BUILDERS + [groupnorm_net, flattened_conv1d_net])
def test_permuted_state_dict_computes_the_same_function(build):
    model = build(seed=3, dtype=torch.float64) if build in BUILDERS else build()
    x = example_input(model, size=8).double()
    state = model.state_dict()
    permuted = permute_state(model, state, torch.Generator().manual_seed(0))
    assert any(not torch.equal(permuted[k], state[k]) for k in state)
    torch.testing.assert_close(outputs(model, permuted, x), model(x), rtol=1e-12, atol=1e-12)


def test_groupnorm_channels_stay_in_their_group():
    template = template_for(groupnorm_net())
    permutations = sample_permutations(template, 50, torch.Generator().manual_seed(1))
    conv_group = next(g for g, (start, size) in enumerate(template.groups) if size == 8)
    perm = permutations[conv_group]
    assert bool((perm // 4 == torch.arange(8) // 4).all())
    assert not bool((perm == torch.arange(8)).all())


def test_stacked_batch_gets_one_permutation_per_sample():
    model = make_siren(dtype=torch.float64)
    template = template_for(model)
    stacked = {k: torch.stack([v] * 6) for k, v in model.state_dict().items()}
    weights = Weights.from_stacked(template, stacked)
    permuted = permute(weights, torch.Generator().manual_seed(0)).stacked()
    rows = permuted["seq.0.bias"]
    assert len({tuple(r.tolist()) for r in rows}) == 6  # all different
    x = example_input(model).double()
    for i in range(6):
        state = {k: v[i] for k, v in permuted.items()}
        torch.testing.assert_close(outputs(model, state, x), model(x), rtol=1e-12, atol=1e-12)


def test_matrix_input_and_seeding():
    model = make_resnet(dtype=torch.float64)
    template = template_for(model)
    matrix = torch.stack([template.flatten(model.state_dict())] * 3)
    weights = Weights(template, matrix)
    a = permute(weights, torch.Generator().manual_seed(5)).params
    b = permute(weights, torch.Generator().manual_seed(5)).params
    c = permute(weights, torch.Generator().manual_seed(6)).params
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a.sort(dim=1).values, matrix.sort(dim=1).values)


@pytest.mark.parametrize("encoding", ["position", "padded"])
@pytest.mark.parametrize("build", [make_mlp, make_cnn, make_resnet, make_residual_mlp])
def test_permuting_hidden_neurons_gives_an_isomorphic_graph(build, encoding):
    model = build(seed=2)
    template = template_for(model, encoding=encoding)
    permutations = sample_permutations(template, 1, torch.Generator().manual_seed(0))
    from gmn.graph.permutation import parameter_permutation

    flat = template.flatten(model.state_dict()).unsqueeze(0)
    moved = flat.gather(1, parameter_permutation(template, permutations))
    original = gmn.from_state_dict(model, encoding=encoding)
    permuted = template.batch(moved)
    old_of_new = node_permutation(template, permutations)[0]
    assert not torch.equal(old_of_new, torch.arange(template.num_nodes))
    for field in ("x", "node_type", "node_layer", "node_io_pos", "node_act"):
        assert torch.equal(permuted[field], original[field][old_of_new]), field
    new_of_old = torch.empty_like(old_of_new)
    new_of_old[old_of_new] = torch.arange(len(old_of_new))

    def edges(graph, relabel):
        ends = relabel[graph.edge_index] if relabel is not None else graph.edge_index
        rows = torch.cat([ends.t().double(), graph.edge_type[:, None].double(),
                          graph.edge_attr.double()], dim=1)
        return sorted(map(tuple, rows.tolist()))

    assert edges(original, new_of_old) == edges(permuted, None)


def test_permuting_a_batch_of_graphs():
    nets = [make_cnn(seed=s) for s in range(3)]
    template = template_for(nets[0])
    batch = Weights.from_state_dicts(template, [m.state_dict() for m in nets]).graphs(
        y=torch.tensor([0, 1, 2]))
    permuted = permute(Weights.from_graphs(batch), torch.Generator().manual_seed(0)).graphs(
        y=batch.y)
    assert permuted.y.tolist() == [0, 1, 2]
    assert torch.equal(permuted.int_buffers, batch.int_buffers)
    assert torch.equal(permuted.edge_index, batch.edge_index)
    assert not torch.equal(permuted.edge_attr, batch.edge_attr)
    x = example_input(nets[0])
    for model, state in zip(nets, Weights.from_graphs(permuted).state_dicts()):
        torch.testing.assert_close(outputs(model, state, x), model(x), rtol=1e-4, atol=1e-5)
