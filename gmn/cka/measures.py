"""Similarity measures beside CKA: orthogonal Procrustes, CCA/SVCCA/PWCCA, RSA.

Procrustes and the CCA family need only second moments of the centred representations
(``XᵀX``, ``YᵀY``, ``XᵀY``), so each is computed by one function from those moments, for a
pair held in memory and for the streamed sums of :class:`gmn.cka.CKAGrid` alike.

**Orthogonal Procrustes** (Williams et al. 2021; Ding et al. 2021). With ``X`` ``[n, p]``,
``Y`` ``[n, q]`` centred and scaled to unit Frobenius norm (the narrower one zero-padded,
which changes nothing below), ``min over orthogonal Q of ‖X - YQ‖²_F = 2 - 2‖XᵀY‖_*``.
``ν = ‖XᵀY‖_*`` ∈ [0, 1] is the Procrustes similarity (1: equal up to rotation, reflection,
translation and isotropic scale); the distance is ``sqrt(2 - 2ν)`` and Williams et al.'s
angular metric ``arccos ν``. Unlike CKA it is a metric, and it is sensitive to the
directions of low variance as well.

**CCA.** With ``W_x`` ``[p, r]`` whitening X's covariance (``W_xᵀ Σxx W_x = I`` over its
directions of non-negligible variance, :func:`whitening`), the canonical correlations
``ρ_1 ≥ ρ_2 ≥ ...`` are the singular values of ``W_xᵀ Σxy W_y``. Summaries: the mean ``ρ``;
SVCCA (Raghu et al. 2017), the mean after keeping each side's leading directions that
explain 99 % of its variance; PWCCA (Morcos et al. 2018), ``Σ α_i ρ_i`` with weights
``α_i ∝ Σ_j |⟨h_i, x_j⟩|`` (``h_i`` the i-th canonical variate of X in sample space, ``x_j``
X's columns). CCA needs ``n`` well above ``p + q``: with ``n ≤ p + q`` correlations of 1
appear by construction (:func:`warn_if_forced`).

**RSA** (Kriegeskorte et al. 2008). Each representation gives a representational
dissimilarity matrix (RDM) over its samples, ``1 - Pearson correlation`` between the
activation patterns of samples i and j (``"correlation"``) or their Euclidean distance
(``"euclidean"``); RSA is the Spearman rank correlation between the ``n(n-1)/2``
upper-triangle entries of the two RDMs (ties get their average rank). ``O(n²)`` memory:
for in-memory sample sets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .estimators import as_samples, named_layers
from .matrix import CKAMatrix

RANK_TOLERANCE = 1e-10  # a covariance eigenvalue below this × the largest is no direction
DISTANCES = ("correlation", "euclidean")


def similarity_matrix(reps_a, reps_b=None, *, measure: str = "procrustes", **options) -> CKAMatrix:
    """``measure`` between each layer of ``reps_a`` and each of ``reps_b`` (``{name: [n, ...]}``
    or lists, tensors or numpy arrays; ``reps_b=None``: ``reps_a`` with itself).

    measure: ``"procrustes"``, ``"cca"`` (mean canonical correlation), ``"svcca"``,
    ``"pwcca"`` or ``"rsa"``; ``options`` go to that function.
    """
    functions: dict[str, Callable[..., Tensor]] = {
        "procrustes": procrustes_similarity,
        "cca": mean_cca,
        "svcca": svcca,
        "pwcca": pwcca,
        "rsa": rsa,
    }
    if measure not in functions:
        raise ValueError(f"measure must be one of {sorted(functions)}, got {measure!r}")
    named_a = named_layers(reps_a, "reps_a")
    named_b = named_a if reps_b is None else named_layers(reps_b, "reps_b")
    fn = functions[measure]
    values = torch.tensor(
        [[float(fn(a, b, **options)) for b in named_b.values()] for a in named_a.values()],
        dtype=torch.float64,
    )
    return CKAMatrix(values, list(named_a), list(named_b), measure=measure)


def centred_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` ``[n, ...]`` and ``y`` ``[n, ...]`` flattened to float64 ``[n, p]``, ``[n, q]`` with
    centred columns; ``ValueError`` when their sample counts differ."""
    x, y = as_samples(x, "x").double(), as_samples(y, "y").double()
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y has {y.shape[0]}")
    return x - x.mean(dim=0), y - y.mean(dim=0)


