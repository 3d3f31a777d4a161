"""Sums over samples or features in the input's dtype, returned in float64.

Float32 matrix products are several times faster than float64 ones on CPUs, and an
upcasting reduction (``x.sum(dtype=torch.float64)``) is an order of magnitude slower
than either. So each block of at most ``BLOCK`` rows (or columns) is multiplied in the
input's own dtype and the block results are summed in float64: no float32 dot product
runs over more than ``BLOCK`` terms. The blocks are of equal size, because a short last
block slows the product down (measured in docs/cka.md). Column sums are torch's own
reduction, whose cascade summation is both faster and ~10× more accurate than a product
with a vector of ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 16384


def inner_products(a: Tensor, b: Tensor, block: int = BLOCK) -> Tensor:
    """``a.T @ b`` for ``a`` ``[m, p]`` and ``b`` ``[m, q]``, returned as float64 ``[p, q]``."""
    rows = a.shape[0]
    if rows == 0:
        return a.new_zeros((a.shape[1], b.shape[1]), dtype=torch.float64)
    size = -(-rows // -(-rows // block))  # ceil(rows / number of blocks)
    total = (a[:size].T @ b[:size]).to(torch.float64)
    for start in range(size, rows, size):
        total = total + (a[start : start + size].T @ b[start : start + size]).to(torch.float64)
    return total


def column_sums(x: Tensor) -> Tensor:
    """``x.sum(0)`` for ``x`` ``[n, d]`` as float64 ``[d]`` (summed in x's dtype; a float32
    sum of finite values can overflow to Inf)."""
    return x.sum(dim=0).to(torch.float64)


def row_sq_norms(x: Tensor, block: int = BLOCK) -> Tensor:
    """``(x * x).sum(1)`` for ``x`` ``[n, d]`` as float64 ``[n]``."""
    total = x.new_zeros(x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[1], block):
        # the norm, squared in float64: 8x faster than einsum("ij,ij->i") here, and closer
        norm = torch.linalg.vector_norm(x[:, start : start + block], dim=1)
        total = total + norm.to(torch.float64).square()
    return total
