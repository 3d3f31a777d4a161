"""The ways a graph used to come out silently wrong; each is now right or a named error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gmn
from gmn.graph.vocab import ACTIVATION, EDGE_TYPE
from gmn.testing import make_mlp, make_residual_mlp, make_resnet


class FunctionAct(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.l1, self.l2, self.act = nn.Linear(4, 16), nn.Linear(16, 3), act

    def forward(self, x):
        return self.l2(self.act(self.l1(x)))


def hidden_acts(graph) -> set[int]:
    return set(graph.node_act[graph.node_io_pos == -1].tolist())


def test_the_cache_keys_on_function_attributes():
    assert hidden_acts(gmn.from_state_dict(FunctionAct(F.relu))) == {ACTIVATION["relu"]}
    assert hidden_acts(gmn.from_state_dict(FunctionAct(torch.sin))) == {ACTIVATION["sine"]}
    assert hidden_acts(gmn.from_state_dict(FunctionAct([torch.tanh][0]))) == {ACTIVATION["tanh"]}


def test_a_cached_config_never_hides_an_error():
    class Configured(nn.Module):
        def __init__(self, ops):
            super().__init__()
            self.ops, self.l1, self.l2 = ops, nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, x):
            h = self.l1(x)
            for op in self.ops:
                h = op(h)
            return self.l2(h)

    gmn.from_state_dict(Configured([torch.relu]))
    with pytest.raises(gmn.ConversionError, match="cos|exp"):
        gmn.from_state_dict(Configured([torch.exp]))


def test_in_place_statements_are_recorded():
    class InPlace(nn.Module):
        def __init__(self, style):
            super().__init__()
            self.style = style
            self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 5)

        def forward(self, x):
            h = self.fc1(x)
            if self.style == "relu_":
                h.relu_()
            elif self.style == "inplace":
                F.relu(h, inplace=True)
            y = self.fc2(h)
            if self.style == "add_":
                y.add_(h)
            return y

    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    for style in ("relu_", "inplace", "add_"):
        model = InPlace(style)
        graph = gmn.from_state_dict(model)
        if style != "add_":
            assert ACTIVATION["relu"] in graph.node_act.tolist(), style
        else:  # y + h: both are read afterwards, so a sum node gets two residual edges
            assert int((graph.edge_type == EDGE_TYPE["residual"]).sum()) == 2 * 5
        with torch.no_grad():
            torch.testing.assert_close(gmn.graph.execute(graph, x), model(x), rtol=1e-6,
                                       atol=1e-6)


def test_add_alpha_and_gelu_tanh_are_kept():
    class Alpha(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 5)

        def forward(self, x):
            h = torch.tanh(self.fc1(x))
            return torch.add(self.fc2(h), h, alpha=0.5)

    graph = gmn.from_state_dict(Alpha())
    residual = graph.edge_type == EDGE_TYPE["residual"]
    assert graph.edge_attr[residual, 0].tolist() == [0.5] * 5
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 1))
    assert hidden_acts(gmn.from_state_dict(model)) == {ACTIVATION["gelu_tanh"]}
    with pytest.raises(gmn.ConversionError, match="threshold"):
        gmn.from_state_dict(nn.Sequential(nn.Linear(3, 4), nn.Softplus(threshold=3.0),
                                          nn.Linear(4, 1)))


@pytest.mark.parametrize("build", [make_resnet, make_residual_mlp])
def test_a_bare_residual_state_dict_asks_for_like(build):
    with pytest.raises(gmn.ConversionError, match="like="):
        gmn.from_state_dict(build().state_dict())


def test_state_dict_values_are_checked_by_key():
    state = make_mlp().state_dict()
    numpy_state = {k: v.numpy() for k, v in state.items()}
    graph = gmn.from_state_dict(numpy_state, like=make_mlp())
    assert torch.equal(gmn.to_state_dict(graph)["0.weight"], state["0.weight"])
    for value, what in (([[1.0]], "list"), (1.0, "float"), (None, "NoneType"), ("w", "str")):
        with pytest.raises(gmn.ConversionError, match=rf"'2.bias' is a {what}"):
            gmn.from_state_dict({**state, "2.bias": value}, like=make_mlp())
    with pytest.raises(gmn.ConversionError, match="key 3 is a int"):
        gmn.from_state_dict({**state, 3: torch.zeros(1)})
    with pytest.raises(gmn.ConversionError, match="'2.bias' is on the meta device"):
        gmn.from_state_dict({**state, "2.bias": torch.zeros(3, device="meta")})
    with torch.device("meta"):
        meta_model = make_mlp()
    with pytest.raises(gmn.ConversionError, match="'0.weight' is on the meta device"):
        gmn.from_state_dict(meta_model)
    odd = {**state, "0.weight": state["0.weight"].double()}
    with pytest.raises(gmn.ConversionError, match=r"'0.weight' has dtype torch.float64"):
        gmn.from_state_dict(odd)
    assert isinstance(numpy_state["0.weight"], np.ndarray)


def test_in_place_changes_seen_through_another_name_are_refused():
    class Aliased(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.drop = nn.Linear(3, 5), nn.Linear(5, 2), nn.Dropout(0.1)

        def forward(self, x):
            h = self.fc1(x)
            seen = self.drop(h)  # in eval mode the same tensor as h
            seen.relu_()
            return self.fc2(h)

    with pytest.raises(gmn.ConversionError, match="view"):
        gmn.from_state_dict(Aliased().eval())

    class Augmented(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 5)

        def forward(self, x):
            h = torch.tanh(self.fc1(x))
            out = self.fc2(h)
            before = out
            out += h  # also changes `before`
            return before

    model = Augmented()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(gmn.from_state_dict(model), x), model(x))
