"""Bad input gets an error that names what is wrong; never a silently wrong graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.weights import Weights
from gmn.testing import make_cnn, make_mlp


class OwnWeight(nn.Module):
    """A module that uses its own raw parameter in forward."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.scale


class Bilinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.bil = nn.Linear(2, 3), nn.Bilinear(3, 3, 2)

    def forward(self, x):
        h = self.lin(x)
        return self.bil(h, h)


def test_unsupported_module_names_path_type_and_supported_list():
    with pytest.raises(gmn.UnsupportedModuleError, match=r"'bil'.*Bilinear.*Linear") as caught:
        gmn.from_state_dict(Bilinear())
    assert caught.value.path == "bil" and caught.value.module_type is nn.Bilinear
    with pytest.raises(gmn.UnsupportedModuleError, match=r"'0'.*LSTM"):
        gmn.from_state_dict(nn.Sequential(nn.LSTM(2, 3)))


def test_a_module_using_its_own_parameter_as_a_factor_is_a_scale_node():
    model = nn.Sequential(nn.Linear(2, 3), OwnWeight())
    with torch.no_grad():
        model[1].scale.copy_(torch.tensor([0.5, -2.0, 3.0]))
    graph = gmn.from_state_dict(model)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x))


def test_unsupported_parameter_free_operations_are_named():
    class Cumulative(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)

        def forward(self, x):
            return torch.cumsum(self.a(x), dim=1)

    with pytest.raises(gmn.ConversionError, match="cumsum"):
        gmn.from_state_dict(Cumulative())
    with pytest.raises(gmn.ConversionError, match="'1'.*PixelShuffle"):
        gmn.from_state_dict(nn.Sequential(nn.Conv2d(1, 4, 3), nn.PixelShuffle(2)))


def test_tensor_constant_in_forward_is_rejected():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            return self.lin(x) * torch.tensor([1.0, 0.0])

    with pytest.raises(gmn.ConversionError, match="tensor constant"):
        gmn.from_state_dict(Masked())


def test_reshapes_other_than_a_flatten_are_rejected():
    class Flattens(nn.Module):
        def __init__(self, features: int, shape: tuple):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(features, 2)
            self.shape = shape

        def forward(self, x):
            h = self.conv(x)
            return self.fc(h.view(*(h.size(0) if d == "B" else d for d in self.shape)))

    for shape in (("B", -1), (-1, 4 * 36), ("B", 4 * 36)):
        graph = gmn.from_state_dict(Flattens(4 * 36, shape))
        assert graph.num_edges == 2 * 4 * 36 + 4 * 9
    with pytest.raises(gmn.ConversionError, match="reshape.*6 features is no flatten"):
        gmn.from_state_dict(Flattens(6, (-1, 6)))
    with pytest.raises(gmn.ConversionError, match="'fc' reads a map.*mix positions"):
        gmn.from_state_dict(Flattens(36, ("B", 4, -1)))
    with pytest.raises(gmn.ConversionError, match=r"reshape.*\(<batch size>, 2, -1, 3\)"):
        gmn.from_state_dict(Flattens(36, ("B", 2, -1, 3)))


def test_prelu_slopes_that_are_not_per_neuron_are_rejected():
    flat = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.PReLU(2 * 4 * 4),
                         nn.Linear(2 * 4 * 4, 1))
    with pytest.raises(gmn.ConversionError, match="PReLU '2' has 32 parameters for 2 neurons"):
        gmn.from_state_dict(flat)

    class TokenPReLU(nn.Module):  # [B, 4 tokens, 4 features]: nn.PReLU(4) reads the tokens
        def __init__(self):
            super().__init__()
            self.proj, self.act, self.head = nn.Conv2d(1, 4, 2, 2), nn.PReLU(4), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.act(self.proj(x).flatten(2).transpose(1, 2)))

    with pytest.raises(gmn.ConversionError, match="of a token sequence"):
        gmn.from_state_dict(TokenPReLU())


def test_flattening_the_tokens_of_a_sequence_is_rejected():
    class TokensToBatch(nn.Module):  # x.view(-1, 4): [B, 4 tokens, 4] -> [4B, 4]
        def __init__(self):
            super().__init__()
            self.proj, self.head = nn.Conv2d(1, 4, 2, 2), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.proj(x).flatten(2).transpose(1, 2).reshape(-1, 4))

    with pytest.raises(gmn.ConversionError, match="never across the tokens of a sequence"):
        gmn.from_state_dict(TokensToBatch())


def test_a_constant_inside_the_network_is_the_bias_of_a_sum_node():
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)) - 1.5)

    model = Shifted()
    graph = gmn.from_state_dict(model)
    assert sorted(set(graph.x[:, 0].tolist()) & {-1.5}) == [-1.5]
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x))


