"""Models that output weights are exactly equivariant to hidden-neuron permutations (float64):
permuting an input network permutes the output parameters the same way and leaves the
edited network's function unchanged; the way back to parameters is the exact, differentiable
inverse of building the graph."""

from __future__ import annotations

import pytest
import torch

from gmn.data import render
from gmn.graph import ConversionError, execute
from gmn.graph.convert import template_for
from gmn.graph.function_samples import with_function_samples
from gmn.graph.permutation import node_permutation, parameter_permutation, sample_permutations
from gmn.graph.weights import Weights
from gmn.models.siren import image_grid
from gmn.nn import GMNConfig, NFNClassifier, NFNEditor, ParameterHead, build_editor
from gmn.nn.nfn import MLPLayout, NPLinear, WeightSpaceFeatures
from gmn.testing import make_mlp, make_siren

# two GMNs: plain message passing, and with rank embeddings and canonical features (both
# equivariant as long as no two neurons of a layer tie, true for random float64 weights)
CONFIGS = {
    "plain": dict(hidden_dim=16, num_layers=2, edge_message="additive", rank_embedding=False,
                  canonical_standardization=False, readout=("node_mean",), dropout=0.0),
    "canonical": dict(hidden_dim=16, num_layers=2, edge_message="bilinear",
                      rank_embedding=True, canonical_standardization=True,
                      fourier_frequencies=4, readout=("node_mean",), dropout=0.0),
}


def siren_zoo(n: int = 6, hidden=(8, 8)) -> tuple:
    """(template, [n, P] float64 parameters) of n SIRENs."""
    networks = [make_siren(seed=s, dtype=torch.float64, hidden=hidden) for s in range(n)]
    template = template_for(networks[0])
    return template, torch.stack([template.flatten(m.state_dict()) for m in networks])


def permutation_of(template, n: int, seed: int = 3):
    """The [n, P] parameter index and [n, nodes] node index of random hidden permutations."""
    permutations = sample_permutations(template, n, torch.Generator().manual_seed(seed))
    return (parameter_permutation(template, permutations),
            node_permutation(template, permutations))


def assert_equivariant(model, template, params):
    """model(permuted params) == permuted model(params), the permutation is not the identity,
    and the edited networks draw the same images either way."""
    index, _ = permutation_of(template, len(params))
    moved = params.gather(1, index)
    assert not torch.equal(moved, params)
    with torch.no_grad():
        out, out_moved = model(params), model(moved)
    assert (out - params).abs().max() > 1e-3  # the model does edit
    torch.testing.assert_close(out_moved, out.gather(1, index), rtol=1e-10, atol=1e-10)
    images = render(Weights(template, out), 8, 8)
    torch.testing.assert_close(render(Weights(template, out_moved), 8, 8), images,
                               rtol=1e-10, atol=1e-10)


def perturbed_head(editor) -> None:
    """Random last layers: a zero-initialised delta head would make every test trivial."""
    torch.manual_seed(5)
    for module in (editor.head.node[-1], editor.head.edge[-1]):
        torch.nn.init.normal_(module.weight, std=0.3)
        torch.nn.init.normal_(module.bias, std=0.3)


