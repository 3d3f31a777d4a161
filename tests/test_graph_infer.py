"""Layouts inferred from bare state_dict keys: exact round trips, recorded unknowns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.vocab import ACTIVATION, EDGE_TYPE, NODE_TYPE
from gmn.testing import make_cnn, make_mlp, make_residual_mlp, make_siren


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


def sequential_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 10))


STATE_DICTS = {
    "sequential": lambda: make_mlp().state_dict(),
    "nested": lambda: NestedNet().state_dict(),
    "fc": lambda: NamedFc().state_dict(),
    "layers": lambda: nn.ModuleDict({"layers": nn.Sequential(nn.Linear(2, 3), nn.Tanh(),
                                                             nn.Linear(3, 1))}).state_dict(),
    "cnn pooled": lambda: sequential_cnn().state_dict(),
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
    model = make_mlp()
    inferred = gmn.from_state_dict(model.state_dict())
    traced = gmn.from_state_dict(model)
    for field in ("x", "edge_index", "edge_attr", "node_type", "node_layer", "node_io_pos"):
        assert torch.equal(inferred[field], traced[field]), field
    hidden = traced.node_io_pos == -1
    assert bool((inferred.node_act[hidden] == ACTIVATION["unknown"]).all())
    assert bool((inferred.node_act[~hidden] == ACTIVATION["identity"]).all())


def test_inferred_cnn_pools_or_flattens_by_shape():
    pooled = gmn.from_state_dict(sequential_cnn().state_dict())
    assert int((pooled.edge_type == EDGE_TYPE["linear_from_spatial"]).sum()) == 0
    assert int((pooled.node_type == NODE_TYPE["conv+batchnorm"]).sum()) == 2 * 8
    flattened = gmn.from_state_dict(flatten_cnn().state_dict())
    assert int((flattened.edge_type == EDGE_TYPE["linear_from_spatial"]).sum()) == 3 * 4 * 9


def test_layouts_that_cannot_be_inferred_ask_for_like():
    with pytest.raises(gmn.ConversionError, match="LayerNorm or GroupNorm"):
        gmn.from_state_dict(nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4)).state_dict())
    with pytest.raises(gmn.ConversionError, match="in_proj_weight"):
        gmn.from_state_dict({"attn.in_proj_weight": torch.zeros(6, 2)})
    with pytest.raises(gmn.ConversionError,
                       match=r"'1' reads 4 features, the layer before it gives 3.*key order"):
        gmn.from_state_dict({"0.weight": torch.zeros(3, 2), "1.weight": torch.zeros(2, 4)})


def test_keys_that_leave_room_for_a_skip_connection_ask_for_like():
    """A ModuleList (or named layers) of equal widths may add x + f(x) in forward: the keys
    cannot tell, so like= is required; an nn.Sequential's keys (numbered at the top level, or
    with gaps where activations sit) or widths that never repeat cannot hide one."""
    for state, where in ((make_siren().state_dict(), "'seq.0' and 'seq.1' both give 32"),
                         (make_cnn().state_dict(), "'conv1' and 'conv2' both give 8"),
                         (make_residual_mlp().state_dict(), "skip"),
                         (NamedFc().state_dict() | {"fc3.weight": torch.zeros(2, 2)},
                          "'fc2' and 'fc3' both give 2")):
        with pytest.raises(gmn.ConversionError, match=f"{where}.*like="):
            gmn.from_state_dict(state)
    siren = make_siren()
    graph = gmn.from_state_dict(siren.state_dict(), like=siren)
    assert not graph.template.metadata.get("inferred")


def _sorted(state: dict) -> dict:
    """As ``safetensors.load_file`` returns a state_dict: keys in sorted order."""
    return {k: state[k] for k in sorted(state)}


def test_sorted_keys_run_in_the_order_of_their_numbers():
    """Six linear layers with ReLUs between: sorted keys put layers.10 before layers.2; the
    graph must still chain 0 -> 2 -> 4 -> ... -> 10. With six Linear(6, 6) (issue 28) the
    parent's forward could add x + layers(x): like= is asked for instead of a guess."""
    torch.manual_seed(0)
    square = [m for _ in range(6) for m in (nn.Linear(6, 6), nn.ReLU())][:-1]
    state = _sorted(nn.ModuleDict({"layers": nn.Sequential(*square)}).state_dict())
    assert list(state)[2].startswith("layers.10.")
    with pytest.raises(gmn.ConversionError, match="the input and 'layers.0' both give 6.*like="):
        gmn.from_state_dict(state)
    widths = (4, 6, 6, 6, 6, 6, 3)
    blocks = [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())][:-1]
    layers = nn.ModuleDict({"layers": nn.Sequential(*blocks)})
    state = _sorted(layers.state_dict())
    graph = gmn.from_state_dict(state)
    expected = gmn.from_state_dict(layers.state_dict())
    for field in ("x", "edge_index", "edge_attr", "node_type", "node_layer"):
        assert torch.equal(graph[field], expected[field]), field
    back = gmn.to_state_dict(graph)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_sorted_keys_of_named_layers_use_the_one_order_that_fits():
    class LeNetKeys(nn.Module):  # conv1, conv2, fc1, fc2: a convolution never follows a linear
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 5), nn.Linear(5, 2)
            self.conv1, self.conv2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3)

    graph = gmn.from_state_dict(_sorted(LeNetKeys().state_dict()))
    conv = graph.edge_type == EDGE_TYPE["conv"]
    assert int(conv.sum()) == (4 * 1 + 8 * 4) * 9


def test_sorted_keys_that_leave_the_order_open_ask_for_like():
    class Named(nn.Module):  # input, hidden, output: sorted, hidden comes first; all fit
        def __init__(self):
            super().__init__()
            self.input, self.hidden, self.output = (nn.Linear(6, 6) for _ in range(3))

    with pytest.raises(gmn.ConversionError, match="cannot decide the order.*like="):
        gmn.from_state_dict(_sorted(Named().state_dict()))
    with pytest.raises(gmn.ConversionError, match="skip connection.*like="):
        gmn.from_state_dict(Named().state_dict())  # in order, but x + f(x) would fit


def test_sorted_keys_whose_widths_fit_no_order_say_key_order_is_the_likely_cause():
    state = _sorted(nn.Sequential(*[nn.Linear(a, b) for a, b in zip(
        range(2, 14), range(3, 15))]).state_dict())
    state["10.weight"] = torch.zeros(13, 5)  # a damaged layer: fits nowhere
    with pytest.raises(gmn.ConversionError, match="key order is the likely cause"):
        gmn.from_state_dict(state)
