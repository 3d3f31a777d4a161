"""Issue 24: code nobody here wrote. A subclass with its own forward is traced through it, the
graph's fields tell functions apart, execute accepts every graph the converters make, and
refusals point at the user's code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gmn
from tests import corpus_mlp, corpus_vision
from tests.test_graph_convert import assert_same_state_dict

GENERATOR = torch.Generator().manual_seed(0)


def run(model: nn.Module, x: torch.Tensor) -> None:
    """The graph equals the model and gives its state_dict back bit for bit."""
    model.eval()
    graph = gmn.from_state_dict(model)
    with torch.no_grad():
        torch.testing.assert_close(gmn.graph.execute(graph, x), model(x), rtol=1e-5, atol=1e-6)
    assert_same_state_dict(gmn.to_state_dict(graph), model.state_dict())


@pytest.mark.parametrize("build, shape", [
    (corpus_mlp.siren_subclass, (6, 2)),  # R1: sin(30 · Linear(x)) in a Linear's forward
    (corpus_mlp.scaled_linear_mlp, (6, 4)),  # R2: F.linear(x, 0.5 · weight, bias)
    (corpus_vision.conv_same_net, (2, 3, 16, 16)),  # R3: F.pad then F.conv2d(padding=0)
    (lambda: corpus_vision.bit_resnet(corpus_vision.StdConv2d), (2, 3, 8, 8)),  # R4
    (lambda: corpus_vision.bit_resnet(corpus_vision.StdConv2dBatchNorm), (2, 3, 8, 8)),
    (corpus_vision.stylegan_mapping, (3, 8)),  # EqualLinear: weight and bias scaled
], ids=["R1 siren", "R2 scaled linear", "R3 conv2d same", "R4 std conv", "timm std conv",
        "equal linear"])
def test_a_subclass_with_its_own_forward_is_traced_through_it(build, shape):
    torch.manual_seed(0)
    run(build(), torch.randn(shape, generator=GENERATOR))


def test_a_weight_transform_the_graph_does_not_know_is_refused_naming_it():
    class Clipped(nn.Linear):
        def forward(self, x):
            return F.linear(x, self.weight.clamp(-0.1, 0.1), self.bias)

    with pytest.raises(gmn.ConversionError, match=r"in module '0' \(Clipped\).*'0.weight' by "
                                                  r"clamp"):
        gmn.from_state_dict(nn.Sequential(Clipped(3, 2)))


def fields(model: nn.Module) -> dict[str, torch.Tensor]:
    graph = gmn.from_state_dict(model.eval())
    return {k: graph[k] for k in ("x", "edge_attr", "node_type", "edge_type", "node_act",
                                  "node_act_arg", "node_spec") if k in graph}


def differ(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    """The two networks compute different functions and their graph fields differ."""
    with torch.no_grad():
        out_a, out_b = a.eval()(x), b.eval()(x)
        assert out_a.shape != out_b.shape or not torch.allclose(out_a, out_b)
    fa, fb = fields(a), fields(b)
    return any(fa[k].shape != fb[k].shape or not torch.equal(fa[k], fb[k]) for k in fa)


def _with_norm(norm: nn.Module, values: dict[str, float] | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), norm, nn.Linear(8, 2))
    with torch.no_grad():
        for name, value in (values or {}).items():
            getattr(norm, name).fill_(value)
    return model


@pytest.mark.parametrize("plain, variant", [
    # R5: BatchNorm without affine parameters is γ = 1, β = 0, not γ = β = 0
    (lambda: _with_norm(nn.BatchNorm1d(8), {"weight": 0.0, "bias": 0.0}),
     lambda: _with_norm(nn.BatchNorm1d(8, affine=False))),
    # R6: LayerNorm without elementwise affine
    (lambda: _with_norm(nn.LayerNorm(8), {"weight": 0.0, "bias": 0.0}),
     lambda: _with_norm(nn.LayerNorm(8, elementwise_affine=False))),
    # R7: BatchNorm with batch statistics is not BatchNorm with running mean = var = 0
    (lambda: _with_norm(nn.BatchNorm1d(8), {"running_mean": 0.0, "running_var": 0.0}),
     lambda: _with_norm(nn.BatchNorm1d(8, track_running_stats=False))),
    (lambda: _with_norm(nn.LayerNorm(8)), lambda: _with_norm(nn.LayerNorm(8, eps=0.5))),
    (lambda: _with_norm(nn.GroupNorm(2, 8), {"weight": 0.0, "bias": 0.0}),
     lambda: _with_norm(nn.GroupNorm(2, 8, affine=False))),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4), nn.Conv2d(4, 1, 3)),
     lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False),
                           nn.Conv2d(4, 1, 3))),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3)),
     lambda: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 1, 3))),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3)),
     lambda: nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2), nn.ReLU(), nn.Conv2d(4, 1, 3))),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3)),
     lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                           nn.Conv2d(4, 1, 3))),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 1, 3)),
     lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2), nn.Conv2d(4, 1, 3))),
    (lambda: nn.Sequential(nn.Linear(4, 8)),
     lambda: corpus_mlp.scaled_linear_mlp()[:1]),
], ids=["R5 batchnorm affine", "R6 layernorm affine", "R7 batch statistics", "eps",
        "groupnorm affine", "instance vs batch statistics", "stride", "dilation",
        "padding mode", "pooling kind", "weight scale"])
def test_different_functions_give_different_graph_fields(plain, variant):
    torch.manual_seed(0)
    a = plain()
    torch.manual_seed(0)
    b = variant()
    b.load_state_dict(a.state_dict(), strict=False)  # the same stored values where they exist
    conv = any(isinstance(m, nn.Conv2d) for m in a.modules())
    x = torch.randn((5, 3, 10, 10) if conv else (5, 4), generator=GENERATOR)
    assert differ(a, b, x)


def test_node_spec_records_the_norm_epsilon_and_the_convolution_settings():
    from gmn.graph.parameter_graph import NODE_SPEC

    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=1), nn.BatchNorm2d(
        4, eps=1e-3), nn.ReLU(), nn.Conv2d(4, 2, 1))
    graph = gmn.from_state_dict(model.eval())
    first = graph.node_layer == 1
    spec = graph.node_spec[first]
    for column, value in (("stride_y", 2), ("stride_x", 2), ("padding_y", 2), ("dilation_x", 1),
                          ("norm_eps", 1e-3)):
        assert torch.allclose(spec[:, NODE_SPEC.index(column)], torch.tensor(float(value)))


@pytest.mark.parametrize("padding, mode", [("same", "reflect"), ("same", "circular"),
                                           ("same", "replicate"), (1, "reflect")])
def test_execute_accepts_every_padding_the_converter_records(padding, mode):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 4, padding=padding, padding_mode=mode), nn.ReLU(),
                          nn.Conv2d(4, 2, 3, padding=padding, padding_mode=mode))
    run(model, torch.randn(2, 3, 9, 9, generator=GENERATOR))


def test_a_registered_buffer_is_read_not_called_a_tensor_constant():
    """``x @ self.B.T`` with ``B`` a buffer used to be reported as ``_tensor_constant0``."""
    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("B", torch.randn(8, 2))
            self.fc = nn.Linear(16, 1)

        def forward(self, x):
            p = x @ self.B.T
            return self.fc(torch.cat([p.sin(), p.cos()], -1))

    run(Features(), torch.randn(5, 2, generator=GENERATOR))

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.mask = torch.tensor([1.0, 0.0])  # a plain attribute, not a buffer

        def forward(self, x):
            return self.fc(x) * self.mask

    with pytest.raises(gmn.ConversionError, match="plain attribute.*register_buffer") as caught:
        gmn.from_state_dict(Plain())
    assert "_tensor_constant" not in str(caught.value)


def test_an_fx_failure_names_the_module_and_no_gmn_internals():
    class Assigns(nn.Module):
        def forward(self, x):
            x[:, 0] = 0.0
            return x

    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Identity(), Assigns()))
    with pytest.raises(gmn.ConversionError, match=r"module '1.1' \(Assigns\).*item assignment"
                       ) as caught:
        gmn.from_state_dict(model)
    assert "Proxy" not in str(caught.value)


def test_a_hugging_face_error_names_the_models_own_path():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=8, hidden_act="laplace")
    with pytest.raises(gmn.ConversionError, match="in module 'encoder.layer.0.intermediate."
                                                  "intermediate_act_fn'") as caught:
        gmn.from_state_dict(BertModel(config).eval())
    assert "model." not in str(caught.value)


def test_function_samples_and_sign_flips_refuse_what_they_cannot_keep():
    """A scaled or standardised weight changes the function samples' layer evaluation and a
    sign flip's effect on the next layer: both refuse, naming why."""
    from gmn.graph.function_samples import UnsupportedArchitectureError, function_samples
    from gmn.graph.signs import flip_signs
    from gmn.graph.weights import Weights

    scaled = corpus_mlp.scaled_linear_mlp()
    weights = Weights.from_state_dicts(gmn.GraphTemplate.from_module(scaled),
                                       [scaled.state_dict()])
    with pytest.raises(UnsupportedArchitectureError, match="weight_scale"):
        function_samples(weights, torch.zeros(3, 4))
    standardised = nn.Sequential(corpus_vision.StdConv2d(3, 4, 3), nn.Tanh(),
                                 corpus_vision.StdConv2d(4, 2, 3))
    template = gmn.GraphTemplate.from_module(standardised)
    with pytest.raises(ValueError, match="standardises its weights"):
        flip_signs(Weights.from_state_dicts(template, [standardised.state_dict()]))
