"""The one activation table: its functions equal the modules it recognises, every use reads it,
and users can add their own."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

import gmn
from gmn.graph import activations, vocab
from gmn.graph.activations import ARG
from gmn.graph.function_samples import UnsupportedArchitectureError, function_samples
from gmn.graph.weights import Weights
from tests.test_graph_convert import assert_same_state_dict
from tests.test_graph_template import assert_batches_equal

MODULES = [nn.ReLU(), nn.LeakyReLU(0.0), nn.LeakyReLU(0.3), nn.GELU(), nn.GELU("tanh"),
           nn.Tanh(), nn.Sigmoid(), nn.SiLU(), nn.ELU(0.7), nn.Softplus(beta=2.5), nn.Hardswish(),
           nn.Hardsigmoid(), nn.Mish(), nn.ReLU6(), nn.SELU(), nn.Softsign(), nn.CELU(0.6),
           nn.RReLU(0.1, 0.3).eval(), nn.LogSigmoid(), nn.Tanhshrink(), nn.Softshrink(0.3),
           nn.Hardshrink(0.4)]


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_each_record_computes_what_its_module_computes(module):
    record, arg, _ = activations.match_module(module, repr(module))
    z = torch.linspace(-8, 8, 101, dtype=torch.float64)
    torch.testing.assert_close(record.fn(z, arg), module(z), rtol=0, atol=0)
    assert vocab.ACTIVATIONS[vocab.ACTIVATION[record.name]] == record.name


@pytest.mark.parametrize("module", [nn.Softplus(beta=3.0), nn.LeakyReLU(0.0), nn.ELU(0.2)],
                         ids=repr)
def test_function_samples_use_the_argument_as_recorded(module):
    model = nn.Sequential(nn.Linear(2, 4), module, nn.Linear(4, 1)).double()
    template = gmn.GraphTemplate.from_module(model)
    points = torch.randn(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = function_samples(Weights.from_state_dicts(template, [model.state_dict()]), points,
                             flat=False)
    torch.testing.assert_close(out[0, -1], model(points)[:, 0], rtol=0, atol=1e-12)


def test_prelu_slopes_are_parameters_of_the_graph():
    """PReLU's slopes are ``node_act_arg`` (per neuron, or one written to every neuron),
    gathered from the parameters: a batch equals the graphs converted one by one and gives the
    state_dicts back bit for bit; function samples refuse learned activations."""
    nets = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(2, 4), nn.PReLU(4), nn.Linear(4, 3), nn.PReLU(),
                            nn.Linear(3, 1))
        nn.init.uniform_(net[1].weight, -1, 1)
        nn.init.uniform_(net[3].weight, -1, 1)
        nets.append(net)
    template = gmn.GraphTemplate.from_module(nets[0])
    weights = Weights.from_state_dicts(template, [m.state_dict() for m in nets])
    batch = weights.graphs()
    assert_batches_equal(batch, Batch.from_data_list([gmn.from_state_dict(m) for m in nets]))
    graph = batch.get_example(2)  # nodes: 2 inputs, 4 + 3 hidden, 1 output
    assert torch.equal(graph.node_act_arg[2:6], nets[2][1].weight.detach())
    assert torch.equal(graph.node_act_arg[6:9], nets[2][3].weight.detach().expand(3))
    assert bool((graph.node_act[2:9] == vocab.ACTIVATION["prelu"]).all())
    for state, net in zip(Weights.from_graphs(batch).state_dicts(), nets):
        assert_same_state_dict(state, net.state_dict())
    with pytest.raises(UnsupportedArchitectureError, match="learned parameters"):
        function_samples(weights, torch.zeros(5, 2))


class UserSine(nn.Module):
    """A SIREN activation as third-party code writes it: a multiplication, then sin."""

    def __init__(self, w0: float):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(x * self.w0)


def test_multiplication_by_a_constant_before_sin_keeps_w0():
    model = nn.Sequential(nn.Linear(2, 8), UserSine(25.0), nn.Linear(8, 1))
    graph = gmn.from_state_dict(model)
    hidden = graph.node_io_pos == -1
    assert set(graph.node_act[hidden].tolist()) == {vocab.ACTIVATION["sine"]}
    assert set(graph.node_act_arg[hidden].tolist()) == {25.0}
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x))


def test_a_multiplication_elsewhere_is_a_scale_node_or_a_weight_scale():
    """``2 * relu(h)`` read by a linear layer scales that layer's weight (node_spec
    weight_scale); read by anything else it is a scale node of constant weight 2; a division of
    two tensors is refused naming the module."""
    from gmn.graph.parameter_graph import NODE_SPEC

    class Doubled(nn.Module):
        def forward(self, x):
            return 2.0 * torch.relu(x)

    x = torch.randn(5, 2)
    folded = nn.Sequential(nn.Linear(2, 3), Doubled(), nn.Linear(3, 1))
    graph = gmn.from_state_dict(folded)
    output = graph.node_io_pos >= 0
    output &= graph.node_layer == graph.node_layer.max()
    assert graph.node_spec[output, NODE_SPEC.index("weight_scale")].tolist() == [2.0]
    scaled = nn.Sequential(nn.Linear(2, 3), Doubled(), nn.Tanh(), nn.Linear(3, 1))
    graph_scaled = gmn.from_state_dict(scaled)
    scale = graph_scaled.edge_type == vocab.EDGE_TYPE["scale"]
    assert int(scale.sum()) == 3 and bool((graph_scaled.edge_attr[scale, 0] == 2.0).all())
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), folded(x))
        torch.testing.assert_close(gmn.graph.execute(graph_scaled, x), scaled(x))

    class Ratio(nn.Module):
        def forward(self, x):
            return x / torch.relu(x)

    with pytest.raises(gmn.ConversionError, match=r"division.*in module '1' \(Ratio\)"):
        gmn.from_state_dict(nn.Sequential(nn.Linear(2, 3), Ratio(), nn.Linear(3, 1)))


@pytest.fixture
def own_activation_table(monkeypatch):
    """Registrations inside the test are undone after it (the table is process-global and
    other modules hold its dictionaries, so they are restored in place)."""
    monkeypatch.setattr(vocab, "ACTIVATIONS", vocab.ACTIVATIONS)
    tables = [vocab.ACTIVATION, activations.TABLE, activations._BY_MODULE,
              activations._BY_FUNCTION]
    saved = [{k: list(v) if isinstance(v, list) else v for k, v in t.items()} for t in tables]
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)


class Damped(nn.Module):
    """x·exp(−a·x²), an activation the table does not know (exp has no graph)."""

    def __init__(self, a: float):
        super().__init__()
        self.a = a

    def forward(self, x):
        return x * torch.exp(-self.a * x * x)


def test_register_activation_for_a_user_module(own_activation_table):
    model = nn.Sequential(nn.Linear(2, 6), Damped(0.5), nn.Linear(6, 1))
    with pytest.raises(gmn.ConversionError, match="exp.*Damped"):
        gmn.from_state_dict(model)
    record = gmn.register_activation(
        "damped_test", lambda z, a: z * torch.exp(-a * z * z), modules=(Damped,),
        settings={"a": ARG})
    graph = gmn.from_state_dict(model)
    hidden = graph.node_io_pos == -1
    assert set(graph.node_act[hidden].tolist()) == {vocab.ACTIVATION[record.name]}
    assert set(graph.node_act_arg[hidden].tolist()) == {0.5}
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x))
    with pytest.raises(ValueError, match="already registered"):
        gmn.register_activation("damped_test", record.fn)


def test_graph_does_not_import_gmn_models():
    import subprocess
    import sys

    code = ("import sys, gmn; gmn.from_state_dict(__import__('torch').nn.Linear(2, 2)); "
            "print('gmn.models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class Cube(nn.Module):
    def forward(self, x):
        return x ** 3


def test_what_is_built_after_register_activation_knows_it(own_activation_table):
    from gmn.graph.signs import sample_signs
    from gmn.nn import GMN

    gmn.register_activation("cube_test", lambda z, a: z ** 3, modules=(Cube,))
    model = nn.Sequential(nn.Linear(2, 4), Cube(), nn.Linear(4, 1))
    graph = gmn.from_state_dict(model)
    assert int(graph.node_act.max()) == len(vocab.ACTIVATIONS) - 1  # the new, last index
    assert GMN(out_dim=3)(graph).shape == (1, 3)  # its embedding table has a row for it
    # cube is odd, but not one of the activations sign flips are declared for: their own error
    with pytest.raises(ValueError, match=r"activations \['cube_test'\]"):
        sample_signs(gmn.GraphTemplate.from_module(model), 2)