@pytest.mark.parametrize("samples", [False, True])
@pytest.mark.parametrize("mode", ["delta", "value"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_gmn_editor_is_equivariant(name, mode, samples):
    template, params = siren_zoo()
    torch.manual_seed(0)
    editor = build_editor(template, GMNConfig(**CONFIGS[name]), params, mode=mode,
                          image_size=(5, 5) if samples else None)
    editor = editor.double().eval()
    perturbed_head(editor)
    assert_equivariant(editor, template, params)


def test_delta_editor_starts_as_the_identity():
    template, params = siren_zoo()
    editor = build_editor(template, GMNConfig(**CONFIGS["plain"]), params).double().eval()
    with torch.no_grad():
        assert torch.equal(editor(params), params)


def test_parameter_head_outputs_permute_with_the_nodes_and_edges():
    template, params = siren_zoo(n=1)
    editor = build_editor(template, GMNConfig(**CONFIGS["canonical"]), params).double().eval()
    head = ParameterHead(dim=16, edge_dim=8, node_out=5, edge_out=3, zero_init=False).double()
    index, old_node_of = permutation_of(template, 1)
    graphs = [editor.graph(p) for p in (params, params.gather(1, index))]
    with torch.no_grad():
        (node, edge, _), (node_moved, edge_moved, _) = [head(*editor.gmn.encode(g))
                                                        for g in graphs]
    old_node_of = old_node_of[0]
    torch.testing.assert_close(node_moved, node[old_node_of], rtol=1e-10, atol=1e-10)
    # an edge is named by its two ends: the moved graph's edge (i, j) is the original's
    # edge (old(i), old(j))
    source, target = graphs[0].edge_index
    edge_id = {(int(s), int(t)): k for k, (s, t) in enumerate(zip(source, target))}
    moved_source, moved_target = graphs[1].edge_index
    old_edge = torch.tensor([edge_id[(int(old_node_of[s]), int(old_node_of[t]))]
                             for s, t in zip(moved_source, moved_target)])
    torch.testing.assert_close(edge_moved, edge[old_edge], rtol=1e-10, atol=1e-10)


def test_gmn_editor_reaches_every_parameter_and_is_differentiable():
    """A loss on the rendered images gives a gradient to the head, and every parameter of the
    output depends on the head (a change of one edge output moves exactly one weight)."""
    template, params = siren_zoo()
    editor = build_editor(template, GMNConfig(**CONFIGS["plain"]), params).double()
    perturbed_head(editor)
    images = render(Weights(template, editor(params)), 8, 8)
    images.square().mean().backward()
    assert editor.head.edge[-1].weight.grad.abs().sum() > 0
    batch = template.batch(params)
    x = batch.x.clone().requires_grad_()
    edge_attr = batch.edge_attr.clone().requires_grad_()
    back = template.params_from_features(x, edge_attr)
    assert torch.equal(back, params)
    (jx, je) = torch.autograd.grad(back[0, 5], (x, edge_attr))
    assert int((jx != 0).sum() + (je != 0).sum()) == 1


def test_params_from_features_reads_graphs_with_function_samples():
    """Extra node columns (function samples) are not parameters: before, they shifted every
    parameter's place and gave wrong numbers silently."""
    template, params = siren_zoo()
    weights = Weights(template, params)
    sampled = with_function_samples(weights.graphs(), weights, image_grid(3, 3))
    assert sampled.x.shape[1] > 5
    assert torch.equal(Weights.from_graphs(sampled).params, params)
    with pytest.raises(ConversionError, match="node features"):
        template.params_from_features(sampled.x[:, :4], sampled.edge_attr)


def test_edited_graph_runs_as_the_edited_network():
    """The general way to an edited network's function: its graphs through ``execute``."""
    network = make_mlp(seed=1, dtype=torch.float64)
    template = template_for(network)
    params = torch.stack([template.flatten(make_mlp(seed=s, dtype=torch.float64).state_dict())
                          for s in range(4)])
    editor = build_editor(template, GMNConfig(**CONFIGS["plain"]), params).double().eval()
    perturbed_head(editor)
    inputs = torch.randn(5, 4, dtype=torch.float64)
    index, _ = permutation_of(template, len(params))
    with torch.no_grad():
        out, out_moved = editor(params), editor(params.gather(1, index))
    ran = execute(Weights(template, out).graphs(), inputs)
    ran_moved = execute(Weights(template, out_moved).graphs(), inputs)
    torch.testing.assert_close(ran_moved, ran, rtol=1e-10, atol=1e-10)
    state = Weights(template, out).state_dicts()[0]
    edited = make_mlp(seed=0, dtype=torch.float64)
    edited.load_state_dict(state)
    torch.testing.assert_close(edited(inputs), ran[0])
    execute(Weights(template, editor(params)).graphs(), inputs).square().sum().backward()
    assert editor.head.edge[-1].weight.grad.abs().sum() > 0  # differentiable through execute


def np_features(layout: MLPLayout, params, channels: int = 3) -> WeightSpaceFeatures:
    torch.manual_seed(1)
    mix = torch.randn(1, channels, dtype=params.dtype)
    return layout.split(params).map(lambda x: torch.sin(x @ mix * 3))


def permute_features(features: WeightSpaceFeatures, orders: list) -> WeightSpaceFeatures:
    """Neurons of layer l (0 = inputs) reordered by ``orders[l]`` [n_l]."""
    w = [f[:, orders[i + 1]][:, :, orders[i]] for i, f in enumerate(features.weights)]
    b = [f[:, orders[i + 1]] for i, f in enumerate(features.biases)]
    return WeightSpaceFeatures(tuple(w), tuple(b))


@pytest.mark.parametrize("move_io", [False, True])
def test_np_linear_is_equivariant(move_io):
    """NP layers commute with permutations of every layer's neurons: hidden ones always,
    input and output ones too (the NP group)."""
    template, params = siren_zoo(n=3, hidden=(5, 6, 4))
    layout = MLPLayout(template)
    torch.manual_seed(0)
    layer = NPLinear(len(layout), 3, 4).double()
    features = np_features(layout, params)
    generator = torch.Generator().manual_seed(2)
    orders = [torch.randperm(n, generator=generator) for n in layout.widths]
    if not move_io:
        orders[0], orders[-1] = torch.arange(layout.widths[0]), torch.arange(layout.widths[-1])
    out = layer(features)
    out_moved = layer(permute_features(features, orders))
    expected = permute_features(out, orders)
    for got, want in zip(out_moved.weights + out_moved.biases, expected.weights + expected.biases):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # not vacuous: the layer mixes positions (a different input changes other outputs)
    changed = features.weights[1].clone()
    changed[:, 0, 0] += 1.0
    other = layer(WeightSpaceFeatures((features.weights[0], changed, *features.weights[2:]),
                                      features.biases))
    assert (other.weights[0] - out.weights[0]).abs().max() > 1e-6
    assert (other.biases[2] - out.biases[2]).abs().max() > 1e-6


def test_mlp_layout_round_trip():
    template, params = siren_zoo(hidden=(5, 6))
    layout = MLPLayout(template)
    assert torch.equal(layout.join(layout.split(params)), params)
    w0 = layout.split(params).weights[0][0, :, :, 0]
    assert torch.equal(w0, make_siren(seed=0, dtype=torch.float64, hidden=(5, 6)).seq[0].weight)


@pytest.mark.parametrize("io_embedding", [False, True])
def test_nfn_editor_is_equivariant_and_classifier_invariant(io_embedding):
    template, params = siren_zoo()
    torch.manual_seed(0)
    editor = NFNEditor(template, channels=(8, 8), fourier_size=4,
                       io_embedding=io_embedding).double().eval()
    for parameter in editor.out.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    assert_equivariant(editor, template, params)
    classifier = NFNClassifier(template, 3, head_hidden=8, channels=(8,), fourier_size=4,
                               io_embedding=io_embedding).double().eval()
    index, _ = permutation_of(template, len(params))
    with torch.no_grad():
        logits = classifier(params)
        torch.testing.assert_close(classifier(params.gather(1, index)), logits,
                                   rtol=1e-10, atol=1e-10)
        assert (classifier(params.flip(0)) - logits).abs().max() > 1e-6


def test_nfn_rejects_networks_it_cannot_read():
    from gmn.testing import make_cnn

    with pytest.raises(ValueError, match="chains of nn.Linear"):
        NFNEditor(template_for(make_cnn(seed=0)))
