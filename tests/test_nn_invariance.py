"""GMN outputs are invariant (graph level) and equivariant (node level) to hidden-neuron
permutations of real converted networks, and batching does not change any graph's output."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph.convert import template_for
from gmn.graph.permutation import node_permutation, parameter_permutation, sample_permutations
from gmn.graph.weights import Weights
from gmn.nn import GMN, POOLINGS
from gmn.testing import make_cnn, make_mlp, make_resnet, make_siren

BUILDERS = {"mlp": make_mlp, "cnn_bn": make_cnn, "resnet": make_resnet, "siren": make_siren}


# the scalar encodings and edge messages: linear + additive, Fourier features + gated,
# linear + bilinear
ENCODINGS = {
    "linear_additive": {"fourier_frequencies": 0, "edge_message": "additive"},
    "fourier_gated": {"fourier_frequencies": 8, "fourier_max": 300.0, "edge_message": "gated"},
    "linear_bilinear": {"fourier_frequencies": 0, "edge_message": "bilinear"},
}


def full_gmn(seed: int = 0, encoding: str = "linear_additive") -> GMN:
    """Every pooling, the graph state, two aggregations, narrower edges: all code paths."""
    torch.manual_seed(seed)
    model = GMN(out_dim=3, hidden_dim=16, edge_dim=8, num_layers=2, use_global=True,
                aggregations=("mean", "max"), readout=POOLINGS, **ENCODINGS[encoding])
    return model.double().eval()


def permuted_batch(network, seed: int):
    """The network's graph and a graph of a hidden-permuted copy, with the node map."""
    template = template_for(network)
    flat = template.flatten(network.state_dict()).unsqueeze(0)
    permutations = sample_permutations(template, 1, torch.Generator().manual_seed(seed))
    moved = flat.gather(1, parameter_permutation(template, permutations))
    assert not torch.equal(moved, flat)
    old_node_of = node_permutation(template, permutations)[0]
    return template.batch(flat), template.batch(moved), old_node_of


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_graph_output_invariant_and_node_states_equivariant(name, encoding):
    network = BUILDERS[name](seed=1, dtype=torch.float64)
    original, permuted, old_node_of = permuted_batch(network, seed=2)
    model = full_gmn(encoding=encoding)
    with torch.no_grad():
        torch.testing.assert_close(model(permuted), model(original), rtol=1e-5, atol=1e-5)
        (states, _), (states_permuted, _) = model.encode(original), model.encode(permuted)
    assert not torch.equal(old_node_of, torch.arange(old_node_of.numel()))
    torch.testing.assert_close(states_permuted.node, states.node[old_node_of],
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(states_permuted.graph, states.graph, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_output_depends_on_the_weights_and_on_input_neuron_order(encoding):
    """The invariance above is not vacuous: other weights, or a reordering of the input
    neurons (which are not interchangeable), change the output."""
    model = full_gmn(encoding=encoding)
    network = make_mlp(seed=1, dtype=torch.float64)
    graph = gmn.from_state_dict(network)
    other = gmn.from_state_dict(make_mlp(seed=2, dtype=torch.float64))
    swapped = graph.clone()
    first_inputs = (graph.node_layer == 0).nonzero().flatten()[:2]
    swapped.node_io_pos[first_inputs] = graph.node_io_pos[first_inputs.flip(0)]
    with torch.no_grad():
        out = model(graph)
        assert (model(other) - out).abs().max() > 1e-4
        assert (model(swapped) - out).abs().max() > 1e-4


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_batch_equals_each_graph_alone(encoding):
    model = full_gmn(encoding=encoding)
    graphs = [gmn.from_state_dict(build(seed=4, dtype=torch.float64))
              for build in (make_siren, make_mlp, make_cnn)]
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs))
        alone = torch.cat([model(graph) for graph in graphs])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-10)


def test_template_batch_equals_graphs_alone():
    model = full_gmn()
    networks = [make_siren(seed=s, dtype=torch.float64) for s in range(3)]
    batch = Weights.from_state_dicts(template_for(networks[0]),
                                     [n.state_dict() for n in networks]).graphs()
    with torch.no_grad():
        alone = torch.cat([model(gmn.from_state_dict(n)) for n in networks])
        torch.testing.assert_close(model(batch), alone, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["mlp", "siren"])
def test_rank_embedding_keeps_invariance_when_biases_differ(name):
    """Ranks of the biases within a layer permute with the neurons (no two biases equal)."""
    network = BUILDERS[name](seed=1, dtype=torch.float64)
    original, permuted, old_node_of = permuted_batch(network, seed=2)
    torch.manual_seed(0)
    model = GMN(out_dim=3, hidden_dim=16, edge_dim=8, num_layers=2, rank_embedding=True,
                readout=("node_mean", "output_mean")).double().eval()
    with torch.no_grad():
        torch.testing.assert_close(model(permuted), model(original), rtol=1e-5, atol=1e-5)
        (states, _), (states_permuted, _) = model.encode(original), model.encode(permuted)
    torch.testing.assert_close(states_permuted.node, states.node[old_node_of],
                               rtol=1e-5, atol=1e-5)
