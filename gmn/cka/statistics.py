"""Uncertainty for a CKA value: permutation test, shuffled baseline, jackknife interval."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import torch
from torch import Tensor

from .inputs import check_sample_count
from .layer import Estimator, LayerStatistics, layer_cka


@dataclass
class PermutationTest:
    """Result of :func:`permutation_test`.

    value: observed CKA. null: ``[n_permutations]`` CKA with y's rows shuffled.
    p_value: ``(1 + #{null ≥ value}) / (1 + n_permutations)``, one-sided.
    baseline: mean of ``null``, the CKA of unpaired samples (≈ 0 when debiased,
    clearly above 0 for the biased estimator at large d/n).
    """

    value: Tensor
    null: Tensor
    p_value: float

    @property
    def baseline(self) -> float:
        return float(self.null.mean())


@dataclass
class ConfidenceInterval:
    """Result of :func:`jackknife_interval`: ``low ≤ value ≤ high`` at ``level``."""

    value: float
    low: float
    high: float
    standard_error: float
    level: float


def permutation_test(
    x: Tensor, y: Tensor, *, n_permutations: int = 200, seed: int = 0, **options
) -> PermutationTest:
    """Test CKA(x, y) against CKA(x, y with its rows shuffled).

    ``x`` ``[n, ...]``, ``y`` ``[n, ...]``; ``options`` are those of :func:`gmn.cka.cka`.
    Each layer's statistics are computed once; a permutation costs one cross term.
    """
    estimator = Estimator(**options)
    a, b = LayerStatistics(x, estimator, "x"), LayerStatistics(y, estimator, "y")
    return layer_permutation_test(a, b, n_permutations, torch.Generator().manual_seed(seed))


def layer_permutation_test(
    a: LayerStatistics, b: LayerStatistics, n_permutations: int, generator: torch.Generator
) -> PermutationTest:
    """:func:`permutation_test` on prepared layers, drawing from ``generator``."""
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    value = layer_cka(a, b)
    device = a.self_hsic.device
    with torch.no_grad():
        null = torch.stack(
            [
                layer_cka(a, b, torch.randperm(a.n, generator=generator).to(device))
                for _ in range(n_permutations)
            ]
        )
    exceed = int((null >= value.detach()).sum())
    p_value = (1 + exceed) / (1 + n_permutations) if not torch.isnan(value) else float("nan")
    return PermutationTest(value, null, p_value)


def jackknife_interval(
    x: Tensor,
    y: Tensor,
    *,
    groups: int = 20,
    level: float = 0.95,
    seed: int = 0,
    **options,
) -> ConfidenceInterval:
    """Delete-a-group jackknife interval for CKA(x, y).

    The samples are split at random into ``groups`` near-equal groups; θ_k is the CKA
    without group k. With ``g = groups``, the standard error is
    ``sqrt((g-1)/g · Σ_k (θ_k - mean θ)²)`` and the interval ``θ ± z·se`` with the normal
    quantile ``z`` for ``level``. ``options`` are those of :func:`gmn.cka.cka`.
    """
    estimator = Estimator(**options)
    value = float(layer_cka(LayerStatistics(x, estimator, "x"), LayerStatistics(y, estimator, "y")))
    return layer_jackknife(x, y, estimator, value, groups, level, seed)


def layer_jackknife(
    x: Tensor, y: Tensor, estimator: Estimator, value: float, groups: int, level: float, seed: int
) -> ConfidenceInterval:
    """:func:`jackknife_interval` around an already computed full-data ``value``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = x.shape[0]
    if not 2 <= groups <= n:
        raise ValueError(f"groups must be between 2 and n={n}, got {groups}")
    check_sample_count(n - -(-n // groups), estimator.debiased)
    with torch.no_grad():
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(x.device)
        leave_outs = []
        for held_out in torch.tensor_split(order, groups):
            keep = torch.ones(n, dtype=torch.bool, device=x.device)
            keep[held_out] = False
            a = LayerStatistics(x[keep], estimator, "x")
            b = LayerStatistics(y[keep], estimator, "y")
            leave_outs.append(layer_cka(a, b))
    thetas = torch.stack(leave_outs)
    se = float(((groups - 1) / groups * (thetas - thetas.mean()).square().sum()).sqrt())
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return ConfidenceInterval(value, value - z * se, value + z * se, se, level)
