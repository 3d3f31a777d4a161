"""Float32 features with a large mean are centred exactly: CKA matches float64 on the same data."""

import numpy as np
import pytest
import torch

from gmn.cka import cka
from gmn.cka.estimators import centre


def float64_linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool) -> float:
    """Independent reference: numpy float64, feature-space formulas (Kornblith; Song et al.)."""
    x, y = x.double().numpy(), y.double().numpy()
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    n = x.shape[0]

    def hsic(a, b):
        cross = np.sum((a.T @ b) ** 2)
        if not debiased:
            return cross
        norms_a, norms_b = (a * a).sum(axis=1), (b * b).sum(axis=1)
        return (
            cross
            - n / (n - 2) * norms_a @ norms_b
            + norms_a.sum() * norms_b.sum() / ((n - 1) * (n - 2))
        ) / (n * (n - 3))

    return float(hsic(x, y) / np.sqrt(hsic(x, x) * hsic(y, y)))


def pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(10_000, 512, generator=g)
    return x, torch.randn(10_000, 512, generator=g).mul_(2.0).add_(x)


# Float32 products of n = 10,000 rows carry ~1e-8 relative rounding: the bound is that
# floor, the same with and without an offset (before exact centring, an offset of 1e4 was
# off by 2e-3 and 1e6 by 0.7 here).
@pytest.mark.parametrize("offset", [0.0, 1e2, 1e4, 1e6])
def test_float32_with_large_offsets_matches_float64(offset):
    x, y = pair()
    x, y = x + offset, y - offset
    for debiased in (False, True):
        value = float(cka(x, y, debiased=debiased))
        assert value == pytest.approx(float64_linear_cka(x, y, debiased), abs=1e-8)


def test_tiny_variance_on_a_unit_mean_matches_float64():
    x, y = pair(1)
    x = 1 + 1e-6 * x  # a std of eight float32 ulps around 1
    for debiased in (False, True):
        value = float(cka(x, y, debiased=debiased))
        assert value == pytest.approx(float64_linear_cka(x, y, debiased), abs=1e-8)


@pytest.mark.parametrize("offset", [1e2, 1e4, 1e6])
def test_centred_float32_columns_have_no_mean_left(offset):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4096, 8, generator=g) + offset
    centred = centre(x)
    column_means = centred.features.double().mean(dim=0) / centred.scale
    std = x.double().std(dim=0)
    # one pass leaves up to half an ulp of the mean (3e-2 at 1e6); two leave rounding noise
    assert (column_means.abs() / std).max() < 1e-6
    assert np.frexp(centred.scale)[0] == 0.5  # a power of two
    assert 1 / 16 < float(centred.features.abs().max()) <= 1


def test_constant_columns_are_recognised_exactly():
    x = torch.full((50, 3), 1e4)
    assert centre(x).constant
    x[49, 2] = 1e4 + 1  # one ulp above: variance
    assert not centre(x).constant
