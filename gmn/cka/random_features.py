"""Random Fourier features: RBF CKA as linear CKA in a finite feature space, streamable.

Rahimi & Recht (2007): with ``W`` ``[d, D]`` drawn from ``N(0, 1/σ²)`` and ``b`` uniform on
``[0, 2π)``, ``z(x) = sqrt(2/D) · cos(xW + b)`` gives ``z(x)·z(x') ≈ exp(-‖x - x'‖²/(2σ²))``
with an error of order ``1/sqrt(D)``. Linear CKA of ``z(x)`` and ``z(y)`` is then an
*approximation* of RBF CKA that :class:`gmn.cka.grid.CKAGrid` can stream exactly; its
error against the ``n × n`` RBF CKA is measured in ``benchmarks/cka.py`` (``rff`` case).

The bandwidth follows Kornblith et al.'s rule, ``σ = threshold · sqrt(median squared
distance)``, but from the *first batch* only (the full-data median is not available when
streaming): a documented difference from :func:`gmn.cka.rbf_cka`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .inputs import as_samples
from .kernels import linear_gram, median_squared_distance, squared_distances


class RandomFourierFeatures:
    """Maps batches ``[b, ...]`` of one layer to ``[b, features]`` random Fourier features.

    The bandwidth (``sigma``, unless given) and the draws are fixed by the first batch and
    ``seed``; every later batch uses the same map.
    """

    def __init__(
        self,
        features: int = 2048,
        threshold: float = 1.0,
        seed: int = 0,
        sigma: float | None = None,
        median: str = "numpy",
    ):
        if features < 1:
            raise ValueError(f"features must be at least 1, got {features}")
        if not threshold > 0:
            raise ValueError(f"the RBF threshold must be positive, got {threshold}")
        self.features, self.threshold, self.seed = features, threshold, seed
        self.sigma, self.median = sigma, median
        self.weights: Tensor | None = None
        self.phases: Tensor | None = None
        self.origin: Tensor | None = None  # the first batch's mean: RBF ignores translation

    def bandwidth(self, x: Tensor) -> float:
        """``threshold · sqrt(median squared distance)`` of the batch ``x`` ``[b, d]``."""
        distances = squared_distances(linear_gram(x))
        scale = float(median_squared_distance(distances, self.median))
        if scale <= 0:
            raise ValueError("the first batch's median pairwise distance is zero; pass sigma")
        return self.threshold * math.sqrt(scale)

    def __call__(self, x: Tensor, name: str = "x") -> Tensor:
        x = as_samples(x, name)
        if self.weights is None:
            self.origin = x.mean(dim=0)
            if self.sigma is None:
                self.sigma = self.bandwidth(x)
            g = torch.Generator().manual_seed(self.seed)
            weights = torch.randn(x.shape[1], self.features, generator=g, dtype=torch.float64)
            phases = torch.rand(self.features, generator=g, dtype=torch.float64) * 2 * math.pi
            self.weights = (weights / self.sigma).to(x.device, x.dtype)
            self.phases = phases.to(x.device, x.dtype)
        elif x.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"{name} has {x.shape[1]} features per sample, the map was drawn for "
                f"{self.weights.shape[0]}"
            )
        projected = (x - self.origin) @ self.weights + self.phases
        return math.sqrt(2 / self.features) * torch.cos(projected)
