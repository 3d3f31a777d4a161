"""Exact column centring of float32 or float64 features, scaled by a power of two."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gmn import memory

from .inputs import finite_column_sums
from .products import column_sums

# A residual column mean below this fraction of the column's range changes CKA by less
# than its square, ~1e-16: no second pass for it.
RESIDUAL = 1e-8


@dataclass
class Centred:
    """features ``[n, d]``: ``(x - mean) · scale`` in the input's dtype, columns summing to
    zero up to rounding of the centred values themselves. scale: the power of two that brings
    the largest centred magnitude into [0.5, 1) (1 without variance). constant: every sample
    identical (checked exactly)."""

    features: Tensor
    scale: float
    constant: bool


def centre(x: Tensor, name: str = "x") -> Centred:
    """Centre ``x`` ``[n, d]`` (float32 or float64) exactly and scale it by a power of two.

    Subtracting the float64 mean rounded to ``x``'s dtype leaves each column a mean of up
    to half an ulp of the original mean, which matters once ``|mean| ≫ std`` (an offset of
    1e4 on unit-variance float32 features moves CKA by ~5e-6). A second pass removes that
    residual mean, now measured on the centred values where it is exact to rounding. The
    power of two (exact; CKA does not depend on it) keeps float32 products from
    overflowing or underflowing. Both passes stay differentiable.
    """
    n = x.shape[0]
    mean = finite_column_sums(x, name) / n
    with torch.no_grad():  # two plain reductions: aminmax over dim 0 is slower (docs/cka.md)
        low, high = x.amin(dim=0), x.amax(dim=0)
        spread = torch.maximum(high.double() - mean.detach(), mean.detach() - low.double())
    peak = float(spread.max())
    constant = bool(torch.equal(low, high))
    scale = 2.0 ** -math.frexp(peak)[1] if peak > 0 and not constant else 1.0
    # huge-page memory, or the first touch of its pages costs as much as the subtraction
    shifted = torch.add((mean.to(x.dtype) * scale).neg()[None, :], x, alpha=scale,
                        out=memory.output(tuple(x.shape), x))
    residual = column_sums(shifted) / n
    # The second pass matters only where the residual mean is not negligible against the
    # column's range (large offsets); elsewhere it would cost a pass for nothing.
    negligible = residual.detach().abs() <= RESIDUAL * scale * (high - low).double()
    if not bool(negligible.all()):
        shifted.sub_(residual.to(x.dtype)[None, :])
    return Centred(shifted, scale, constant)
