"""Layouts inferred from bare state_dict keys: exact round trips, recorded unknowns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.vocab import ACTIVATION, EDGE_TYPE, NODE_TYPE
from gmn.testing import make_cnn, make_mlp, make_siren


class NestedNet(nn.Module):
    """``net.{i}.linear.weight`` keys."""

    def __init__(self):
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Module()])
        self.net[0].linear = nn.Linear(3, 5)
        self.net[1].linear = nn.Linear(5, 2)


class NamedFc(nn.Module):
    """``fc1.weight``, ``fc2.weight`` keys."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 6), nn.Linear(6, 2, bias=False)


def flatten_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 9, 3))


STATE_DICTS = {
    "seq (siren)": lambda: make_siren().state_dict(),
    "sequential": lambda: make_mlp().state_dict(),
    "nested": lambda: NestedNet().state_dict(),
    "fc": lambda: NamedFc().state_dict(),
    "layers": lambda: nn.ModuleDict({"layers": nn.Sequential(nn.Linear(2, 3), nn.Tanh(),
                                                             nn.Linear(3, 1))}).state_dict(),
    "cnn pooled": lambda: make_cnn().state_dict(),
    "cnn flattened": lambda: flatten_cnn().state_dict(),
    "layernorm": lambda: nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    .state_dict(),
}


@pytest.mark.parametrize("name", list(STATE_DICTS))
def test_inferred_layout_round_trips_exactly(name):
    state = STATE_DICTS[name]()
    graph = gmn.from_state_dict(state)
    assert graph.template.metadata["inferred"] is True
    back = gmn.to_state_dict(graph)
    assert list(back) == list(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_inferred_graph_matches_the_module_graph_except_activations():
    model = make_siren()
    inferred = gmn.from_state_dict(model.state_dict())
    traced = gmn.from_state_dict(model)
    for field in ("x", "edge_index", "edge_attr", "node_type", "node_layer", "node_io_pos"):
        assert torch.equal(inferred[field], traced[field]), field
    hidden = traced.node_io_pos == -1
    assert bool((inferred.node_act[hidden] == ACTIVATION["unknown"]).all())
    assert bool((inferred.node_act[~hidden] == ACTIVATION["identity"]).all())


def test_inferred_cnn_pools_or_flattens_by_shape():
    pooled = gmn.from_state_dict(make_cnn().state_dict())
    assert int((pooled.edge_type == EDGE_TYPE["linear_from_spatial"]).sum()) == 0
    assert int((pooled.node_type == NODE_TYPE["conv+batchnorm"]).sum()) == 2 * 8
    flattened = gmn.from_state_dict(flatten_cnn().state_dict())
    assert int((flattened.edge_type == EDGE_TYPE["linear_from_spatial"]).sum()) == 3 * 4 * 9


def test_layouts_that_cannot_be_inferred_ask_for_like():
    with pytest.raises(gmn.ConversionError, match="LayerNorm or GroupNorm"):
        gmn.from_state_dict(nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4)).state_dict())
    with pytest.raises(gmn.ConversionError, match="in_proj_weight"):
        gmn.from_state_dict({"attn.in_proj_weight": torch.zeros(6, 2)})
    with pytest.raises(gmn.ConversionError, match=r"'1' expects 4 input features"):
        gmn.from_state_dict({"0.weight": torch.zeros(3, 2), "1.weight": torch.zeros(2, 4)})
