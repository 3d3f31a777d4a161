"""Building blocks against known answers on small hand-made graphs."""

from __future__ import annotations

import torch
from torch import nn

from gmn.nn import AttentionPooling, EdgeUpdate, GraphContext, GraphState, NodeUpdate, Readout


def tiny_context() -> GraphContext:
    """Two graphs: 0 -> 2, 1 -> 2 (node 2 is an output) and 3 -> 4 (node 4 is an output)."""
    edge_index = torch.tensor([[0, 1, 3], [2, 2, 4]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    return GraphContext(edge_index=edge_index, batch=batch, edge_batch=batch[edge_index[0]],
                        node_type=torch.tensor([0, 0, 1, 0, 1]),
                        is_output=torch.tensor([False, False, True, False, True]),
                        num_graphs=2, num_node_types=2)


def test_factorised_edge_update_equals_a_dense_layer_on_the_concatenation():
    torch.manual_seed(0)
    update = EdgeUpdate(node_dim=3, edge_dim=4, activation=nn.Tanh).double()
    h, e = torch.randn(5, 3, dtype=torch.double), torch.randn(3, 4, dtype=torch.double)
    ctx = tiny_context()
    src, dst = ctx.edge_index
    weight = torch.cat([update.source.weight, update.target.weight, update.edge.weight], dim=1)
    dense = torch.tanh(torch.cat([h[src], h[dst], e], dim=1) @ weight.t() + update.source.bias)
    out = update(GraphState(h, e), ctx)
    torch.testing.assert_close(out.edge, dense)
    assert out.node is h  # an edge update replaces the edge states only


def test_bilinear_edge_update_equals_its_formula_edge_by_edge():
    """gated message + (P h_i) ⊙ (Q h_j) ⊙ (R e_ij), computed one edge at a time."""
    torch.manual_seed(0)
    update = EdgeUpdate(node_dim=3, edge_dim=4, activation=nn.Tanh, message="bilinear").double()
    h, e = torch.randn(5, 3, dtype=torch.double), torch.randn(3, 4, dtype=torch.double)
    ctx = tiny_context()
    edge_index = ctx.edge_index
    weight = torch.cat([update.source.weight, update.target.weight, update.edge.weight], dim=1)
    p, q, r = update.bilinear
    for k, (i, j) in enumerate(edge_index.t().tolist()):
        pre = torch.cat([h[i], h[j], e[k]]) @ weight.t() + update.source.bias
        value, gate = pre[:4], pre[4:]
        expected = torch.tanh(value) * gate + p(h[i]) * q(h[j]) * r(e[k])
        torch.testing.assert_close(update(GraphState(h, e), ctx).edge[k], expected)


def test_node_update_separates_incoming_and_outgoing_edges():
    torch.manual_seed(0)
    update = NodeUpdate(node_dim=2, edge_dim=1, aggregations=("mean", "sum")).double()
    captured = {}
    update.mlp[0].register_forward_hook(lambda m, args, out: captured.update(inp=args[0]))
    h = torch.zeros(5, 2, dtype=torch.double)
    e = torch.tensor([[1.0], [3.0], [5.0]], dtype=torch.double)
    update(GraphState(h, e), tiny_context())
    # columns: h (2), in-mean, in-sum, out-mean, out-sum
    expected = torch.tensor([[0, 0, 0, 0, 1, 1],
                             [0, 0, 0, 0, 3, 3],
                             [0, 0, 2, 4, 0, 0],
                             [0, 0, 0, 0, 5, 5],
                             [0, 0, 5, 5, 0, 0]], dtype=torch.double)
    torch.testing.assert_close(captured["inp"], expected)


def test_readouts_known_answers():
    ctx = tiny_context()
    h = torch.tensor([[1.0], [2.0], [6.0], [4.0], [8.0]])
    e = torch.tensor([[1.0], [2.0], [7.0]])
    names = ("node_mean", "node_sum", "node_max", "edge_mean", "output_mean", "output_max")
    pooled = Readout(dim=1, poolings=names)(GraphState(h, e), ctx)
    expected = torch.tensor([[3.0, 9.0, 6.0, 1.5, 6.0, 6.0],
                             [6.0, 12.0, 8.0, 7.0, 8.0, 8.0]])
    torch.testing.assert_close(pooled, expected)


def test_attention_with_equal_scores_is_the_mean_value():
    pooling = AttentionPooling(dim=4, heads=2)
    nn.init.zeros_(pooling.score.weight)
    nn.init.zeros_(pooling.score.bias)
    ctx = tiny_context()
    h = torch.randn(5, 4)
    means = torch.stack([pooling.value(h[:3]).mean(0), pooling.value(h[3:]).mean(0)])
    torch.testing.assert_close(pooling(h, ctx), means)


def test_bilinear_edge_pooling_equals_its_per_edge_formula():
    """out_g = mean over g's edges i->j of (Q h_j) * P(r_ij ⊗ [h_i, 1]), r_ij = R e_ij."""
    from gmn.nn.context import GraphContext
    from gmn.nn.readout import BilinearEdgePooling

    torch.manual_seed(0)
    n, d, edge_dim, width, channels = 7, 5, 3, 6, 2
    pooling = BilinearEdgePooling(dim=d, edge_dim=edge_dim, width=width,
                                  channels=channels).double()
    h = torch.randn(n, d, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 2, 4, 5, 5], [2, 2, 3, 6, 6, 4]])
    e = torch.randn(edge_index.shape[1], edge_dim, dtype=torch.float64)
    node_batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    ctx = GraphContext(edge_index=edge_index, batch=node_batch,
                       edge_batch=node_batch[edge_index[0]], node_type=torch.zeros(n).long(),
                       is_output=torch.zeros(n, dtype=torch.bool), num_graphs=2,
                       num_node_types=1)
    expected = torch.zeros(2, width, dtype=torch.float64)
    counts = torch.zeros(2, dtype=torch.float64)
    for (i, j), e_ij in zip(edge_index.T.tolist(), e):
        r = pooling.edge(e_ij)
        outer = torch.outer(r, torch.cat([h[i], torch.ones(1, dtype=torch.float64)]))
        g = int(node_batch[i])
        expected[g] += pooling.target(h[j]) * pooling.source(outer.flatten())
        counts[g] += 1
    got = pooling(h, e, ctx)
    assert torch.allclose(got, expected / counts[:, None], rtol=1e-12, atol=1e-12)
