"""Canonical standardisation (`gmn.nn.canonical`): per-key statistics against a direct loop,
equivariance on real converted networks, and the signature refinement recovering neurons
whose bias rank is wrong."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from gmn.graph.convert import template_for
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren
from gmn.nn import GMN
from gmn.nn.canonical import CanonicalStandardize, KeyedStandardize, neuron_slots
from gmn.testing import make_cnn, make_mlp, make_resnet, make_siren
from tests.test_nn_invariance import permuted_batch

BUILDERS = {"mlp": make_mlp, "cnn_bn": make_cnn, "resnet": make_resnet, "siren": make_siren}


def test_keyed_statistics_match_a_loop_and_unseen_keys_give_zero():
    generator = torch.Generator().manual_seed(0)
    keys = torch.randint(0, 6, (200,), generator=generator) * 1000
    values = torch.randn(200, 3, generator=generator, dtype=torch.float64) * 5 + 2
    module = KeyedStandardize(3).double()
    module.fit(values, keys)
    expected = torch.empty_like(values)
    for key in keys.unique():
        rows = keys == key
        mean, std = values[rows].mean(0), values[rows].std(0, unbiased=False)
        expected[rows] = (values[rows] - mean) / std
    torch.testing.assert_close(module(values, keys), expected, rtol=1e-12, atol=1e-12)
    unseen = module(values[:4], torch.tensor([1, 999, 5001, 7000]))
    assert torch.equal(unseen, torch.zeros_like(unseen))


def test_keyed_statistics_of_each_key_and_defaults_for_unseen_ones():
    keys = torch.tensor([3, 3, 8, 8, 8])
    values = torch.tensor([[1.0], [3.0], [0.0], [1.0], [5.0]], dtype=torch.float64)
    module = KeyedStandardize(1).double()
    default_mean = torch.tensor([-7.0], dtype=torch.float64)
    default_std = torch.tensor([9.0], dtype=torch.float64)
    mean, std = module.statistics(torch.tensor([8, 3]), default_mean, default_std)  # unfitted
    assert mean.tolist() == [[-7.0], [-7.0]] and std.tolist() == [[9.0], [9.0]]
    module.fit(values, keys)
    mean, std = module.statistics(torch.tensor([8, 5, 3]), default_mean, default_std)
    assert mean.tolist() == [[2.0], [-7.0], [2.0]]
    torch.testing.assert_close(std, torch.tensor([[values[2:].std(unbiased=False).item()],
                                                  [9.0], [1.0]], dtype=torch.float64))


def test_keyed_statistics_survive_a_state_dict_round_trip_into_a_fresh_module():
    keys = torch.tensor([3, 3, 8, 8, 8])
    values = torch.tensor([[1.0], [3.0], [0.0], [1.0], [5.0]])
    fitted = KeyedStandardize(1)
    fitted.fit(values, keys)
    fresh = KeyedStandardize(1)
    fresh.load_state_dict(fitted.state_dict())
    assert torch.equal(fresh(values, keys), fitted(values, keys))


def fitted_gmn(graphs) -> GMN:
    torch.manual_seed(0)
    model = GMN(out_dim=3, hidden_dim=16, edge_dim=8, num_layers=2, dropout=0.0,
                canonical_standardization=True, rank_embedding=True,
                readout=("node_mean", "edge_mean", "output_mean")).double().eval()
    model.fit_feature_statistics(graphs)
    return model


@pytest.mark.parametrize("name", list(BUILDERS))
def test_canonical_gmn_is_invariant_and_its_features_are_informative(name):
    network = BUILDERS[name](seed=1, dtype=torch.float64)
    template = template_for(network)
    others = [template.flatten(BUILDERS[name](seed=s, dtype=torch.float64).state_dict())
              for s in (2, 3, 4)]
    flat = template.flatten(network.state_dict())
    # training networks near this one, so its canonical features are finite and non-zero
    train = torch.stack([flat + 0.01 * (o - flat) for o in others])
    model = fitted_gmn(template.batch(train))
    original, permuted, old_node_of = permuted_batch(network, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(model(permuted), model(original), rtol=1e-5, atol=1e-5)
        (states, _), (states_permuted, _) = model.encode(original), model.encode(permuted)
        node_z, edge_z = model.canonical(original)
    torch.testing.assert_close(states_permuted.node, states.node[old_node_of],
                               rtol=1e-5, atol=1e-5)
    assert edge_z[:, 0].abs().max() > 0.1  # a weight is measured against its canonical peers


def shared_init_fit(noise: float, count: int):
    """(template, [1, P] base SIREN 2→8→8→1, [count, P] base + noise, fitted
    CanonicalStandardize): networks trained from one shared initialisation."""
    torch.manual_seed(0)
    template = GraphTemplate.from_module(Siren(2, (8, 8), 1))
    base = Weights.from_state_dicts(template, [Siren(2, (8, 8), 1).state_dict()]).params
    train = base + noise * torch.randn(count, base.shape[1])
    canonical = CanonicalStandardize(5, 3)
    canonical.fit(template.batch(train))
    return template, base, train, canonical


def test_signatures_recover_neurons_whose_bias_rank_is_wrong():
    """Shared-initialisation networks; in a test network two second-layer biases are moved
    past each other. The bias rank swaps those neurons' slots, the nearest reference signature
    (bias and incoming weights) keeps every neuron's slot."""
    template, base, _, canonical = shared_init_fit(1e-3, 64)
    expected = canonical.slots(template.batch(base))

    stacked = Weights(template, base).stacked()
    bias = stacked["seq.1.bias"][0]
    low, high = bias.argsort()[:2].tolist()
    swapped = {k: v.clone() for k, v in stacked.items()}
    gap = bias[high] - bias[low]
    swapped["seq.1.bias"][0, low] += 1.5 * gap  # now above `high`, but otherwise unchanged
    graph = template.batch(Weights.from_stacked(template, swapped).params)
    layer2 = (graph.node_layer == 2) & (graph.node_io_pos < 0)
    assert not torch.equal(neuron_slots(graph)[layer2], expected[layer2])
    assert torch.equal(canonical.slots(graph)[layer2], expected[layer2])


def test_batched_slots_equal_each_graph_alone():
    template, _, train, canonical = shared_init_fit(1e-2, 16)
    graphs = [template.batch(train[i:i + 1]) for i in range(4)]
    together = canonical.slots(Batch.from_data_list([template.batch(train[:4])[i]
                                                     for i in range(4)]))
    alone = torch.cat([canonical.slots(g) for g in graphs])
    assert torch.equal(together, alone)


def test_slots_of_a_batch_without_its_batch_vector_are_refused():
    """Without the ``batch`` field two graphs' neurons would be ranked together."""
    from gmn.graph.parameter_graph import GraphFieldError

    template, _, train, _ = shared_init_fit(1e-2, 4)
    graphs = template.batch(train[:2])
    del graphs.batch
    with pytest.raises(GraphFieldError, match="'batch' vector"):
        neuron_slots(graphs)
