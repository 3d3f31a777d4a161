"""`ZooCNN`: the small CNN family of the generalisation zoos (Unterthiner et al. 2020 style).

``len(channels)`` convolutions (same padding; the first with stride ``stride``, the others 1,
or one stride per convolution),
each followed by an optional BatchNorm and an activation, with an optional residual connection
around every stride-1 convolution after the first whose input and output widths agree;
global average pooling; one linear layer to the classes.
Shapes: [B, in_channels, H, W] → [B, classes].
"""

from __future__ import annotations

from torch import Tensor, nn

ZOO_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


def layer_strides(stride: int | list[int], depth: int) -> list[int]:
    """Each convolution's stride: ``stride`` for the first and 1 after, or one per layer."""
    if isinstance(stride, int):
        return [stride] + [1] * (depth - 1)
    if len(stride) != depth:
        raise ValueError(f"{len(stride)} strides for {depth} convolutions")
    return list(stride)


def residual_layers(widths: list[int], strides: list[int], residual: bool) -> list[bool]:
    """Which convolutions get a residual connection: stride 1, equal in/out widths, not the
    first (its input is the image)."""
    return [residual and i > 0 and s == 1 and a == b
            for i, (a, b, s) in enumerate(zip(widths[:-1], widths[1:], strides))]


class ZooCNN(nn.Module):
    """See the module docstring. ``channels`` lists each convolution's output width."""

    def __init__(self, channels: list[int], kernel: int = 3, activation: str = "relu",
                 batchnorm: bool = False, residual: bool = False, stride: int | list[int] = 1,
                 in_channels: int = 1, classes: int = 10):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd (same padding), got {kernel}")
        if activation not in ZOO_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ZOO_ACTIVATIONS)}, "
                             f"got {activation!r}")
        widths = [in_channels, *channels]
        strides = layer_strides(stride, len(channels))
        self.residual = residual_layers(widths, strides, residual)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, kernel, stride=s, padding=kernel // 2)
                                   for a, b, s in zip(widths[:-1], widths[1:], strides))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) if batchnorm else nn.Identity()
                                   for c in channels)
        self.act = ZOO_ACTIVATIONS[activation]()
        self.head = nn.Linear(channels[-1], classes)

    def forward(self, x: Tensor) -> Tensor:
        for conv, norm, residual in zip(self.convs, self.norms, self.residual):
            out = self.act(norm(conv(x)))
            x = x + out if residual else out
        return self.head(x.mean(dim=(2, 3)))
