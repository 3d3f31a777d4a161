"""Exact full-data linear CKA of one pair, accumulated from minibatches in O(d²) memory."""

from __future__ import annotations

import warnings

from torch import Tensor

from .grid import CKAGrid


class CKAAccumulator:
    """Streams paired minibatches ``(x [b, ...], y [b, ...])`` into exact linear CKA.

    A one-cell :class:`gmn.cka.grid.CKAGrid`: every term of the biased and debiased linear
    HSIC is a sum over samples, so it keeps those sums, ``O(dx² + dy² + dx·dy)`` float64
    numbers whatever the number of samples, measured from the first batch's mean so that
    features with large means do not cancel. The result equals
    :func:`gmn.cka.linear_cka` on the concatenated data (to rounding) for any batch split.

    Accumulators merge (:meth:`merge`) and all-reduce across ``torch.distributed``
    ranks (:meth:`all_reduce`). Feed tensors that do not require grad.
    """

    def __init__(self):
        self.grid = CKAGrid()

    @property
    def n(self) -> int:
        return self.grid.n

    @property
    def low(self) -> dict[str, Tensor]:
        """Per-feature minimum seen: ``{"x": [dx], "y": [dy]}`` (float64)."""
        return {"x": self.grid.low["rows"]["x"], "y": self.grid.low["cols"]["y"]}

    @property
    def high(self) -> dict[str, Tensor]:
        return {"x": self.grid.high["rows"]["x"], "y": self.grid.high["cols"]["y"]}

    @property
    def sums(self) -> dict[str, Tensor]:
        """Every accumulated sum, flat (the state whose size does not depend on n)."""
        layers, cells = self.grid.layers, self.grid.cells
        flat = {f"x.{k}": v for k, v in layers["rows"]["x"].items()}
        flat.update({f"y.{k}": v for k, v in layers["cols"]["y"].items()})
        flat.update({f"xy.{k}": v for k, v in cells["x", "y"].items()})
        return flat

    def update(self, x: Tensor, y: Tensor) -> CKAAccumulator:
        """Add a batch: ``x`` ``[b, ...]`` and ``y`` ``[b, ...]`` with the same ``b``."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"batch sizes differ: x has {x.shape[0]} rows, y has {y.shape[0]}")
        try:
            self.grid.update({"x": x}, {"y": y})
        except ValueError as error:
            raise ValueError(
                str(error).replace("rows['x']", "x").replace("cols['y']", "y")
            ) from None
        return self

    def merge(self, other: CKAAccumulator) -> CKAAccumulator:
        """Add the samples seen by ``other`` (moved to this accumulator's origin)."""
        try:
            self.grid.merge(other.grid)
        except ValueError as error:
            raise ValueError(
                str(error).replace("rows['x']", "x").replace("cols['y']", "y")
            ) from None
        return self

    def all_reduce(self, group=None) -> CKAAccumulator:
        """Sum the state over all ranks of ``group`` in place; every rank ends equal.

        The ranks first agree on the global mean as a common origin. A rank that saw
        no batch takes part with zero sums.
        """
        self.grid.all_reduce(group)
        return self

    def compute(self, debiased: bool = False) -> Tensor:
        """Linear CKA of all samples seen (float64 scalar); NaN with a warning without variance."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = self.grid.compute(debiased).values[0, 0]
        for warning in caught:
            message = str(warning.message).replace("rows['x']", "x").replace("cols['y']", "y")
            warnings.warn(message, warning.category, stacklevel=2)
        return value
