"""`Standardize`: per-column feature standardisation with statistics stored as buffers."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Standardize(nn.Module):
    """``(x - mean) / std`` per column; identity until statistics are set.

    The statistics are buffers, so they travel with ``state_dict`` and ``.to(device)``.

    Args:
        num_features: F, the number of columns.
        eps: lower bound on ``std`` (constant columns stay finite).
    """

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))

    @torch.no_grad()
    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Set the [F] column mean and standard deviation (e.g. from the training set)."""
        for name, value in (("mean", mean), ("std", std)):
            if value.shape != self.mean.shape:
                raise ValueError(
                    f"{name} must have shape {tuple(self.mean.shape)}, got {tuple(value.shape)}"
                )
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(self.eps))

    def fit(self, features: Tensor) -> None:
        """Set the statistics from [n, F] training features."""
        features = features.double()
        self.set_statistics(features.mean(0), features.std(0, unbiased=False))

    def forward(self, x: Tensor) -> Tensor:
        """[n, F] -> [n, F]."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"num_features={self.mean.shape[0]}"
