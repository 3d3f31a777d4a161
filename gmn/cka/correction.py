"""Multiple-comparison correction of a matrix of p-values (Holm; Benjamini–Hochberg).

A layer × layer matrix holds many tests. ``holm`` controls the family-wise error rate (the
chance of any false rejection), ``benjamini_hochberg`` the false discovery rate (the
expected share of false rejections among the rejections; valid for independent or
positively dependent tests). Both return adjusted p-values of the same shape: reject
where ``adjusted ≤ α``. NaN entries (undefined cells) are left out and stay NaN.

A permutation p-value of P permutations is never below 1/(P + 1), so a correction over m
cells may reject nothing whatever the data: Holm's smallest adjusted p is m/(P + 1).
:func:`smallest_adjusted_p` gives that floor and :func:`warn_if_unreachable` warns when it
is above α.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

METHODS = ("holm", "bh")
METHOD_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


def adjust_p_values(p_values: Tensor, method: str = "holm") -> Tensor:
    """Adjusted p-values, same shape as ``p_values`` (any shape, float64 result)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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


def holm(p_values: Tensor) -> Tensor:
    """Holm's step-down adjustment (family-wise error rate)."""
    return adjust_p_values(p_values, "holm")


def benjamini_hochberg(p_values: Tensor) -> Tensor:
    """Benjamini–Hochberg step-up adjustment (false discovery rate)."""
    return adjust_p_values(p_values, "bh")
