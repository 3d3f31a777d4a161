"""HSIC estimators and the CKA ratio built from them.

Biased (Gretton et al. 2005): ``HSIC_0(K, L) = tr(K H L H)`` with ``H = I - 11ᵀ/n``
(the usual ``1/(n-1)²`` factor cancels in CKA and is left out).

Debiased (Song et al. 2012): with ``K̃``, ``L̃`` the kernels with a zeroed diagonal,
``HSIC_1 = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2)·1ᵀK̃L̃1] / (n(n-3))``,
which equals ``<U(K), U(L)> / (n(n-3))`` for the U-centred kernels ``U``.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def linear_hsic(
    n: int, cross_sq: Tensor, sum_ab: Tensor, sum_a: Tensor, sum_b: Tensor, debiased: bool
) -> Tensor:
    """HSIC of the linear kernels of column-centred features ``X`` ``[n, p]`` and ``Y`` ``[n, q]``.

    ``cross_sq = ‖XᵀY‖²_F``; ``a_i = ‖x_i‖²`` and ``b_i = ‖y_i‖²`` are the squared row
    norms, ``sum_ab = Σ a_i b_i``, ``sum_a = Σ a_i``, ``sum_b = Σ b_i``. Because the
    columns are centred, ``K̃1 = -a`` and ``L̃1 = -b`` in the debiased formula, so every
    term is a sum over samples. All arguments are float64 scalars.
    """
    if not debiased:
        return cross_sq
    return (cross_sq - n / (n - 2) * sum_ab + sum_a * sum_b / ((n - 1) * (n - 2))) / (n * (n - 3))


def center_gram(gram: Tensor, debiased: bool) -> Tensor:
    """Centre a symmetric kernel matrix ``[n, n]``: ``HKH`` (biased) or U-centring (debiased).

    U-centring zeroes the diagonal, then subtracts row and column means taken over the
    off-diagonal entries (``Σ_j K̃_ij / (n-2)``) and adds back the grand mean, so that
    ``<U(K), U(L)> / (n(n-3))`` is the unbiased HSIC.
    """
    n = gram.shape[0]
    if not debiased:
        row_means = gram.mean(dim=0)
        return gram - row_means[:, None] - row_means[None, :] + row_means.mean()
    off_diagonal = gram - torch.diag_embed(torch.diagonal(gram))
    means = off_diagonal.sum(dim=0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    centred = off_diagonal - means[:, None] - means[None, :]
    return centred - torch.diag_embed(torch.diagonal(centred))


def gram_hsic(centred_a: Tensor, centred_b: Tensor, debiased: bool) -> Tensor:
    """HSIC from two kernel matrices ``[n, n]`` already passed through :func:`center_gram`.

    An elementwise product and a sum, O(n²): the matrix product ``KL`` is never formed.
    """
    inner = (centred_a * centred_b).sum()
    n = centred_a.shape[0]
    return inner / (n * (n - 3)) if debiased else inner


def cka_from_hsic(cross: Tensor, self_a: Tensor, self_b: Tensor) -> Tensor:
    """``cross / sqrt(self_a · self_b)``; NaN with a warning when a self-HSIC is not positive.

    A self-HSIC of zero means a representation with no variance; the debiased
    self-HSIC can also be ≤ 0 on a handful of samples. CKA is undefined then.
    """
    if self_a <= 0 or self_b <= 0:
        warnings.warn(
            "a representation has non-positive self-HSIC (no usable variance); "
            "CKA is undefined and returned as NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return cross * float("nan")
    return cross / torch.sqrt(self_a * self_b)
