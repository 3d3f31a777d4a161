"""Orthogonal Procrustes shape distance (Williams et al. 2021; Ding et al. 2021).

With ``X`` ``[n, p]``, ``Y`` ``[n, q]`` centred and scaled to unit Frobenius norm (the
narrower one zero-padded, which changes nothing below),

    min over orthogonal Q of ‖X - YQ‖²_F = 2 - 2‖XᵀY‖_*,

``‖·‖_*`` the nuclear norm. ``ν = ‖XᵀY‖_*`` ∈ [0, 1] is the Procrustes *similarity*
(1: equal up to rotation, reflection, translation and isotropic scale); the distance is
``sqrt(2 - 2ν)`` and Williams et al.'s angular metric ``arccos ν``. Unlike CKA it is a
metric, and it is sensitive to the directions of low variance as well.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .inputs import as_samples


def nuclear_similarity(cross: Tensor, norm_sq_x: Tensor, norm_sq_y: Tensor) -> Tensor:
    """``‖XᵀY‖_* / sqrt(‖X‖²_F ‖Y‖²_F)`` from the centred ``XᵀY`` ``[p, q]`` and the squared
    norms (float64): what the streaming grid keeps."""
    return torch.linalg.svdvals(cross.double()).sum() / (norm_sq_x * norm_sq_y).sqrt()


def procrustes_similarity(x: Tensor, y: Tensor) -> Tensor:
    """``ν = ‖XᵀY‖_*`` for centred, unit-norm ``x`` ``[n, ...]``, ``y`` ``[n, ...]``."""
    x, y = as_samples(x, "x").double(), as_samples(y, "y").double()
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y has {y.shape[0]}")
    fx, fy = x - x.mean(dim=0), y - y.mean(dim=0)
    return nuclear_similarity(fx.T @ fy, fx.square().sum(), fy.square().sum())


def procrustes_distance(x: Tensor, y: Tensor, *, angular: bool = False) -> Tensor:
    """``min_Q ‖X - YQ‖_F = sqrt(2 - 2ν)`` ∈ [0, √2], or ``arccos ν`` ∈ [0, π/2] when
    ``angular`` (Williams et al.'s shape metric)."""
    similarity = procrustes_similarity(x, y).clamp(0, 1)
    return torch.arccos(similarity) if angular else (2 - 2 * similarity).clamp_min(0).sqrt()
