"""GraphTemplate: batched conversion equals one-by-one conversion, in every input form."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph.parameter_graph import REQUIRED_FIELDS
from gmn.graph.weights import Weights
from gmn.testing import make_cnn, make_resnet, make_siren

BUILDERS = {"siren": make_siren, "cnn": make_cnn, "resnet": make_resnet}


def models(name: str, n: int = 3):
    return [BUILDERS[name](seed=s) for s in range(n)]


def assert_batches_equal(got: Batch, expected: Batch) -> None:
    for field in (*REQUIRED_FIELDS, "node_act_arg", "batch", "ptr"):
        assert torch.equal(got[field], expected[field]), field
    assert got.num_graphs == expected.num_graphs
    if "int_buffers" in expected:
        assert torch.equal(got.int_buffers, expected.int_buffers)


@pytest.mark.parametrize("encoding", ["position", "padded"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_batch_equals_converting_each_model(name, encoding):
    nets = models(name)
    template = gmn.GraphTemplate.from_module(nets[0], encoding=encoding)
    states = [m.state_dict() for m in nets]
    expected = Batch.from_data_list([gmn.from_state_dict(m, encoding=encoding) for m in nets])
    assert_batches_equal(Weights.from_state_dicts(template, states).graphs(), expected)
    stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
    assert_batches_equal(Weights.from_stacked(template, stacked).graphs(), expected)
    matrix = torch.stack([template.flatten(s) for s in states])
    from_matrix = template.batch(matrix)
    for field in (*REQUIRED_FIELDS, "batch", "ptr"):
        assert torch.equal(from_matrix[field], expected[field]), field


def test_flatten_is_floating_entries_in_state_dict_order():
    model = make_resnet()
    template = gmn.GraphTemplate.from_module(model)
    expected = torch.cat([v.reshape(-1) for v in model.state_dict().values()
                          if v.is_floating_point()])
    assert torch.equal(template.flatten(model.state_dict()), expected)
    assert template.num_params == expected.numel()
    assert "bn.num_batches_tracked" not in template.keys


def test_batch_round_trips_through_to_state_dicts():
    nets = models("resnet")
    template = gmn.GraphTemplate.from_module(nets[0])
    states = [m.state_dict() for m in nets]
    batch = Weights.from_state_dicts(template, states).graphs(y=torch.tensor([3, 1, 4]))
    assert batch.y.tolist() == [3, 1, 4]
    for got, expected in zip(Weights.from_graphs(batch).state_dicts(), states):
        assert list(got) == list(expected)
        assert all(torch.equal(got[k], expected[k]) for k in expected)
    for graph, expected in zip(batch.to_data_list(), states):
        got = gmn.to_state_dict(graph)
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_matrix_batch_round_trips_and_zeroes_integer_buffers():
    nets = models("cnn")
    template = gmn.GraphTemplate.from_module(nets[0])
    matrix = torch.stack([template.flatten(m.state_dict()) for m in nets])
    batch = template.batch(matrix)
    assert torch.equal(template.params_of(batch), matrix)
    restored = Weights.from_graphs(batch).state_dicts()
    assert int(restored[0]["bn1.num_batches_tracked"]) == 0
    nets[0].load_state_dict(restored[1], strict=True)


def test_stacked_dict_of_a_siren_dataset():
    template = gmn.GraphTemplate.from_module(make_siren())
    generator = torch.Generator().manual_seed(0)
    stacked = {k: torch.randn(5, *s, generator=generator)
               for k, s in zip(template.keys, template.shapes)}
    batch = Weights.from_stacked(template, stacked).graphs()
    assert batch.num_graphs == 5
    back = Weights.from_graphs(batch).stacked()
    assert all(torch.equal(back[k], stacked[k]) for k in stacked)


def test_batch_has_no_per_sample_python_work(monkeypatch):
    """Converting N models must not call the single-graph path N times."""
    template = gmn.GraphTemplate.from_module(make_siren())
    calls = []
    monkeypatch.setattr(template, "graph", lambda *a, **k: calls.append(1))
    matrix = torch.randn(64, template.num_params)
    batch = template.batch(matrix)
    assert calls == [] and batch.num_graphs == 64
    assert batch.x.shape == (64 * template.num_nodes, 5)


def test_batches_above_the_huge_page_threshold_equal_each_graph():
    """Past 8 MiB the outputs come from ``gmn.large_tensors.empty`` (huge pages on Linux)."""
    from gmn import large_tensors

    template = gmn.GraphTemplate.from_module(make_siren(hidden=(32, 32)))
    n = 1 + large_tensors.MIN_BYTES // (4 * template.num_edges * template.edge_dim)
    matrix = torch.randn(n, template.num_params, generator=torch.Generator().manual_seed(0))
    stacked = Weights(template, matrix).stacked()
    batch = Weights.from_stacked(template, stacked).graphs()
    assert batch.edge_attr.numel() * 4 >= large_tensors.MIN_BYTES
    assert torch.equal(template.params_of(batch), matrix)
    for i in (0, n // 2, n - 1):
        single = template.graph({k: v[i] for k, v in stacked.items()})
        assert torch.equal(batch.get_example(i).x, single.x)
        assert torch.equal(batch.get_example(i).edge_attr, single.edge_attr)

