"""Probes on a GMN: per-graph pooled states per layer, node-level states, loader order."""

from __future__ import annotations

import torch
from torch_geometric.loader import DataLoader

import gmn
from gmn.nn import GMN
from gmn.testing import make_siren


def model_and_graphs(n: int = 5):
    torch.manual_seed(0)
    model = GMN(out_dim=3, hidden_dim=8, num_layers=2, use_global=True,
                readout=("node_mean", "global")).eval()
    graphs = [gmn.from_state_dict(make_siren(seed=s, hidden=(4, 4))) for s in range(n)]
    return model, graphs


def test_pooled_states_are_one_row_per_network_in_loader_order():
    model, graphs = model_and_graphs()
    with gmn.probe(model) as p:
        states = p.collect(DataLoader(graphs, batch_size=2, shuffle=False))
        whole = p.run(next(iter(DataLoader(graphs, batch_size=len(graphs)))))
    d, d_edge, types = 8, model.config.edge_dim, model.config.num_node_types
    assert states["layers.1/node_mean"].shape == (5, d)
    assert states["layers.1/edge_mean"].shape == (5, d_edge)
    assert states["layers.1/node_type_mean"].shape == (5, types * d)
    assert states["layers.0/graph"].shape == (5, d)
    assert states["readout"].shape == (5, 2 * d)
    for key in states:
        torch.testing.assert_close(states[key], whole[key], rtol=1e-5, atol=1e-6)


def test_pooled_states_known_answers():
    model, graphs = model_and_graphs(n=2)
    batch = next(iter(DataLoader(graphs, batch_size=2)))
    with gmn.probe(model, layers=["layers.1"], node_level=True) as p:
        states = p.run(batch)
    final, _ = model.encode(batch)
    torch.testing.assert_close(states["layers.1/nodes"], final.node)
    torch.testing.assert_close(states["layers.1/edges"], final.edge)
    first = batch.batch == 0
    torch.testing.assert_close(states["layers.1/node_mean"][0], final.node[first].mean(0))
    per_type = states["layers.1/node_type_mean"][1].reshape(-1, 8)
    for t in range(per_type.shape[0]):
        rows = final.node[(batch.batch == 1) & (batch.node_type == t)]
        expected = rows.mean(0) if len(rows) else torch.zeros(8)
        torch.testing.assert_close(per_type[t], expected)


def test_a_custom_block_with_the_state_signature_is_probed_like_a_gmn_layer():
    """One protocol: any module ``forward(state, ctx) -> GraphState`` is pooled per graph."""
    from torch import nn

    from gmn.nn import GraphState, graph_context

    class Doubling(nn.Module):
        def forward(self, state, ctx):
            return state._replace(node=2 * state.node)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Doubling()

        def forward(self, batch):
            ctx = graph_context(batch, 5, 3, model.config.num_node_types)
            return self.block(GraphState(batch.x, batch.edge_attr), ctx).node.sum()

    model, graphs = model_and_graphs(n=3)
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    with gmn.probe(Net(), layers=["block"]) as p:
        states = p.run(batch)
    expected = torch.stack([2 * batch.x[batch.batch == g].mean(0) for g in range(3)])
    torch.testing.assert_close(states["block/node_mean"], expected)
    assert states["block/edge_mean"].shape == (3, 3)
