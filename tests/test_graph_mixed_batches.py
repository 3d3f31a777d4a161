"""Graphs of different architectures batch together in any order and round-trip exactly."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

import gmn
from gmn.graph.convert import template_for
from gmn.graph.errors import ConversionError
from gmn.graph.mixed_batches import batch_groups, concat_batches, to_state_dicts
from gmn.graph.parameter_graph import REQUIRED_FIELDS
from gmn.graph.weights import Weights
from gmn.testing import make_cnn, make_mlp, make_resnet, make_siren

# BN CNN and ResNet have num_batches_tracked (K = 2 and 4), the MLP and SIREN have none
MODELS = {
    "cnn": lambda s: make_cnn(seed=s),
    "mlp": lambda s: make_mlp(seed=s),
    "resnet": lambda s: make_resnet(seed=s),
    "siren": lambda s: make_siren(seed=s, hidden=(8, 8)),
}


def assert_state_equal(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        assert torch.equal(got[key], expected[key]), key


def assert_batches_equal(got: Batch, expected: Batch) -> None:
    for field in (*REQUIRED_FIELDS, "node_act_arg", "int_buffers", "batch", "ptr"):
        assert torch.equal(got[field], expected[field]), field
    assert got.template == expected.template
    for key, slices in expected._slice_dict.items():
        assert torch.equal(got._slice_dict[key], slices), key


@pytest.mark.parametrize("order", list(itertools.permutations(MODELS)))
def test_every_order_batches_and_round_trips(order):
    nets = [MODELS[name](i) for i, name in enumerate(order)]
    batch = Batch.from_data_list([gmn.from_state_dict(m) for m in nets])
    assert batch.num_graphs == len(nets)
    for graph, net in zip(batch.to_data_list(), nets):
        assert_state_equal(gmn.to_state_dict(graph), net.state_dict())
    for got, net in zip(to_state_dicts(batch), nets):
        assert_state_equal(got, net.state_dict())


def test_learned_activation_arguments_round_trip_in_a_mixed_batch():
    torch.manual_seed(0)
    prelu = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.PReLU(4), torch.nn.Linear(4, 1))
    torch.nn.init.uniform_(prelu[1].weight, -1, 1)
    nets = [make_cnn(seed=0), prelu, make_siren(seed=1, hidden=(8, 8))]
    batch = Batch.from_data_list([gmn.from_state_dict(m) for m in nets])
    for got, net in zip(to_state_dicts(batch), nets):
        assert_state_equal(got, net.state_dict())


def test_num_batches_tracked_survives_when_the_first_graph_has_none():
    mlp, cnn = make_mlp(seed=0), make_cnn(seed=1)
    assert int(cnn.bn1.num_batches_tracked) > 0
    batch = Batch.from_data_list([gmn.from_state_dict(mlp), gmn.from_state_dict(cnn)])
    assert batch.int_buffers.shape == (1, 2)
    assert_state_equal(Weights.from_graphs(batch.to_data_list()[1]).state_dicts()[0],
                       cnn.state_dict())


def test_shuffled_dataloader_over_a_mixed_list():
    nets = [MODELS[name](s) for s in range(3) for name in MODELS]
    graphs = [gmn.from_state_dict(m, y=i) for i, m in enumerate(nets)]
    loader = DataLoader(graphs, batch_size=5, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        for label, state in zip(batch.y.tolist(), to_state_dicts(batch)):
            assert_state_equal(state, nets[label].state_dict())
            seen.append(label)
    assert sorted(seen) == list(range(len(nets)))


def test_grouped_batch_equals_from_data_list():
    groups, graphs, states = [], [], []
    for name, count in (("resnet", 2), ("mlp", 3), ("cnn", 1), ("siren", 2)):
        nets = [MODELS[name](s) for s in range(count)]
        template = template_for(nets[0])
        group_states = [m.state_dict() for m in nets]
        labels = torch.arange(len(states), len(states) + count)
        groups.append((Weights.from_state_dicts(template, group_states), labels))
        graphs += [gmn.from_state_dict(m, y=int(y)) for m, y in zip(nets, labels)]
        states += group_states
    batch = batch_groups(groups)
    expected = Batch.from_data_list(graphs)
    assert_batches_equal(batch, expected)
    assert torch.equal(batch.y, expected.y)
    for got, want in zip(batch.to_data_list(), graphs):
        assert_state_equal(gmn.to_state_dict(got), gmn.to_state_dict(want))
    for got, want in zip(to_state_dicts(batch), states):
        assert_state_equal(got, want)


def test_joined_batches_join_again():
    cnn = [make_cnn(seed=s) for s in range(2)]
    mlp = [make_mlp(seed=s) for s in range(2)]
    first = batch_groups([Weights.from_state_dicts(template_for(cnn[0]),
                                                  [m.state_dict() for m in cnn])])
    second = Batch.from_data_list([gmn.from_state_dict(m) for m in mlp])
    joined = concat_batches([second, first])
    expected = Batch.from_data_list([gmn.from_state_dict(m) for m in mlp + cnn])
    assert_batches_equal(joined, expected)


def test_batches_with_different_fields_are_refused_by_name():
    with_y = Batch.from_data_list([gmn.from_state_dict(make_mlp(), y=1)])
    without = Batch.from_data_list([gmn.from_state_dict(make_cnn())])
    with pytest.raises(ConversionError, match="labels y"):
        concat_batches([with_y, without])
