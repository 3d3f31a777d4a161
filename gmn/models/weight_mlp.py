"""The non-equivariant metanetwork: an MLP on a network's flattened, standardised weights.

It sees the same parameters as a GMN but ignores the permutation symmetry of hidden
neurons, so comparing the two separates the effect of the symmetry from that of
learning on parameters at all.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WeightMLP(nn.Module):
    """Standardise each parameter, then ``Linear → ReLU`` blocks and a linear head.

    Args:
        num_params: P, the length of the flattened parameter vector.
        num_classes: number of classes.
        hidden: widths of the hidden layers.
        dropout: dropout after every hidden activation.
        mean, std: [P] per-parameter statistics of the training set (buffers, saved with
            the model); default 0 and 1 (no standardisation).

    Shapes: ``forward`` maps [B, P] parameter vectors to [B, num_classes] logits. Hidden
    blocks are ``blocks.0``, … and the head is ``head`` (names for probes).
    """

    def __init__(
        self,
        num_params: int,
        num_classes: int,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0,
        mean: Tensor | None = None,
        std: Tensor | None = None,
    ):
        super().__init__()
        mean = torch.zeros(num_params) if mean is None else mean.detach().float().clone()
        std = torch.ones(num_params) if std is None else std.detach().float().clone()
        for name, stat in (("mean", mean), ("std", std)):
            if stat.shape != (num_params,):
                raise ValueError(f"{name} must have shape ({num_params},), got {tuple(stat.shape)}")
        if not torch.all(std > 0):
            raise ValueError("std must be positive everywhere (add an epsilon to constant weights)")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        widths = [num_params, *hidden]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, params: Tensor) -> Tensor:
        if params.dim() != 2 or params.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"expected parameters of shape [B, {self.mean.shape[0]}], got {tuple(params.shape)}"
            )
        h = (params - self.mean) / self.std
        for block in self.blocks:
            h = block(h)
        return self.head(h)
