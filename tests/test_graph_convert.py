"""Conversion to parameter graphs: exact inverse, every parameter once, DAG, known layouts."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.convert import template_for
from gmn.graph.parameter_graph import REQUIRED_FIELDS
from gmn.graph.vocab import ACTIVATION, EDGE_TYPE, NODE_TYPE
from gmn.models.siren import Sine
from gmn.testing import (
    FEED_FORWARD_BUILDERS,
    example_input,
    make_resnet,
    make_siren,
)

BUILDERS = FEED_FORWARD_BUILDERS
ENCODINGS = ["position", "padded"]


def single_module_networks() -> dict[str, nn.Module]:
    """One network per supported module kind (and activation), each kept minimal."""
    torch.manual_seed(0)
    return {
        "linear": nn.Sequential(nn.Linear(3, 4)),
        "linear_no_bias": nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2)),
        "conv1d": nn.Sequential(nn.Conv1d(2, 3, 5, padding=2), nn.ReLU(), nn.Conv1d(3, 1, 3)),
        "conv2d_no_bias": nn.Sequential(nn.Conv2d(2, 3, (3, 1), bias=False), nn.GELU()),
        "batchnorm1d": nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.SiLU(),
                                     nn.Linear(4, 2)),
        "batchnorm2d": nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
        "batchnorm_after_activation": nn.Sequential(nn.Linear(3, 4), nn.ReLU(),
                                                    nn.BatchNorm1d(4), nn.Linear(4, 2)),
        "layernorm": nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.LeakyReLU(0.2),
                                   nn.Linear(4, 2)),
        "groupnorm": nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ELU(),
                                   nn.Flatten(), nn.Linear(4 * 36, 2)),
        "sine": nn.Sequential(nn.Linear(2, 4), Sine(30.0), nn.Linear(4, 1)),
        "mlp_on_images": nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.ReLU(),
                                       nn.Linear(4, 2)),
        "batchnorm_without_affine": nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False),
                                                  nn.Linear(4, 2)),
        "batchnorm_without_statistics": nn.Sequential(
            nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, track_running_stats=False)),
        "pool_then_linear": nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Sigmoid(),
                                          nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                          nn.Linear(4, 2), nn.Softplus()),
    }


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values in every floating entry (norm statistics included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model.eval()


def all_networks():
    nets = {f.__name__: f(seed=1) for f in BUILDERS}
    nets.update({k: randomise(v) for k, v in single_module_networks().items()})
    return nets


NETWORKS = all_networks()


def assert_same_state_dict(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        assert got[key].shape == expected[key].shape, key
        assert torch.equal(got[key].view(-1).view(torch.uint8) if got[key].is_floating_point()
                           else got[key], expected[key].view(-1).view(torch.uint8)
                           if expected[key].is_floating_point() else expected[key]), key


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_round_trip_is_bitwise_and_loads_strictly(name, encoding):
    model = NETWORKS[name]
    graph = gmn.from_state_dict(model, encoding=encoding)
    for field in REQUIRED_FIELDS:
        assert field in graph, field
    state = gmn.to_state_dict(graph)
    assert_same_state_dict(state, model.state_dict())
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.data.zero_()
    clone.load_state_dict(state, strict=True)
    if name in {f.__name__ for f in BUILDERS}:
        x = example_input(model)
        assert torch.equal(clone(x), model(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_round_trip_keeps_dtype(dtype):
    model = make_resnet(seed=2, dtype=dtype)
    graph = gmn.from_state_dict(model)
    assert graph.x.dtype == dtype and graph.edge_attr.dtype == dtype
    assert_same_state_dict(gmn.to_state_dict(graph), model.state_dict())


def test_negative_zero_and_subnormals_survive():
    model = nn.Sequential(nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-0.0, 1e-42], [-1e-45, 3.0], [0.0, -2.0]]))
    state = gmn.to_state_dict(gmn.from_state_dict(model))
    assert_same_state_dict(state, model.state_dict())


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_parameter_appears_exactly_once(name, encoding):
    """Give each scalar a distinct value far from the encoding's constants; the graph's
    features must hold exactly that multiset of values."""
    model = copy.deepcopy(NETWORKS[name]).double()
    floating = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    total = sum(v.numel() for v in floating.values())
    values = 1000.0 + torch.arange(total, dtype=torch.float64)
    with torch.no_grad():
        start = 0
        for tensor in floating.values():
            tensor.copy_(values[start:start + tensor.numel()].view(tensor.shape))
            start += tensor.numel()
    graph = gmn.from_state_dict(model, encoding=encoding)
    features = torch.cat([graph.x.reshape(-1), graph.edge_attr.reshape(-1)])
    found = features[features >= 1000.0].sort().values
    assert torch.equal(found, values)


def is_dag(edge_index: torch.Tensor, num_nodes: int) -> bool:
    indegree = torch.bincount(edge_index[1], minlength=num_nodes).tolist()
    children = [[] for _ in range(num_nodes)]
    for s, t in edge_index.t().tolist():
        children[s].append(t)
    ready = [n for n in range(num_nodes) if indegree[n] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return seen == num_nodes


def is_weakly_connected(edge_index: torch.Tensor, num_nodes: int) -> bool:
    parent = list(range(num_nodes))

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for s, t in edge_index.t().tolist():
        parent[root(s)] = root(t)
    return len({root(n) for n in range(num_nodes)}) == 1


@pytest.mark.parametrize("name", list(NETWORKS))
def test_graph_is_a_connected_dag_with_consistent_fields(name):
    graph = gmn.from_state_dict(NETWORKS[name])
    n = graph.num_nodes
    assert is_dag(graph.edge_index, n)
    assert is_weakly_connected(graph.edge_index, n)
    assert torch.equal(graph.edge_layer, graph.node_layer[graph.edge_index[1]])
    # every edge goes to a deeper layer
    assert bool((graph.node_layer[graph.edge_index[0]] < graph.edge_layer).all())
    inputs = graph.node_type == NODE_TYPE["input"]
    assert bool((graph.node_layer[inputs] == 0).all())
    assert bool((graph.x[inputs] == 0).all())
    assert bool((graph.node_io_pos[inputs] >= 0).all())


def test_two_two_one_mlp_known_layout():
    model = randomise(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)))
    graph = gmn.from_state_dict(model)
    w1, b1, w2, b2 = (model.state_dict()[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
    # nodes: inputs 0, 1; hidden 2, 3; output 4. Edges in weight memory order.
    assert graph.edge_index.tolist() == [[0, 1, 0, 1, 2, 3], [2, 2, 3, 3, 4, 4]]
    assert torch.equal(graph.edge_attr[:, 0], torch.cat([w1.flatten(), w2.flatten()]))
    assert torch.equal(graph.edge_attr[:, 1:], torch.zeros(6, 2))
    assert torch.equal(graph.x[:, 0], torch.cat([torch.zeros(2), b1, b2]))
    assert graph.node_layer.tolist() == [0, 0, 1, 1, 2]
    assert graph.node_io_pos.tolist() == [0, 1, -1, -1, 0]
    relu, identity = ACTIVATION["relu"], ACTIVATION["identity"]
    assert graph.node_act.tolist() == [identity] * 2 + [relu] * 2 + [identity]
    assert graph.node_type.tolist() == [NODE_TYPE["input"]] * 2 + [NODE_TYPE["linear"]] * 3
    assert graph.edge_type.tolist() == [EDGE_TYPE["linear"]] * 6


def test_one_channel_two_by_two_conv_known_layout():
    conv = randomise(nn.Sequential(nn.Conv2d(1, 1, 2)))
    w = conv[0].weight.detach()
    position = gmn.from_state_dict(conv, encoding="position")
    assert position.edge_index.tolist() == [[0, 0, 0, 0], [1, 1, 1, 1]]
    expected = torch.tensor([[w[0, 0, 0, 0], -0.5, -0.5], [w[0, 0, 0, 1], -0.5, 0.5],
                             [w[0, 0, 1, 0], 0.5, -0.5], [w[0, 0, 1, 1], 0.5, 0.5]])
    assert torch.equal(position.edge_attr, expected)
    assert position.x[1, 0] == conv[0].bias[0]
    padded = gmn.from_state_dict(conv, encoding="padded")
    assert padded.edge_index.tolist() == [[0], [1]]
    assert torch.equal(padded.edge_attr, w.reshape(1, 4))


def test_padded_encoding_centres_smaller_kernels():
    model = randomise(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 1)))
    graph = gmn.from_state_dict(model, encoding="padded")
    assert graph.edge_attr.shape == (2, 9)
    one_by_one = torch.zeros(9)
    one_by_one[4] = model[1].weight.item()
    assert torch.equal(graph.edge_attr[1], one_by_one)


def test_siren_records_sine_and_output_offset():
    for style, offset in (("dwsnets", 0.5), ("standard", 0.0)):
        model = make_siren(style=style)
        graph = gmn.from_state_dict(model)
        hidden = graph.node_io_pos == -1
        assert bool((graph.node_act[hidden] == ACTIVATION["sine"]).all())
        assert bool((graph.node_act_arg[hidden] == 30.0).all())
        assert bool((graph.node_act[~hidden] == ACTIVATION["identity"]).all())
        assert graph.template.metadata.get("output_offset", 0.0) == offset


def test_batchnorm_is_fused_onto_the_layer_it_follows():
    model = NETWORKS["batchnorm2d"]
    graph = gmn.from_state_dict(model)
    conv_nodes = graph.node_type == NODE_TYPE["conv+batchnorm"]
    assert int(conv_nodes.sum()) == 4
    bn = model[1]
    expected = torch.stack([model[0].bias, bn.weight, bn.bias, bn.running_mean, bn.running_var], 1)
    assert torch.equal(graph.x[conv_nodes], expected.detach())
    standalone = gmn.from_state_dict(NETWORKS["batchnorm_after_activation"])
    assert int((standalone.node_type == NODE_TYPE["batchnorm"]).sum()) == 4
    assert int((standalone.edge_type == EDGE_TYPE["identity"]).sum()) == 4


def test_resnet_residual_edges_follow_the_dataflow():
    width = 8
    graph = gmn.from_state_dict(make_resnet(width=width))
    # block1 adds its input (width channels); block2 adds a 1x1-conv projection (2 * width)
    assert int((graph.edge_type == EDGE_TYPE["residual"]).sum()) == width + 2 * width
    residual = graph.edge_index[:, graph.edge_type == EDGE_TYPE["residual"]]
    sources = graph.node_type[residual[0]]
    assert set(sources.tolist()) == {NODE_TYPE["conv+batchnorm"]}


def test_flattened_feature_map_gives_spatial_edges():
    model = NETWORKS["groupnorm"]
    graph = gmn.from_state_dict(model)
    spatial = graph.edge_type == EDGE_TYPE["linear_from_spatial"]
    assert int(spatial.sum()) == 2 * 4 * 36  # out × channels × positions


def test_template_is_cached_per_architecture():
    a, b = make_siren(seed=1), make_siren(seed=2)
    assert template_for(a) is template_for(b)
    assert template_for(make_siren(style="standard")) is not template_for(a)
    assert template_for(a, encoding="padded") is not template_for(a)
    assert template_for(make_siren(hidden=(16, 16))) is not template_for(a)


def test_register_converter_for_a_custom_module():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(3, 2)

        def forward(self, x):
            return torch.cumsum(self.inner(x), dim=1)  # no graph expresses it

    def convert_scaled(builder, path, module, value):
        from gmn.graph.converters import convert_linear

        return convert_linear(builder, f"{path}.inner", module.inner, value)

    model = nn.Sequential(Scaled())
    with pytest.raises(gmn.ConversionError, match="cumsum"):
        gmn.from_state_dict(model)
    gmn.register_converter(Scaled, convert_scaled)
    graph = gmn.from_state_dict(model)
    assert graph.num_edges == 6
    assert_same_state_dict(gmn.to_state_dict(graph), model.state_dict())


def test_keyword_arguments_in_forward():
    class Keywords(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 1)

        def forward(self, x):
            return self.b(input=torch.nn.functional.relu(input=self.a(input=x)))

    graph = gmn.from_state_dict(Keywords())
    assert graph.node_act.tolist() == [ACTIVATION["identity"]] * 2 + [ACTIVATION["relu"]] * 3 + [
        ACTIVATION["identity"]]
