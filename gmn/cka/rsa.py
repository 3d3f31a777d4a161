"""Representational similarity analysis (Kriegeskorte et al. 2008).

Each representation ``[n, d]`` gives a representational dissimilarity matrix (RDM) over its
samples, ``1 - Pearson correlation`` between the activation patterns of samples i and j
(``"correlation"``) or their Euclidean distance (``"euclidean"``); RSA is the Spearman
rank correlation between the ``n(n-1)/2`` upper-triangle entries of the two RDMs (ties get
their average rank). ``O(n²)`` memory: for in-memory sample sets.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .inputs import as_samples

DISTANCES = ("correlation", "euclidean")


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
