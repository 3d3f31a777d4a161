"""The GMN encoders follow the graph's vocabularies and operation settings: grown tables draw
what the first vocabulary drew, and node_spec reaches the node states."""

from __future__ import annotations

import torch
from torch import nn

import gmn
from gmn.graph import vocab
from gmn.nn import GMN
from gmn.nn.encoders import vocabulary_embedding


def test_a_grown_vocabulary_draws_what_the_first_one_drew():
    drawn = vocab.DRAWN_SIZES["node_types"]
    torch.manual_seed(0)
    before = nn.Embedding(drawn, 8)
    after_before = torch.randn(3)
    torch.manual_seed(0)
    grown = vocabulary_embedding(drawn + 5, 8, "node_types")
    after_grown = torch.randn(3)
    assert torch.equal(grown.weight[:drawn], before.weight)
    assert torch.equal(grown.weight[drawn:], torch.zeros(5, 8))
    assert torch.equal(after_grown, after_before)  # later modules draw the same numbers
    assert len(vocab.NODE_TYPES) > drawn  # the vocabulary did grow


def _graphs(eps: float):
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4, eps=eps), nn.ReLU(), nn.Linear(4, 2))
    torch.manual_seed(0)
    model.load_state_dict(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(),
                                        nn.Linear(4, 2)).state_dict())
    return gmn.from_state_dict(model)


def test_the_operation_settings_reach_the_node_states():
    """Two networks that differ only in a norm's ε have graphs that differ only in node_spec;
    the GMN's node states tell them apart."""
    a, b = _graphs(1e-5), _graphs(0.5)
    assert torch.equal(a.x, b.x) and torch.equal(a.node_type, b.node_type)
    assert not torch.equal(a.node_spec, b.node_spec)
    torch.manual_seed(0)
    model = GMN(out_dim=2, hidden_dim=16, canonical_standardization=False,
                rank_embedding=False).eval()
    encoded = [model.node_encoder(g) for g in (a, b)]
    assert not torch.allclose(encoded[0], encoded[1])
