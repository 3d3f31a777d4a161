"""Kernel (Gram) matrices of representations and the RBF bandwidth rule."""

from __future__ import annotations

import torch
from torch import Tensor

from .products import inner_products

MEDIAN_RULES = ("numpy", "lower", "offdiagonal")


def linear_gram(features: Tensor) -> Tensor:
    """``X Xᵀ`` as float64 ``[n, n]`` for features ``[n, d]``, summed over feature blocks."""
    transposed = features.T
    return inner_products(transposed, transposed)


def squared_distances(gram: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``[n, n]`` from a linear Gram matrix."""
    norms = torch.diagonal(gram)
    return (norms[:, None] + norms[None, :] - 2 * gram).clamp_min(0)


def median_squared_distance(distances: Tensor, rule: str = "numpy") -> Tensor:
    """Median of the squared pairwise distances ``[n, n]`` under a named rule.

    - ``"numpy"``: all n² entries (the zero diagonal included), the mean of the two
      middle values when their count is even, like ``numpy.median`` (Kornblith et al.);
    - ``"lower"``: all n² entries, the lower middle value, like ``torch.median``;
    - ``"offdiagonal"``: the n(n-1)/2 distinct pairs only, ``numpy.median`` semantics.
    """
    if rule not in MEDIAN_RULES:
        raise ValueError(f"median rule must be one of {MEDIAN_RULES}, got {rule!r}")
    if rule == "offdiagonal":
        rows, cols = torch.triu_indices(*distances.shape, offset=1, device=distances.device)
        values = distances[rows, cols]
    else:
        values = distances.flatten()
    count = values.numel()
    lower = torch.kthvalue(values, (count + 1) // 2).values
    if rule == "lower" or count % 2 == 1:
        return lower
    upper = torch.kthvalue(values, count // 2 + 1).values
    return (lower + upper) / 2


def rbf_gram(features: Tensor, threshold: float = 1.0, median: str = "numpy") -> Tensor:
    """RBF kernel ``exp(-‖x_i - x_j‖² / (2σ²))`` ``[n, n]`` with ``σ = threshold · sqrt(m)``.

    ``m`` is the median squared pairwise distance (see :func:`median_squared_distance`),
    so ``threshold`` is the bandwidth as a fraction of the median distance.
    """
    if not threshold > 0:
        raise ValueError(f"the RBF threshold must be positive, got {threshold}")
    distances = squared_distances(linear_gram(features))
    scale = median_squared_distance(distances, median)
    if scale <= 0:
        raise ValueError(
            "the median pairwise distance is zero (more than half the sample pairs are "
            f"identical under the {median!r} rule); the RBF bandwidth is undefined"
        )
    return torch.exp(-distances / (2 * threshold**2 * scale))
