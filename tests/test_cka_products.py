"""gmn.cka.estimators: float32 product blocks summed in float64 agree with a float64 reference."""

from __future__ import annotations

import pytest
import torch

from gmn.cka.estimators import column_sums, inner_products, row_sq_norms


@pytest.mark.parametrize("block", [7, 16384])
def test_products_match_float64(block):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(300, 20, generator=generator) * 3 + 1
    b = torch.randn(300, 9, generator=generator)
    exact_a, exact_b = a.double(), b.double()
    assert torch.allclose(inner_products(a, b, block), exact_a.T @ exact_b, rtol=0, atol=1e-4)
    assert torch.allclose(column_sums(a), exact_a.sum(0), rtol=1e-6)
    norms = row_sq_norms(a, block)
    assert norms.dtype == torch.float64
    assert torch.allclose(norms, (exact_a * exact_a).sum(1), rtol=1e-6, atol=0)


def test_row_sq_norms_of_zero_rows_are_zero_with_zero_gradient():
    x = torch.zeros(3, 4)
    x[1] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    x.requires_grad_(True)
    norms = row_sq_norms(x)
    assert norms.tolist() == [0.0, 25.0, 0.0]
    norms.sum().backward()
    assert torch.equal(x.grad, 2 * x.detach())
