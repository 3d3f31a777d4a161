"""The GMN under bf16 autocast and torch.compile on CPU."""

from __future__ import annotations

import torch

import gmn
from gmn.nn import GMN
from gmn.testing import make_mlp


def small_model_and_graph():
    torch.manual_seed(0)
    model = GMN(out_dim=3, hidden_dim=16, num_layers=2, use_global=True,
                readout=("node_mean", "edge_mean", "output_mean", "attention")).eval()
    return model, gmn.from_state_dict(make_mlp(seed=0))


def test_bf16_autocast_matches_float32():
    model, graph = small_model_and_graph()
    with torch.no_grad():
        reference = model(graph)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(graph)
    assert low.dtype == torch.bfloat16
    # bf16 keeps 8 significant bits (2^-8 = 0.0039 relative). Measured here: max |error|
    # 8.2e-4 = 0.0025 of max |logit| (0.33); over model and network seeds 0-9 at most 0.0072
    # of it. The bound, 0.01 of max |logit| (4x this seed's error), fails on a wrong term of a
    # few percent that rtol = atol = 0.05 let through.
    error = (low.float() - reference).abs().max()
    assert error <= 0.01 * reference.abs().max(), (error, reference.abs().max())


def test_autocast_backward_reaches_parameters():
    model, graph = small_model_and_graph()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(graph).float().square().sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_compiled_model_matches_eager():
    model, graph = small_model_and_graph()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(graph), model(graph), rtol=1e-5, atol=1e-5)
