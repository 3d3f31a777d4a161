"""Uncertainty of CKA values: permutation tests, jackknife intervals, multiple comparisons.

A layer × layer matrix holds many tests. ``adjust_p_values`` corrects them: ``"holm"``
controls the family-wise error rate (the chance of any false rejection), ``"bh"``
(Benjamini–Hochberg) the false discovery rate (the expected share of false rejections among
the rejections; valid for independent or positively dependent tests). Reject where
``adjusted ≤ α``; NaN entries (undefined cells) are left out and stay NaN.

A permutation p-value of P permutations is never below 1/(P + 1), so a correction over m
cells may reject nothing whatever the data: Holm's smallest adjusted p is m/(P + 1).
:func:`smallest_adjusted_p` gives that floor and :func:`warn_if_unreachable` warns when it
is above α.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import torch
from torch import Tensor

from .estimators import Estimator, LayerStatistics, check_sample_count, layer_cka

CORRECTIONS = ("holm", "bh")
METHOD_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


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


def check_permutations(permutations) -> None:
    """``ValueError`` unless ``permutations`` (a count of permutations to draw) is a whole
    number ≥ 0."""
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 0:
        raise ValueError(
            f"permutations must be a whole number ≥ 0 (0: no test), got {permutations!r}"
        )


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


def adjust_p_values(p_values: Tensor, method: str = "holm") -> Tensor:
    """Adjusted p-values, same shape as ``p_values`` (any shape, float64 result)."""
    if method not in CORRECTIONS:
        raise ValueError(f"method must be one of {CORRECTIONS}, got {method!r}")
    p = torch.as_tensor(p_values, dtype=torch.float64)
    flat = p.flatten()
    valid = ~torch.isnan(flat)
    values = flat[valid]
    if bool(((values < 0) | (values > 1)).any()):
        raise ValueError("p-values must lie in [0, 1]")
    m = values.numel()
    out = torch.full_like(flat, float("nan"))
    if m == 0:
        return out.reshape(p.shape)
    order = torch.argsort(values)
    ranked = values[order]
    k = torch.arange(1, m + 1, dtype=torch.float64)
    if method == "holm":
        adjusted = torch.cummax((m - k + 1) * ranked, 0).values
    else:
        adjusted = torch.flip(torch.cummin(torch.flip(m / k * ranked, (0,)), 0).values, (0,))
    result = torch.empty_like(values)
    result[order] = adjusted.clamp(max=1)
    out[valid] = result
    return out.reshape(p.shape)


def smallest_adjusted_p(permutations: int, cells: int, method: str = "holm") -> float:
    """The smallest adjusted p-value that ``cells`` permutation tests of ``permutations``
    permutations each can give (every raw p at its floor, 1/(permutations + 1))."""
    floor = torch.full((cells,), 1 / (permutations + 1), dtype=torch.float64)
    return float(adjust_p_values(floor, method).min())


def warn_if_unreachable(permutations: int, cells: int, method: str = "holm",
                        alpha: float = 0.05) -> bool:
    """Warn (and return True) when ``permutations`` are too few for any of ``cells`` tests to
    reach ``alpha`` after ``method``'s correction; the warning says how many would do."""
    smallest = smallest_adjusted_p(permutations, cells, method)
    if smallest <= alpha:
        return False
    # Holm needs cells/(P+1) ≤ α, Benjamini–Hochberg 1/(P+1) ≤ α
    needed = math.ceil((cells if method == "holm" else 1) / alpha) - 1
    warnings.warn(
        f"{permutations} permutations cannot give any of {cells} cells p ≤ {alpha} after "
        f"{METHOD_NAMES[method]}'s correction (its smallest adjusted p is {smallest:.3g}); "
        f"draw at least {needed} permutations",
        stacklevel=3,
    )
    return True

