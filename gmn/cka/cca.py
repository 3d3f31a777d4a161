"""Canonical correlation analysis: CCA, SVCCA (Raghu et al. 2017), PWCCA (Morcos et al. 2018).

For centred ``X`` ``[n, p]``, ``Y`` ``[n, q]`` with orthonormal bases ``U_x``, ``U_y`` of
their column spaces, the canonical correlations ``ρ_1 ≥ ρ_2 ≥ ...`` are the singular values
of ``U_xᵀ U_y``. Summaries: the mean ``ρ`` (Raghu et al.'s SVCCA similarity after their SVD
step), and PWCCA's ``Σ α_i ρ_i`` with weights ``α_i ∝ Σ_j |⟨h_i, x_j⟩|`` (``h_i`` the i-th
canonical variate of X in sample space, ``x_j`` X's columns). CCA needs ``n`` well above
``p + q``: with ``n ≤ p + q`` correlations of 1 appear by construction.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .inputs import as_samples

RANK_TOLERANCE = 1e-10


def _basis(x: Tensor, keep: float | None = None) -> Tensor:
    """Orthonormal basis ``[n, r]`` of the centred columns of x; with ``keep``, of its top
    singular directions that explain that fraction of the variance (SVCCA's SVD step)."""
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    rank = int((s > RANK_TOLERANCE * s[0]).sum()) if s[0] > 0 else 0
    if keep is not None:
        explained = torch.cumsum(s**2, 0) / (s**2).sum()
        rank = min(rank, int((explained < keep).sum()) + 1)
    if rank == 0:
        raise ValueError("a representation without variance has no canonical correlations")
    return u[:, :rank]


def _prepared(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x, y = as_samples(x, "x").double(), as_samples(y, "y").double()
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y has {y.shape[0]}")
    return x - x.mean(dim=0), y - y.mean(dim=0)


def canonical_correlations(x: Tensor, y: Tensor, *, keep: float | None = None) -> Tensor:
    """``ρ`` ``[min(rank x, rank y)]`` in decreasing order (float64); ``keep``: SVD
    reduction to that fraction of each side's variance first. Warns when the two bases
    span more than the ``n - 1`` dimensions of the centred samples: then some correlations
    are 1 by construction, whatever the representations."""
    fx, fy = _prepared(x, y)
    ux, uy = _basis(fx, keep), _basis(fy, keep)
    warn_if_forced(ux.shape[1], uy.shape[1], fx.shape[0])
    return torch.linalg.svdvals(ux.T @ uy).clamp(0, 1)


def warn_if_forced(rank_x: int, rank_y: int, n: int) -> None:
    """Warn when bases of ranks ``rank_x``, ``rank_y`` over ``n`` centred samples must share
    directions (``rank_x + rank_y > n - 1``): those canonical correlations are 1."""
    forced = rank_x + rank_y - (n - 1)
    if forced > 0:
        warnings.warn(
            f"canonical correlations of {n} samples with ranks {rank_x} and {rank_y}: at "
            f"least {forced} of {min(rank_x, rank_y)} are 1 by construction (the centred "
            f"samples span only {n - 1} dimensions); use n well above {rank_x + rank_y}",
            RuntimeWarning,
            stacklevel=3,
        )


def mean_cca(x: Tensor, y: Tensor) -> Tensor:
    """Mean canonical correlation."""
    return canonical_correlations(x, y).mean()


def svcca(x: Tensor, y: Tensor, *, keep: float = 0.99) -> Tensor:
    """SVCCA: mean canonical correlation after keeping the singular directions that
    explain ``keep`` of each representation's variance (Raghu et al.: 0.99)."""
    return canonical_correlations(x, y, keep=keep).mean()


def pwcca(x: Tensor, y: Tensor) -> Tensor:
    """Projection-weighted CCA (Morcos et al.), weights from ``x``'s neurons (asymmetric)."""
    fx, fy = _prepared(x, y)
    ux, uy = _basis(fx), _basis(fy)
    warn_if_forced(ux.shape[1], uy.shape[1], fx.shape[0])
    left, rho, _ = torch.linalg.svd(ux.T @ uy, full_matrices=False)
    variates = ux @ left  # [n, k] canonical variates of x, unit norm
    rho = rho.clamp(0, 1)
    weights = (variates.T @ fx).abs().sum(dim=1)[: rho.shape[0]]
    return (weights * rho).sum() / weights.sum()
