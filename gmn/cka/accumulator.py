"""Exact full-data linear CKA accumulated from minibatches in O(d²) memory."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .hsic import cka_from_hsic, linear_hsic
from .inputs import as_samples, check_sample_count, finite_column_sums
from .moments import PAIRS, batch_sums, translate


class CKAAccumulator:
    """Streams paired minibatches ``(x [b, ...], y [b, ...])`` into exact linear CKA.

    Every term of the biased and debiased linear HSIC is a sum over samples, so the
    accumulator keeps those sums (``moments.py``): ``O(dx² + dy² + dx·dy)`` float64
    numbers, whatever the number of samples. They are measured from the first batch's
    mean so that features with large means do not cancel; :meth:`compute` moves them to
    the exact full-data mean. The result equals :func:`gmn.cka.linear_cka` on the
    concatenated data (to rounding) for any batch split.

    Accumulators merge (:meth:`merge`) and all-reduce across ``torch.distributed``
    ranks (:meth:`all_reduce`). Feed tensors that do not require grad.
    """

    def __init__(self):
        self.n = 0
        self.origin: dict[str, Tensor] | None = None
        self.sums: dict[str, Tensor] | None = None
        # per-feature minimum and maximum seen, to recognise a side without variance
        self.low: dict[str, Tensor] = {}
        self.high: dict[str, Tensor] = {}

    def update(self, x: Tensor, y: Tensor) -> CKAAccumulator:
        """Add a batch: ``x`` ``[b, ...]`` and ``y`` ``[b, ...]`` with the same ``b``."""
        sides = {"x": as_samples(x, "x"), "y": as_samples(y, "y")}
        if sides["x"].shape[0] != sides["y"].shape[0]:
            raise ValueError(
                f"batch sizes differ: x has {sides['x'].shape[0]} rows, y has {sides['y'].shape[0]}"
            )
        sums = {u: finite_column_sums(f, u) for u, f in sides.items()}
        if self.origin is None:
            self.origin = {u: sums[u] / f.shape[0] for u, f in sides.items()}
        for u, features in sides.items():
            if features.shape[1] != self.origin[u].shape[0]:
                raise ValueError(
                    f"{u} has {features.shape[1]} features per sample in this batch but "
                    f"{self.origin[u].shape[0]} in earlier ones"
                )
        shifted = {u: f - self.origin[u].to(f.dtype) for u, f in sides.items()}
        ranges = {u: torch.aminmax(f, dim=0) for u, f in sides.items()}
        low = {u: r.min.to(torch.float64) for u, r in ranges.items()}
        high = {u: r.max.to(torch.float64) for u, r in ranges.items()}
        self._add(batch_sums(shifted), sides["x"].shape[0], low, high)
        return self

    def _add(self, sums, n, low, high) -> None:
        self.sums = sums if self.sums is None else {k: v + sums[k] for k, v in self.sums.items()}
        self.n += n
        for u in ("x", "y"):
            self.low[u] = torch.minimum(self.low[u], low[u]) if u in self.low else low[u]
            self.high[u] = torch.maximum(self.high[u], high[u]) if u in self.high else high[u]

    def merge(self, other: CKAAccumulator) -> CKAAccumulator:
        """Add the samples seen by ``other`` (moved to this accumulator's origin)."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.origin = dict(other.origin)
            self._add(dict(other.sums), other.n, other.low, other.high)
            return self
        for u in ("x", "y"):
            if other.origin[u].shape != self.origin[u].shape:
                raise ValueError(
                    f"cannot merge: {u} has {other.origin[u].shape[0]} features in the other "
                    f"accumulator and {self.origin[u].shape[0]} in this one"
                )
        delta = {u: self.origin[u] - other.origin[u] for u in ("x", "y")}
        self._add(translate(other.sums, other.n, delta), other.n, other.low, other.high)
        return self

    def all_reduce(self, group=None) -> CKAAccumulator:
        """Sum the state over all ranks of ``group`` in place; every rank ends equal.

        The ranks first agree on the global mean as a common origin. A rank that saw
        no batch takes part with zero sums.
        """
        import torch.distributed as dist

        device = self.origin["x"].device if self.origin else torch.device("cpu")
        dims = torch.tensor(
            [self.origin[u].shape[0] if self.origin else 0 for u in ("x", "y")], device=device
        )
        dist.all_reduce(dims, op=dist.ReduceOp.MAX, group=group)
        if self.origin is None:
            self.origin = {
                u: torch.zeros(int(d), dtype=torch.float64, device=device)
                for u, d in zip(("x", "y"), dims)
            }
            empty = {
                u: torch.zeros(0, int(d), dtype=torch.float64, device=device)
                for u, d in zip(("x", "y"), dims)
            }
            self.sums = batch_sums(empty)
            self.low = {u: torch.full_like(o, float("inf")) for u, o in self.origin.items()}
            self.high = {u: torch.full_like(o, -float("inf")) for u, o in self.origin.items()}
        totals = [self.sums[f"s_{u}"] + self.n * self.origin[u] for u in ("x", "y")]
        count = torch.tensor([float(self.n)], dtype=torch.float64, device=device)
        for tensor in (count, *totals):
            dist.all_reduce(tensor, group=group)
        if count.item() == 0:
            raise ValueError("all_reduce: no rank has seen any sample")
        mean = {u: total / count for u, total in zip(("x", "y"), totals)}
        sums = translate(self.sums, self.n, {u: mean[u] - self.origin[u] for u in ("x", "y")})
        for tensor in sums.values():
            dist.all_reduce(tensor, group=group)
        for u in ("x", "y"):
            dist.all_reduce(self.low[u], op=dist.ReduceOp.MIN, group=group)
            dist.all_reduce(self.high[u], op=dist.ReduceOp.MAX, group=group)
        self.origin, self.sums, self.n = mean, sums, int(count.item())
        return self

    def compute(self, debiased: bool = False) -> Tensor:
        """Linear CKA of all samples seen (float64 scalar); NaN with a warning without variance."""
        check_sample_count(self.n, debiased)
        for u in ("x", "y"):
            if torch.equal(self.low[u], self.high[u]):
                warnings.warn(
                    f"{u} has zero variance (all {self.n} samples identical); "
                    "its CKA is undefined and returned as NaN",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return torch.tensor(float("nan"), dtype=torch.float64, device=self.low[u].device)
        mean = {u: self.sums[f"s_{u}"] / self.n for u in ("x", "y")}
        centred = translate(self.sums, self.n, mean)
        hsic = {
            pair: linear_hsic(
                self.n,
                centred[f"S_{pair}"].square().sum(),
                centred[f"aa_{pair}"],
                centred[f"a_{u}"],
                centred[f"a_{v}"],
                debiased,
            )
            for pair, (u, v) in PAIRS.items()
        }
        return cka_from_hsic(hsic["xy"], hsic["xx"], hsic["yy"])
