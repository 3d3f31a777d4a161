"""Multiple-comparison correction of a matrix of p-values (Holm; Benjamini–Hochberg).

A layer × layer matrix holds many tests. ``holm`` controls the family-wise error rate (the
chance of any false rejection), ``benjamini_hochberg`` the false discovery rate (the
expected share of false rejections among the rejections; valid for independent or
positively dependent tests). Both return adjusted p-values of the same shape: reject
where ``adjusted < α``. NaN entries (undefined cells) are left out and stay NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

METHODS = ("holm", "bh")


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


def holm(p_values: Tensor) -> Tensor:
    """Holm's step-down adjustment (family-wise error rate)."""
    return adjust_p_values(p_values, "holm")


def benjamini_hochberg(p_values: Tensor) -> Tensor:
    """Benjamini–Hochberg step-up adjustment (false discovery rate)."""
    return adjust_p_values(p_values, "bh")
