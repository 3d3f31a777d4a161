"""`ScalarFourierFeatures`: a nonlinear, multi-scale encoding of raw scalar features.

A linear map of one scalar is rank one: the first layers of a GMN cannot then form
nonlinear functions of a weight's value. INRs fitted from a shared initialisation differ
from it by a small fraction of a layer's spread (``docs/accuracy.md``), so telling them apart
and reading their small deviations needs a high-resolution encoding of each scalar.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ScalarFourierFeatures(nn.Module):
    """Each of F columns -> ``[x, sin(ω_k x + φ_k), cos(ω_k x + φ_k)]`` for K frequencies.

    The frequencies are log-spaced from ``min_frequency`` to ``max_frequency`` (the same for
    every column, so the encoding is deterministic and acts on each scalar alone: any
    permutation of rows commutes with it). Frequencies are buffers, not parameters.

    Args:
        num_features: F, the columns of the input.
        num_frequencies: K (0: the identity).
        min_frequency, max_frequency: range of ω (radians per unit of the input).

    Shapes: ``forward(x [n, F]) -> [n, F * (1 + 2K)]``.
    """

    def __init__(self, num_features: int, num_frequencies: int, min_frequency: float = 1.0,
                 max_frequency: float = 100.0):
        super().__init__()
        if num_frequencies < 0 or not 0 < min_frequency <= max_frequency:
            raise ValueError(
                f"ScalarFourierFeatures needs num_frequencies >= 0 and 0 < min_frequency <= "
                f"max_frequency, got {num_frequencies}, {min_frequency}, {max_frequency}"
            )
        self.num_features = num_features
        if num_frequencies:
            exponents = torch.linspace(0.0, 1.0, num_frequencies, dtype=torch.float64)
            frequencies = min_frequency * (max_frequency / min_frequency) ** exponents
        else:
            frequencies = torch.zeros(0, dtype=torch.float64)
        self.register_buffer("frequencies", frequencies.float())
        self.out_dim = num_features * (1 + 2 * num_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        if not len(self.frequencies):
            return x
        angles = x.unsqueeze(-1) * self.frequencies.to(x.dtype)  # [n, F, K]
        return torch.cat([x, angles.sin().flatten(1), angles.cos().flatten(1)], dim=-1)

    def extra_repr(self) -> str:
        k = len(self.frequencies)
        if not k:
            return f"num_features={self.num_features}, num_frequencies=0"
        low, high = float(self.frequencies[0]), float(self.frequencies[-1])
        return (f"num_features={self.num_features}, num_frequencies={k}, "
                f"frequencies={low:g}..{high:g} ({math.log10(high / low):.1f} decades)")
