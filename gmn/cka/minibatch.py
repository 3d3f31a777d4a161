"""Nguyen et al.'s minibatch CKA: an approximation, not the full-data value.

Nguyen, Raghu & Kornblith (2021, "Do wide and deep networks learn the same things?")
average the unbiased HSIC over k minibatches of paired samples:

    CKA_mb = Σ_i HSIC_1(K_i, L_i) / sqrt(Σ_i HSIC_1(K_i, K_i) · Σ_i HSIC_1(L_i, L_i)).

Each term is unbiased for the population HSIC, so CKA_mb converges to the population
CKA as the batches grow, but for a finite data set it differs from the debiased CKA
of all the samples (it ignores pairs of samples in different batches) and depends
on the batch size. Use :class:`gmn.cka.CKAAccumulator` for the exact linear value;
this estimator is useful for kernels without a streaming form (RBF) and for layers too
wide for the exact grid's ``d²`` sums.

Each batch's HSICs are taken on the unscaled features: ``LayerStatistics`` multiplies
each batch by its own power of two, which for the linear kernel would weigh batch k by
``4^k`` if not undone.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .grid import SIDES, _named
from .layer import Estimator, LayerStatistics, hsic
from .matrix import CKAMatrix


class MinibatchGrid:
    """Nguyen et al.'s minibatch CKA for every (row layer, column layer) cell.

    Per batch, each layer's statistics are computed once and shared by its row or column;
    the state is three ``[rows, cols]``/``[rows]``/``[cols]`` float64 HSIC sums.
    """

    def __init__(self, kernel: str = "linear", threshold: float = 1.0, median: str = "numpy"):
        self.estimator = Estimator(kernel, debiased=True, threshold=threshold, median=median)
        self.batches = 0
        self.names: dict[str, list[str]] | None = None
        self.cross: Tensor | None = None
        self.own: dict[str, Tensor] = {}

    def update(self, rows, cols) -> MinibatchGrid:
        """Add a batch: ``{layer: [b, ...]}`` (or lists) for rows and columns, ``b ≥ 4``."""
        batch = {side: _named(layers, side) for side, layers in zip(SIDES, (rows, cols))}
        if self.names is None:
            self.names = {side: list(batch[side]) for side in SIDES}
            self.cross = torch.zeros(*(len(self.names[s]) for s in SIDES), dtype=torch.float64)
            self.own = {s: torch.zeros(len(self.names[s]), dtype=torch.float64) for s in SIDES}
        stats = {}
        for side in SIDES:
            if list(batch[side]) != self.names[side]:
                raise ValueError(
                    f"this batch's {side} layers are {list(batch[side])}, earlier ones "
                    f"{self.names[side]}"
                )
            stats[side] = [
                LayerStatistics(state, self.estimator, f"{side}[{name!r}]")
                for name, state in batch[side].items()
            ]
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
        """The minibatch CKA matrix ``[rows, cols]`` with the layer names."""
        if self.batches == 0:
            raise ValueError("compute() called before any update()")
        scale = torch.outer(self.own["rows"], self.own["cols"])
        if not bool((scale > 0).all()):
            warnings.warn(
                "a layer has non-positive summed self-HSIC (no usable variance); "
                "its CKA is undefined and returned as NaN",
                RuntimeWarning,
                stacklevel=2,
            )
        values = torch.where(scale > 0, self.cross / scale.clamp_min(0).sqrt(), float("nan"))
        return CKAMatrix(
            values=values,
            row_names=list(self.names["rows"]),
            col_names=list(self.names["cols"]),
            estimator=self.estimator,
        )


class MinibatchCKA:
    """Accumulates Nguyen et al.'s minibatch CKA of one pair (debiased HSIC per batch of ≥ 4
    samples): a one-cell :class:`MinibatchGrid`."""

    def __init__(self, kernel: str = "linear", threshold: float = 1.0, median: str = "numpy"):
        self.grid = MinibatchGrid(kernel, threshold, median)

    @property
    def estimator(self) -> Estimator:
        return self.grid.estimator

    @property
    def batches(self) -> int:
        return self.grid.batches

    def update(self, x: Tensor, y: Tensor) -> MinibatchCKA:
        """Add a batch ``x`` ``[b, ...]``, ``y`` ``[b, ...]`` (b ≥ 4)."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"batch sizes differ: x has {x.shape[0]} rows, y has {y.shape[0]}")
        self.grid.update({"x": x}, {"y": y})
        return self

    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """Add the batches seen by ``other``."""
        self.grid.merge(other.grid)
        return self

    def compute(self) -> Tensor:
        """The minibatch CKA (float64 scalar)."""
        if self.batches == 0:
            raise ValueError("MinibatchCKA.compute() called before any update()")
        return self.grid.compute().values[0, 0]
