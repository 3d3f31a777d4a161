"""Inner products summed in float64 block by block."""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK_ROWS = 2048


def inner_products(a: Tensor, b: Tensor, block_rows: int = BLOCK_ROWS) -> Tensor:
    """``a.T @ b`` for ``a`` ``[m, p]`` and ``b`` ``[m, q]``, returned as float64 ``[p, q]``.

    Each block of at most ``block_rows`` rows is multiplied in the inputs' own dtype
    (float32 matrix products are several times faster than float64 on CPUs) and the
    blocks are summed in float64, so no float32 sum runs over more than
    ``block_rows`` terms.
    """
    total = a.new_zeros((a.shape[1], b.shape[1]), dtype=torch.float64)
    for start in range(0, a.shape[0], block_rows):
        stop = start + block_rows
        total = total + (a[start:stop].T @ b[start:stop]).to(torch.float64)
    return total
