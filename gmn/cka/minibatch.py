"""Nguyen et al.'s minibatch CKA: an approximation, not the full-data value.

Nguyen, Raghu & Kornblith (2021, "Do wide and deep networks learn the same things?")
average the unbiased HSIC over k minibatches of paired samples:

    CKA_mb = Σ_i HSIC_1(K_i, L_i) / sqrt(Σ_i HSIC_1(K_i, K_i) · Σ_i HSIC_1(L_i, L_i)).

Each term is unbiased for the population HSIC, so CKA_mb converges to the population
CKA as the batches grow, but for a finite data set it differs from the debiased CKA
of all the samples (it ignores pairs of samples in different batches) and depends
on the batch size. Use :class:`gmn.cka.CKAAccumulator` for the exact linear value;
this estimator is useful for kernels without a streaming form (RBF).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .hsic import cka_from_hsic
from .inputs import as_samples
from .layer import Estimator, LayerStatistics, hsic


class MinibatchCKA:
    """Accumulates Nguyen et al.'s minibatch CKA (debiased HSIC per batch of ≥ 4 samples)."""

    def __init__(self, kernel: str = "linear", threshold: float = 1.0, median: str = "numpy"):
        self.estimator = Estimator(kernel, debiased=True, threshold=threshold, median=median)
        self.batches = 0
        self.hsic_sums = torch.zeros(3, dtype=torch.float64)

    def update(self, x: Tensor, y: Tensor) -> MinibatchCKA:
        """Add a batch ``x`` ``[b, ...]``, ``y`` ``[b, ...]`` (b ≥ 4)."""
        x, y = as_samples(x, "x"), as_samples(y, "y")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"batch sizes differ: x has {x.shape[0]} rows, y has {y.shape[0]}")
        a = LayerStatistics(x, self.estimator, "x")
        b = LayerStatistics(y, self.estimator, "y")
        cross = (
            torch.tensor(float("nan"), dtype=torch.float64)
            if a.constant or b.constant
            else hsic(a, b)
        )
        terms = torch.stack([cross.cpu(), a.self_hsic.cpu(), b.self_hsic.cpu()])
        if self.estimator.kernel == "linear":
            # undo each batch's own power-of-two scaling, or batches would weigh 4^k
            terms = terms / torch.tensor(
                [(a.scale * b.scale) ** 2, a.scale**4, b.scale**4], dtype=torch.float64
            )
        self.hsic_sums = self.hsic_sums + terms
        self.batches += 1
        return self

    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """Add the batches seen by ``other``."""
        if other.estimator != self.estimator:
            raise ValueError(f"cannot merge {other.estimator} into {self.estimator}")
        self.hsic_sums = self.hsic_sums + other.hsic_sums
        self.batches += other.batches
        return self

    def compute(self) -> Tensor:
        """The minibatch CKA (float64 scalar)."""
        if self.batches == 0:
            raise ValueError("MinibatchCKA.compute() called before any update()")
        cross, self_x, self_y = self.hsic_sums
        return cka_from_hsic(cross, self_x, self_y)
