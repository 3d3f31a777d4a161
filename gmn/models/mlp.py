"""MLP image classifier: the pixel baseline of the representation study."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """Flatten the image, then ``Linear → ReLU`` blocks and a linear head.

    Args:
        in_shape: (C, H, W) of the images.
        num_classes: number of classes.
        hidden: widths of the hidden layers.
        dropout: dropout after every hidden activation.

    Shapes: ``forward`` maps [B, C, H, W] images to [B, num_classes] logits. The hidden
    blocks are ``blocks.0``, ``blocks.1``, … and the head is ``head`` (names for probes).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}")
        widths = [in_shape[0] * in_shape[1] * in_shape[2], *hidden]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, images: Tensor) -> Tensor:
        h = images.flatten(1)
        for block in self.blocks:
            h = block(h)
        return self.head(h)
