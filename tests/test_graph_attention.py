"""nn.MultiheadAttention (self-attention) in a transformer block."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import gmn
from gmn.graph.vocab import EDGE_TYPE, NODE_TYPE
from gmn.testing import example_input, make_transformer
from tests.test_graph_convert import assert_same_state_dict, is_dag, is_weakly_connected
from tests.test_graph_permutation import permute_state


@pytest.mark.parametrize("encoding", ["position", "padded"])
def test_transformer_round_trip_and_structure(encoding):
    model = make_transformer(seed=1)
    graph = gmn.from_state_dict(model, encoding=encoding)
    assert_same_state_dict(gmn.to_state_dict(graph), model.state_dict())
    assert is_dag(graph.edge_index, graph.num_nodes)
    assert is_weakly_connected(graph.edge_index, graph.num_nodes)
    embed = 8
    for role in ("query", "key", "value"):
        assert int((graph.node_type == NODE_TYPE[f"attention_{role}"]).sum()) == embed
    assert int((graph.edge_type == EDGE_TYPE["attention"]).sum()) == 2 * embed
    # x + attn(...) and x + mlp(...): two residual additions of embed channels
    assert int((graph.edge_type == EDGE_TYPE["residual"]).sum()) == 2 * embed


def test_transformer_permutation_keeps_the_function_and_moves_attention():
    model = make_transformer(seed=2, dtype=torch.float64)
    state = model.state_dict()
    permuted = permute_state(model, state, torch.Generator().manual_seed(0))
    assert not torch.equal(permuted["attn.in_proj_weight"], state["attn.in_proj_weight"])
    clone = copy.deepcopy(model)
    clone.load_state_dict(permuted)
    x = example_input(model).double()
    torch.testing.assert_close(clone(x), model(x), rtol=1e-12, atol=1e-12)


def test_attention_variants_that_are_refused():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(2, 4)
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

        def forward(self, x):
            memory = self.b(x)
            return self.attn(self.a(x), memory, memory)[0]

    with pytest.raises(gmn.ConversionError, match="'attn' reads 2 different tensors"):
        gmn.from_state_dict(Cross())

    class OtherDims(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(4, 2, kdim=3, vdim=3, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x)[0]

    with pytest.raises(gmn.ConversionError, match="kdim = vdim = embed_dim"):
        gmn.from_state_dict(OtherDims())


def test_tensor_indexing_is_refused():
    class Picks(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x[:, 0])

    with pytest.raises(gmn.ConversionError, match="getitem"):
        gmn.from_state_dict(Picks())