def test_layouts_the_graph_cannot_express():
    with pytest.raises(gmn.ConversionError, match="'1' reads a map"):
        gmn.from_state_dict(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 3)))
    with pytest.raises(gmn.ConversionError, match="used twice"):
        shared = nn.Linear(3, 3)
        gmn.from_state_dict(nn.Sequential(shared, nn.ReLU(), shared))


def test_non_finite_parameters_raise_unless_allowed():
    model = make_mlp()
    with torch.no_grad():
        model[2].bias[1] = float("nan")
    with pytest.raises(gmn.ConversionError, match=r"'2.bias'.*allow_nonfinite"):
        gmn.from_state_dict(model)
    graph = gmn.from_state_dict(model, allow_nonfinite=True)
    assert torch.isnan(gmn.to_state_dict(graph)["2.bias"][1])
    template = gmn.GraphTemplate.from_module(model)
    matrix = torch.zeros(2, template.num_params)
    matrix[1, -1] = float("inf")
    with pytest.raises(gmn.ConversionError, match="sample 1"):
        template.batch(matrix)


def test_state_dict_key_and_shape_errors_name_the_key():
    like = make_cnn()
    state = dict(like.state_dict())
    missing = {k: v for k, v in state.items() if k != "bn2.running_var"}
    with pytest.raises(gmn.ConversionError, match="missing key 'bn2.running_var'"):
        gmn.from_state_dict(missing, like=like)
    with pytest.raises(gmn.ConversionError, match="unexpected key 'extra.weight'"):
        gmn.from_state_dict({**state, "extra.weight": torch.zeros(1)}, like=like)
    with pytest.raises(gmn.ConversionError, match=r"'fc1.weight' has shape \(3, 3\)"):
        gmn.from_state_dict({**state, "fc1.weight": torch.zeros(3, 3)}, like=like)
    with pytest.raises(gmn.ConversionError, match=r"'fc1.bias' has dtype torch.int64"):
        gmn.from_state_dict({**state, "fc1.bias": torch.zeros(16, dtype=torch.long)}, like=like)
    with pytest.raises(gmn.ConversionError, match=r"'fc1.bias' has dtype torch.float64, expected"):
        gmn.from_state_dict({**state, "fc1.bias": torch.zeros(16, dtype=torch.float64)}, like=like)
    template = gmn.GraphTemplate.from_module(like)
    stacked = Weights.from_state_dicts(template, [state, state]).stacked()
    with pytest.raises(gmn.ConversionError, match=r"'conv1.weight' has shape \(8, 1, 3\)"):
        Weights.from_stacked(template, {**stacked, "conv1.weight": torch.zeros(2, 8, 1, 3)})


def test_empty_integer_and_zero_dim_inputs():
    with pytest.raises(gmn.ConversionError, match="no floating-point parameters"):
        gmn.from_state_dict(nn.Sequential())
    with pytest.raises(gmn.ConversionError, match="no floating-point parameters"):
        gmn.from_state_dict(nn.Sequential(nn.ReLU()))
    with pytest.raises(gmn.ConversionError, match="empty"):
        gmn.from_state_dict({})
    with pytest.raises(gmn.ConversionError, match="'0.weight' has dtype torch.int32"):
        gmn.from_state_dict({"0.weight": torch.ones(2, 2, dtype=torch.int32)})
    with pytest.raises(gmn.ConversionError, match="'0.weight' is 0-d"):
        gmn.from_state_dict({"0.weight": torch.tensor(1.0)})

    class ZeroDim(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.lin.weight = nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(gmn.ConversionError, match="'lin.weight' is 0-d"):
        gmn.from_state_dict(ZeroDim())


def test_wrong_argument_types_and_encoding():
    with pytest.raises(gmn.ConversionError, match="encoding"):
        gmn.from_state_dict(make_mlp(), encoding="dense")
    with pytest.raises(gmn.ConversionError, match="like"):
        gmn.from_state_dict(make_mlp(), like=make_mlp())
    with pytest.raises(gmn.ConversionError, match="expected an nn.Module or a state_dict"):
        gmn.from_state_dict([1, 2])
    template = gmn.GraphTemplate.from_module(make_mlp())
    with pytest.raises(gmn.ConversionError, match=r"must be \[N, "):
        template.batch(torch.zeros(2, 3))
    with pytest.raises(gmn.ConversionError, match="nodes"):
        Weights.from_graphs(gmn.from_state_dict(make_cnn()), template)


def test_untraceable_forward_is_reported():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            return self.lin(x) if x.sum() > 0 else x

    with pytest.raises(gmn.ConversionError, match="torch.fx could not trace Branchy"):
        gmn.from_state_dict(Branchy())
