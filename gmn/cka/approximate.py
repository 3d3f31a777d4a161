"""Approximations of CKA for what the exact estimators cannot stream: the RBF kernel, wide layers.

**Minibatch CKA** (:class:`MinibatchGrid`). Nguyen, Raghu & Kornblith (2021, "Do wide and
deep networks learn the same things?") average the unbiased HSIC over k minibatches of
paired samples:

    CKA_mb = Σ_i HSIC_1(K_i, L_i) / sqrt(Σ_i HSIC_1(K_i, K_i) · Σ_i HSIC_1(L_i, L_i)).

Each term is unbiased for the population HSIC, so CKA_mb converges to the population
CKA as the batches grow, but for a finite data set it differs from the debiased CKA
of all the samples (it ignores pairs of samples in different batches) and depends
on the batch size. Use :class:`gmn.cka.CKAGrid` for the exact linear value; this
estimator serves kernels without a streaming form (RBF) and layers too wide for the
exact grid's ``d²`` sums. Each batch's HSICs are taken on the unscaled features:
``LayerStatistics`` multiplies each batch by its own power of two, which for the linear
kernel would weigh batch k by ``4^k`` if not undone.

**Random Fourier features** (:class:`RandomFourierFeatures`). Rahimi & Recht (2007): with
``W`` ``[d, D]`` drawn from ``N(0, 1/σ²)`` and ``b`` uniform on ``[0, 2π)``,
``z(x) = sqrt(2/D) · cos(xW + b)`` gives ``z(x)·z(x') ≈ exp(-‖x - x'‖²/(2σ²))`` with an
error of order ``1/sqrt(D)``. Linear CKA of ``z(x)`` and ``z(y)`` is then an approximation
of RBF CKA that :class:`gmn.cka.CKAGrid` streams exactly; its error against the ``n × n``
RBF CKA is measured by ``benchmarks/cka.py`` (``rff`` case). The bandwidth follows
Kornblith et al.'s rule, ``σ = threshold · sqrt(median squared distance)``, but from the
first batch only (the full-data median is not available when streaming), unlike
``gmn.cka.cka(kernel="rbf")``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .estimators import (
    Estimator,
    LayerStatistics,
    as_samples,
    cka_from_hsic,
    defined_self_hsic,
    distances_and_median,
    hsic,
)
from .matrix import CKAMatrix
from .streaming import SIDES, batch_layers


class MinibatchGrid:
    """Nguyen et al.'s minibatch CKA for every (row layer, column layer) cell; one pair is a
    grid of one row layer and one column layer.

    Per batch (``b ≥ 4`` samples), each layer's statistics are computed once and shared by
    its row or column; the state is three ``[rows, cols]``/``[rows]``/``[cols]`` float64 HSIC
    sums.
    """

    def __init__(self, kernel: str = "linear", threshold: float = 1.0, median: str = "numpy"):
        self.estimator = Estimator(kernel, debiased=True, threshold=threshold, median=median)
        self.batches = 0
        self.names: dict[str, list[str]] | None = None
        self.cross: Tensor | None = None
        self.own: dict[str, Tensor] = {}

    def update(self, rows, cols) -> MinibatchGrid:
        """Add a batch: ``{layer: [b, ...]}`` (or lists) for rows and columns, ``b ≥ 4``."""
        batch = batch_layers(rows, cols, self.names)
        if self.names is None:
            self.names = {side: list(batch[side]) for side in SIDES}
            self.cross = torch.zeros(*(len(self.names[s]) for s in SIDES), dtype=torch.float64)
            self.own = {s: torch.zeros(len(self.names[s]), dtype=torch.float64) for s in SIDES}
        stats = {
            side: [
                LayerStatistics(state, self.estimator, f"{side}[{name!r}]")
                for name, state in batch[side].items()
            ]
            for side in SIDES
        }
        linear = self.estimator.kernel == "linear"
        for side in SIDES:
            for k, layer in enumerate(stats[side]):
                # undo each batch's own power-of-two scaling (linear HSIC scales as scale⁴)
                self.own[side][k] += float(layer.self_hsic) / (layer.scale**4 if linear else 1)
        for i, a in enumerate(stats["rows"]):
            for j, b in enumerate(stats["cols"]):
                if a.n != b.n:
                    raise ValueError(f"{a.name} has {a.n} rows in this batch but {b.name} {b.n}")
                if a.constant or b.constant:
                    self.cross[i, j] = float("nan")
                    continue
                factor = (a.scale * b.scale) ** 2 if linear else 1
                self.cross[i, j] += float(hsic(a, b)) / factor
        self.batches += 1
        return self

    def merge(self, other: MinibatchGrid) -> MinibatchGrid:
        """Add the batches seen by ``other``."""
        if other.estimator != self.estimator:
            raise ValueError(f"cannot merge {other.estimator} into {self.estimator}")
        if other.batches == 0:
            return self
        if self.batches == 0:
            self.names, self.cross = other.names, other.cross.clone()
            self.own = {s: v.clone() for s, v in other.own.items()}
        elif other.names != self.names:
            raise ValueError(f"cannot merge layers {other.names} into {self.names}")
        else:
            self.cross = self.cross + other.cross
            self.own = {s: v + other.own[s] for s, v in self.own.items()}
        self.batches += other.batches
        return self

    def all_reduce(self, group=None) -> MinibatchGrid:
        """Sum the HSIC sums over the ranks of ``group`` (every rank must have seen a batch)."""
        import torch.distributed as dist

        if self.batches == 0:
            raise ValueError("MinibatchGrid.all_reduce: this rank saw no batch")
        count = torch.tensor([float(self.batches)], dtype=torch.float64)
        for tensor in (count, self.cross, *self.own.values()):
            dist.all_reduce(tensor, group=group)
        self.batches = int(count.item())
        return self

    def compute(self) -> CKAMatrix:
        """The minibatch CKA matrix ``[rows, cols]`` with the layer names; NaN (with a
        warning) for a layer whose summed self-HSIC is not positive."""
        if self.batches == 0:
            raise ValueError("MinibatchGrid.compute() called before any update()")
        own = {
            side: torch.stack([
                defined_self_hsic(value, f"{side}[{name!r}]")
                for name, value in zip(self.names[side], self.own[side])
            ])
            for side in SIDES
        }
        return CKAMatrix(
            values=cka_from_hsic(self.cross, own["rows"][:, None], own["cols"][None, :]),
            row_names=list(self.names["rows"]),
            col_names=list(self.names["cols"]),
            estimator=self.estimator,
        )


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
        """``threshold · sqrt(median squared distance)`` of the batch ``x`` ``[b, d]`` (a
        ``ValueError`` when that median is zero: then pass ``sigma``)."""
        return self.threshold * math.sqrt(float(distances_and_median(x, self.median)[1]))

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
