"""CNN image classifier: the convolutional pixel baseline of the representation study."""

from __future__ import annotations

from torch import Tensor, nn


class CNN(nn.Module):
    """``Conv3x3 → BatchNorm → ReLU → MaxPool2`` blocks, global average pooling, linear head.

    Pooling is skipped once the feature map is 1×1 wide, so any image size ≥ 1 works
    (8×8 digits as well as 32×32 CIFAR-10).

    Args:
        in_shape: (C, H, W) of the images.
        num_classes: number of classes.
        channels: output channels of the conv blocks.
        dropout: dropout before the head.

    Shapes: ``forward`` maps [B, C, H, W] to [B, num_classes] logits. The conv blocks are
    ``blocks.0``, ``blocks.1``, … (outputs [B, c, h, w]), the pooled features ``pool``
    ([B, channels[-1]]) and the head ``head`` (names for probes).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        channels: tuple[int, ...] = (32, 64, 128),
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}")
        if not channels:
            raise ValueError("channels must name at least one conv block")
        blocks, size = [], min(in_shape[1:])
        for c_in, c_out in zip([in_shape[0], *channels[:-1]], channels):
            layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, images: Tensor) -> Tensor:
        h = images
        for block in self.blocks:
            h = block(h)
        return self.head(self.pool(h))
