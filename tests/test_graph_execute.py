"""gmn.graph.execute runs a graph as its network: equal to the model on every architecture,
batched, and edits made in graph space take effect."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gmn
from gmn.graph import builder
from gmn.graph.vocab import EDGE_TYPE
from gmn.graph.weights import Weights
from gmn.testing import FEED_FORWARD_BUILDERS, example_input, make_mlp, make_transformer


@pytest.mark.parametrize("encoding", ["position", "padded"])
@pytest.mark.parametrize("build", [*FEED_FORWARD_BUILDERS, make_transformer],
                         ids=lambda b: b.__name__)
def test_execute_equals_the_model(build, encoding):
    model = build(dtype=torch.float64)
    x = example_input(model).double()
    graph = gmn.from_state_dict(model, encoding=encoding)
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x), rtol=1e-12,
                                   atol=1e-12)


def test_execute_runs_each_graph_of_a_batch():
    models = [make_mlp(seed=s) for s in range(3)]
    template = gmn.GraphTemplate.from_module(models[0])
    batch = Weights.from_state_dicts(template, [m.state_dict() for m in models]).graphs()
    x = example_input(models[0])
    with torch.no_grad():
        out = gmn.graph.execute(batch, x)
        torch.testing.assert_close(out, torch.stack([m(x) for m in models]))


def test_an_edit_in_graph_space_takes_effect():
    model = make_mlp(dtype=torch.float64)
    graph = gmn.from_state_dict(model)
    graph.edge_attr = graph.edge_attr.clone()
    last = (graph.edge_layer == graph.edge_layer.max()) & (
        graph.edge_type == EDGE_TYPE["linear"])
    graph.edge_attr[last, 0] = 0.0  # cut the last layer's weights: the output is its bias
    x = example_input(model).double()
    expected = model[-1].bias.detach().expand(len(x), -1)
    torch.testing.assert_close(gmn.graph.execute(graph, x), expected)


def test_a_custom_converter_is_not_guessed():
    class Doubler(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(2, 2)

        def forward(self, x):
            return 2 * self.inner(x)

    def convert(b, path, module, value):
        from gmn.graph.converters import convert_linear

        return convert_linear(b, f"{path}.inner", module.inner, value)

    gmn.register_converter(Doubler, convert)
    graph = gmn.from_state_dict(nn.Sequential(Doubler()))
    with pytest.raises(gmn.ConversionError, match="'0' was converted by a user"):
        gmn.graph.execute(graph, torch.zeros(1, 2))


def test_huge_layers_are_refused_before_allocation(monkeypatch):
    with torch.device("meta"):
        huge = nn.Sequential(nn.Linear(10_000, 10_000), nn.ReLU(), nn.Linear(10_000, 10))
    monkeypatch.setattr(builder, "MEMORY_LIMIT_BYTES", 2**30)
    with pytest.raises(gmn.ConversionError, match=r"100,000,000 edges \(after module '0'\), "
                                                  r"about 14.0 GiB"):
        gmn.GraphTemplate.from_module(huge)


def test_concrete_args_fix_other_forward_arguments():
    class Flagged(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x, skip_relu=None):
            h = self.a(x)
            if skip_relu is None or not skip_relu:
                h = torch.relu(h)
            return self.b(h)

    model = Flagged()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    plain = gmn.from_state_dict(model, concrete_args={"skip_relu": True})
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(plain, x), model(x, skip_relu=True))
        activated = gmn.from_state_dict(model, concrete_args={"skip_relu": False})
        torch.testing.assert_close(gmn.graph.execute(activated, x), model(x))
