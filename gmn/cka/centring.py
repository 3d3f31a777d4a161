"""Exact column centring of float32 or float64 features, scaled by a power of two."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gmn import memory

from .inputs import finite_column_sums
from .products import column_sums


@dataclass
class Centred:
    """features ``[n, d]``: ``(x - mean) · scale`` in the input's dtype, columns summing to
    zero up to rounding of the centred values themselves. scale: the power of two that brings
    a bound on the centred magnitudes into [0.5, 1) (1 without variance); the bound is exact
    when the column means agree and exceeds the largest magnitude by at most the spread of
    the column means otherwise. constant: every sample identical (checked exactly)."""

    features: Tensor
    scale: float
    constant: bool


def centre(x: Tensor, name: str = "x") -> Centred:
    """Centre ``x`` ``[n, d]`` (float32 or float64) exactly and scale it by a power of two.

    Subtracting the float64 mean rounded to ``x``'s dtype leaves each column a mean of up
    to half an ulp of the original mean, which matters once ``|mean| ≫ std`` (an offset of
    1e4 on unit-variance float32 features moves CKA by ~5e-6). A second pass removes that
    residual mean, now measured on the centred values where it is exact to rounding
    (cheaper than deciding whether it is needed, which takes the per-column ranges). The
    power of two (exact; CKA does not depend on it) keeps float32 products from
    overflowing or underflowing. Both passes stay differentiable.
    """
    n = x.shape[0]
    mean = finite_column_sums(x, name) / n
    with torch.no_grad():  # one global pass: per-column extremes cost two slower ones
        low, high = (float(v) for v in torch.aminmax(x))
        means = mean.detach()
        # |x_ij - mean_j| <= peak, with equality somewhere when the column means agree
        peak = max(high - float(means.min()), float(means.max()) - low)
    constant = is_constant(x)
    scale = 2.0 ** -math.frexp(peak)[1] if peak > 0 and not constant else 1.0
    # huge-page memory, or the first touch of its pages costs as much as the subtraction
    shifted = torch.add((mean.to(x.dtype) * scale).neg()[None, :], x, alpha=scale,
                        out=memory.output(tuple(x.shape), x))
    shifted.sub_((column_sums(shifted) / n).to(x.dtype)[None, :])
    return Centred(shifted, scale, constant)


def is_constant(x: Tensor) -> bool:
    """Whether every row of ``x`` ``[n, d]`` equals the first, exactly. Two differing rows
    (the usual case) answer without a pass over the data."""
    if x.shape[0] > 1 and not torch.equal(x[0], x[1]):
        return False
    return bool((x == x[:1]).all())
