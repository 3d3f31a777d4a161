"""Baselines of editing tasks: a model that outputs its input changed (an image, or a flat
parameter vector), the change predicted by a plain network.

* :class:`ImageEditCNN` and :class:`ImageEditMLP` edit images in pixel space;
* :class:`WeightMLPEditor` edits a network's flattened parameters (not equivariant: it reads
  coordinates, as :class:`gmn.models.weight_mlp.WeightMLP` does).

Each starts near "no change" (a residual output), and names its parts ``blocks.i`` and
``head`` (for probes).
"""

from __future__ import annotations

from torch import Tensor, nn

from gmn.models.mlp import MLP
from gmn.models.weight_mlp import WeightMLP


class ImageEditCNN(nn.Module):
    """``images + head(blocks(images))``: ``Conv3x3 → ReLU`` blocks at full resolution and a
    3×3 convolution back to the image's channels.

    Args:
        channels: image channels C.
        hidden: output channels of the blocks.

    Shapes: [B, C, H, W] -> [B, C, H, W].
    """

    def __init__(self, channels: int = 1, hidden: tuple[int, ...] = (32, 32, 32)):
        super().__init__()
        widths = [channels, *hidden]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU())
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, images: Tensor) -> Tensor:
        h = images
        for block in self.blocks:
            h = block(h)
        return images + self.head(h)


class ImageEditMLP(nn.Module):
    """``images + MLP(images)``, the MLP (:class:`gmn.models.mlp.MLP`) reading the flattened
    image and giving one output per pixel and channel.

    Shapes: [B, C, H, W] -> [B, C, H, W]; probes: ``mlp.blocks.i``, ``mlp.head``.
    """

    def __init__(self, in_shape: tuple[int, int, int], hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        c, h, w = in_shape
        self.mlp = MLP(in_shape, c * h * w, hidden)

    def forward(self, images: Tensor) -> Tensor:
        return images + self.mlp(images).view_as(images)


class WeightMLPEditor(nn.Module):
    """``params + std ⊙ WeightMLP(params)``: a change of every parameter, in units of its
    training standard deviation ``std``, from the standardised flat vector; the head starts at
    zero (an untrained editor changes nothing).

    Args:
        num_params: P.
        hidden, dropout: the MLP's hidden widths and dropout.
        mean, std: [P] training statistics of each parameter.

    Shapes: [B, P] -> [B, P]; probes: ``mlp.blocks.i``, ``mlp.head``.
    """

    def __init__(self, num_params: int, hidden: tuple[int, ...] = (256, 256),
                 dropout: float = 0.0, mean: Tensor | None = None, std: Tensor | None = None):
        super().__init__()
        self.mlp = WeightMLP(num_params, num_params, hidden, dropout, mean, std)
        nn.init.zeros_(self.mlp.head.weight)
        nn.init.zeros_(self.mlp.head.bias)

    def forward(self, params: Tensor) -> Tensor:
        return params + self.mlp(params) * self.mlp.std