def centred_moments(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """``(XᵀX [p, p], YᵀY [q, q], XᵀY [p, q], n)`` in float64 for the column-centred ``x``,
    ``y`` (:func:`centred_pair`)."""
    fx, fy = centred_pair(x, y)
    return fx.T @ fx, fy.T @ fy, fx.T @ fy, fx.shape[0]


# ---- orthogonal Procrustes ---------------------------------------------------------------------


def procrustes_from_moments(cross: Tensor, norm_sq_x: Tensor, norm_sq_y: Tensor) -> Tensor:
    """``ν = ‖XᵀY‖_* / sqrt(‖X‖²_F ‖Y‖²_F)`` from the centred ``XᵀY`` ``[p, q]`` and the squared
    norms ``‖X‖²_F``, ``‖Y‖²_F`` (the traces of ``XᵀX`` and ``YᵀY``), float64."""
    return torch.linalg.svdvals(cross.double()).sum() / (norm_sq_x * norm_sq_y).sqrt()


def procrustes_similarity(x: Tensor, y: Tensor) -> Tensor:
    """``ν = ‖XᵀY‖_*`` for centred, unit-norm ``x`` ``[n, ...]``, ``y`` ``[n, ...]``."""
    fx, fy = centred_pair(x, y)
    return procrustes_from_moments(fx.T @ fy, fx.square().sum(), fy.square().sum())


def procrustes_distance(x: Tensor, y: Tensor, *, angular: bool = False) -> Tensor:
    """``min_Q ‖X - YQ‖_F = sqrt(2 - 2ν)`` ∈ [0, √2], or ``arccos ν`` ∈ [0, π/2] when
    ``angular`` (Williams et al.'s shape metric)."""
    similarity = procrustes_similarity(x, y).clamp(0, 1)
    return torch.arccos(similarity) if angular else (2 - 2 * similarity).clamp_min(0).sqrt()


# ---- canonical correlation analysis -----------------------------------------------------------


def whitening(covariance: Tensor, keep: float | None = None) -> Tensor:
    """``W`` ``[d, r]`` with ``Wᵀ Σ W = I`` for a covariance ``Σ`` ``[d, d]`` (float64), over its
    eigen-directions whose eigenvalue exceeds ``RANK_TOLERANCE`` × the largest, in decreasing
    order of variance; with ``keep``, only the leading ones that explain that fraction of the
    variance (SVCCA's SVD step)."""
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    eigenvalues, vectors = eigenvalues.flip(0), vectors.flip(1)
    top = eigenvalues[0]
    rank = int((eigenvalues > RANK_TOLERANCE * top).sum()) if top > 0 else 0
    if keep is not None and rank > 0:
        variance = eigenvalues.clamp_min(0)
        explained = torch.cumsum(variance, 0) / variance.sum()
        rank = min(rank, int((explained < keep).sum()) + 1)
    if rank == 0:
        raise ValueError("a representation without variance has no canonical correlations")
    return vectors[:, :rank] / eigenvalues[:rank].sqrt()


def canonical_analysis(wx: Tensor, wy: Tensor, cross: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Canonical correlations ``ρ`` ``[k]`` (decreasing, float64) of two centred
    representations of ``n`` samples from their :func:`whitening` maps ``wx`` ``[p, r_x]``,
    ``wy`` ``[q, r_y]`` and cross moment ``XᵀY`` ``[p, q]``, with the left singular vectors
    ``[r_x, k]``: ``wx @ left`` ``[p, k]`` projects X onto its canonical variates. Warns when
    the two ranks add up to more than the ``n - 1`` dimensions the centred samples span."""
    warn_if_forced(wx.shape[1], wy.shape[1], n)
    left, rho, _ = torch.linalg.svd(wx.T @ cross @ wy, full_matrices=False)
    return rho.clamp(0, 1), left


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
            stacklevel=4,
        )


def canonical_correlations(x: Tensor, y: Tensor, *, keep: float | None = None) -> Tensor:
    """``ρ`` ``[min(rank x, rank y)]`` in decreasing order (float64) of ``x`` ``[n, ...]`` and
    ``y`` ``[n, ...]``; ``keep``: SVD reduction to that fraction of each side's variance
    first. Warns when some correlations are 1 by construction, whatever the data."""
    sxx, syy, sxy, n = centred_moments(x, y)
    return canonical_analysis(whitening(sxx, keep), whitening(syy, keep), sxy, n)[0]


def mean_cca(x: Tensor, y: Tensor) -> Tensor:
    """Mean canonical correlation."""
    return canonical_correlations(x, y).mean()


def svcca(x: Tensor, y: Tensor, *, keep: float = 0.99) -> Tensor:
    """SVCCA: mean canonical correlation after keeping the singular directions that
    explain ``keep`` of each representation's variance (Raghu et al.: 0.99)."""
    return canonical_correlations(x, y, keep=keep).mean()


def pwcca(x: Tensor, y: Tensor) -> Tensor:
    """Projection-weighted CCA (Morcos et al.), weights from ``x``'s neurons (asymmetric)."""
    sxx, syy, sxy, n = centred_moments(x, y)
    wx = whitening(sxx)
    rho, left = canonical_analysis(wx, whitening(syy), sxy, n)
    weights = ((wx @ left).T @ sxx).abs().sum(dim=1)  # Σ_j |⟨h_i, x_j⟩|
    return (weights * rho).sum() / weights.sum()


# ---- representational similarity analysis --------------------------------------------------------


def rdm(x: Tensor, distance: str = "correlation") -> Tensor:
    """The RDM ``[n, n]`` (float64) of ``x`` ``[n, ...]``."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    x = as_samples(x, "x").double()
    if distance == "euclidean":
        return torch.cdist(x, x)
    patterns = x - x.mean(dim=1, keepdim=True)
    norms = patterns.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("a sample with identical values in every feature has no correlation")
    patterns = patterns / norms
    return 1 - patterns @ patterns.T


def average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..m of ``values`` ``[m]``, ties given the mean of the ranks they span."""
    order = torch.argsort(values, stable=True)
    ordered = values[order]
    new_value = torch.ones_like(ordered, dtype=torch.bool)
    new_value[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(new_value, 0) - 1
    positions = torch.arange(1, len(values) + 1, dtype=torch.float64)
    counts = torch.bincount(group).double()
    first = torch.cumsum(counts, 0) - counts + 1
    mean_rank = first + (counts - 1) / 2
    ranks = torch.empty_like(positions)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of two vectors ``[m]`` (float64)."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return (ra @ rb) / (ra.norm() * rb.norm())


def rsa(x: Tensor, y: Tensor, *, distance: str = "correlation") -> Tensor:
    """Spearman correlation between the upper triangles of the RDMs of ``x`` and ``y``."""
    dx, dy = rdm(x, distance), rdm(y, distance)
    if dx.shape != dy.shape:
        raise ValueError(f"x has {dx.shape[0]} samples, y has {dy.shape[0]}")
    rows, cols = torch.triu_indices(*dx.shape, offset=1)
    return spearman(dx[rows, cols], dy[rows, cols])
