"""Weights: every form round-trips bit for bit, indexing selects networks, the container is
immutable, bad input is named."""

from __future__ import annotations

import gc

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph import function_samples as samples
from gmn.graph.weights import Weights
from gmn.testing import make_cnn, make_mlp, make_siren


def cnns(n: int = 4):
    nets = [make_cnn(seed=s) for s in range(n)]
    for i, net in enumerate(nets):  # distinct integer buffers per network
        net.bn1.num_batches_tracked.fill_(10 + i)
    return gmn.GraphTemplate.from_module(nets[0]), [n.state_dict() for n in nets]


def assert_states_equal(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in b)


def test_every_form_round_trips_bit_for_bit_with_integer_buffers():
    template, states = cnns()
    weights = Weights.from_state_dicts(template, states)
    assert len(weights) == 4 and weights.params.shape == (4, template.num_params)
    assert_states_equal(weights.state_dicts(), states)
    stacked = weights.stacked()
    assert all(torch.equal(stacked[k], torch.stack([s[k] for s in states])) for k in states[0])
    again = Weights.from_stacked(template, stacked)
    assert torch.equal(again.params, weights.params)
    assert torch.equal(again.int_buffers, weights.int_buffers)
    graphs = weights.graphs(y=torch.arange(4))
    expected = Batch.from_data_list([gmn.from_state_dict(s, like=make_cnn()) for s in states])
    assert torch.equal(graphs.x, expected.x) and torch.equal(graphs.int_buffers,
                                                             expected.int_buffers)
    back = Weights.from_graphs(graphs)
    assert torch.equal(back.params, weights.params)
    assert_states_equal(back.state_dicts(), states)


def test_indexing_selects_networks():
    template, states = cnns(5)
    weights = Weights.from_state_dicts(template, states)
    picks = [(2, [2]), (-1, [4]), (slice(1, 4), [1, 2, 3]), (torch.tensor([4, 0]), [4, 0]),
             ([3, 3], [3, 3]), (torch.tensor([True, False, False, True, False]), [0, 3])]
    for index, rows in picks:
        part = weights[index]
        assert isinstance(part, Weights) and part.template is template
        assert_states_equal(part.state_dicts(), [states[r] for r in rows])
    with pytest.raises(IndexError, match="network 5 of 5"):
        weights[5]
    with pytest.raises(IndexError, match="1-d index"):
        weights[torch.zeros(2, 2, dtype=torch.long)]


def test_immutable_and_operations_leave_the_input_alone():
    template, states = cnns(2)
    weights = Weights.from_state_dicts(template, states)
    before = weights.params.clone()
    with pytest.raises(AttributeError, match="immutable"):
        weights.params = before
    moved = weights.replace({"fc1.bias": torch.zeros(2, 16)})
    assert torch.equal(weights.params, before)
    assert torch.equal(moved.stacked()["fc1.bias"], torch.zeros(2, 16))
    others = [k for k in template.keys if k != "fc1.bias"]
    assert all(torch.equal(moved.stacked()[k], weights.stacked()[k]) for k in others)
    assert torch.equal(moved.int_buffers, weights.int_buffers)
    doubled = weights.to(dtype=torch.float64)
    assert doubled.dtype == torch.float64 and torch.equal(doubled.params.float(), before)
    assert doubled.device == weights.device


def test_bad_input_is_named():
    template, states = cnns(2)
    with pytest.raises(gmn.ConversionError, match=r"must be \[N, "):
        Weights(template, torch.zeros(2, 3))
    with pytest.raises(gmn.ConversionError, match="floating point"):
        Weights(template, torch.zeros(2, template.num_params, dtype=torch.long))
    with pytest.raises(gmn.ConversionError, match="from_state_dicts"):
        Weights(template, states)
    with pytest.raises(gmn.ConversionError, match=r"int_buffers must be \[2, 2\]"):
        Weights(template, torch.zeros(2, template.num_params), torch.zeros(3, 2))
    nan = torch.zeros(2, template.num_params)
    nan[1, 0] = float("nan")
    with pytest.raises(gmn.ConversionError, match="sample 1"):
        Weights(template, nan)
    assert len(Weights(template, nan, allow_nonfinite=True)) == 2
    with pytest.raises(gmn.ConversionError, match="'nope' is not a floating"):
        Weights.from_state_dicts(template, states).replace({"nope": torch.zeros(2)})
    with pytest.raises(gmn.ConversionError, match="no state_dicts"):
        Weights.from_state_dicts(template, [])
    mixed = Batch.from_data_list([gmn.from_state_dict(make_mlp()), gmn.from_state_dict(
        make_cnn())])
    with pytest.raises(gmn.ConversionError, match="several architectures"):
        Weights.from_graphs(mixed)


def test_the_spec_cache_does_not_keep_templates_alive():
    template = gmn.GraphTemplate.from_module(make_siren())
    samples.sequential_spec(template)
    assert template in samples._SPECS
    count = len(samples._SPECS)
    del template
    gc.collect()
    assert len(samples._SPECS) == count - 1
