"""Small, seeded networks used across the test suite and the benchmarks.

Every builder takes ``seed`` (the same seed gives the same parameters on CPU) and
``dtype``. Batch-norm running statistics are randomised too, so that round trips
and permutation tests see non-trivial values in every entry of the state_dict.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmn.models.siren import Siren

__all__ = [
    "FEED_FORWARD_BUILDERS",
    "BasicBlock",
    "ResidualMLP",
    "SmallCNN",
    "SmallResNet",
    "TransformerBlock",
    "example_input",
    "make_cnn",
    "make_mlp",
    "make_residual_mlp",
    "make_resnet",
    "make_siren",
    "make_transformer",
    "randomise_norm_stats",
]


def randomise_norm_stats(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm random running statistics and affine parameters (those it has)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                if module.running_mean is not None:
                    module.running_mean.copy_(torch.randn(n, generator=generator))
                    module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                if module.weight is not None:
                    module.weight.copy_(torch.randn(n, generator=generator))
                    module.bias.copy_(torch.randn(n, generator=generator))
                if module.num_batches_tracked is not None:
                    steps = int(torch.randint(1, 100, (1,), generator=generator))
                    module.num_batches_tracked.fill_(steps)


def _finish(model: nn.Module, seed: int, dtype: torch.dtype) -> nn.Module:
    randomise_norm_stats(model, torch.Generator().manual_seed(seed + 1))
    return model.to(dtype).eval()


def make_mlp(seed: int = 0, dtype: torch.dtype = torch.float32,
             widths: tuple[int, ...] = (4, 8, 8, 3)) -> nn.Module:
    """``nn.Sequential`` MLP ``widths[0] → … → widths[-1]`` with ReLU between layers.

    Shapes: [B, widths[0]] → [B, widths[-1]].
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return _finish(nn.Sequential(*layers), seed, dtype)


def make_siren(seed: int = 0, dtype: torch.dtype = torch.float32,
               hidden: tuple[int, ...] = (32, 32), style: str = "dwsnets") -> nn.Module:
    """A :class:`gmn.models.siren.Siren` 2 → hidden… → 1. Shapes: [B, 2] → [B, 1]."""
    torch.manual_seed(seed)
    return _finish(Siren(2, hidden, 1, style=style), seed, dtype)


class SmallCNN(nn.Module):
    """Two 3×3 convolutions with batch norm, global average pooling, two linear layers.

    Shapes: [B, in_channels, H, W] → [B, classes].
    """

    def __init__(self, in_channels: int = 1, width: int = 8, hidden: int = 16, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = x.mean(dim=(2, 3))
        return self.fc2(torch.relu(self.fc1(x)))


def make_cnn(seed: int = 0, dtype: torch.dtype = torch.float32, width: int = 8,
             in_channels: int = 1, classes: int = 10) -> nn.Module:
    """A :class:`SmallCNN` (2 conv + BN, global pooling, 2 linear)."""
    torch.manual_seed(seed)
    return _finish(SmallCNN(in_channels, width, 2 * width, classes), seed, dtype)


class BasicBlock(nn.Module):
    """``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``; a 1×1 conv + BN projection
    shortcut when the width or stride changes, the identity otherwise."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(self.shortcut(x) + out)


class SmallResNet(nn.Module):
    """Stem conv + BN, an identity block, a projection block (stride 2, width × 2),
    global average pooling and a linear head. Shapes: [B, in_channels, H, W] → [B, classes]."""

    def __init__(self, in_channels: int = 1, width: int = 8, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.block1 = BasicBlock(width, width)
        self.block2 = BasicBlock(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block2(self.block1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class ResidualMLP(nn.Module):
    """``x + block(x)`` written in ``forward`` (not ``nn.Sequential``), with LayerNorm.

    Shapes: [B, in_features] → [B, out_features].
    """

    def __init__(self, in_features: int = 4, width: int = 8, out_features: int = 3):
        super().__init__()
        self.inp = nn.Linear(in_features, width)
        self.block = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
        self.out = nn.Linear(width, out_features)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.inp(x))
        h = h + self.block(h)
        return self.out(h)


def make_resnet(seed: int = 0, dtype: torch.dtype = torch.float32, width: int = 8,
                in_channels: int = 1, classes: int = 10) -> nn.Module:
    """A :class:`SmallResNet` (identity and 1×1-projection residual blocks with BN)."""
    torch.manual_seed(seed)
    return _finish(SmallResNet(in_channels, width, classes), seed, dtype)


def make_residual_mlp(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A :class:`ResidualMLP` with LayerNorm inside the residual branch."""
    torch.manual_seed(seed)
    return _finish(ResidualMLP(), seed, dtype)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block on a sequence: ``x + attn(ln(x))``, ``x + mlp(ln(x))``.

    Shapes: [B, L, in_features] → [B, L, out_features].
    """

    def __init__(self, in_features: int = 3, embed: int = 8, heads: int = 2,
                 out_features: int = 2):
        super().__init__()
        self.inp = nn.Linear(in_features, embed)
        self.ln1 = nn.LayerNorm(embed)
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(embed)
        self.mlp = nn.Sequential(nn.Linear(embed, 2 * embed), nn.GELU(),
                                 nn.Linear(2 * embed, embed))
        self.out = nn.Linear(embed, out_features)

    def forward(self, x: Tensor) -> Tensor:
        x = self.inp(x)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return self.out(x)


def make_transformer(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A :class:`TransformerBlock` with ``nn.MultiheadAttention``; LayerNorms randomised."""
    torch.manual_seed(seed)
    model = TransformerBlock()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for norm in (model.ln1, model.ln2):
            norm.weight.copy_(torch.randn(norm.weight.shape, generator=generator))
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator))
    return model.to(dtype).eval()


def example_input(model: nn.Module, batch: int = 3, seed: int = 0, size: int = 8) -> Tensor:
    """A seeded input batch that fits ``model``: [batch, in_features] or [batch, C, size, size]."""
    generator = torch.Generator().manual_seed(seed)
    first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv1d)))
    dtype = first.weight.dtype
    if isinstance(model, TransformerBlock):
        shape: tuple[int, ...] = (batch, 5, first.in_features)
    elif isinstance(first, nn.Linear):
        shape = (batch, first.in_features)
    elif isinstance(first, nn.Conv1d):
        shape = (batch, first.in_channels, size)
    else:
        shape = (batch, first.in_channels, size, size)
    return torch.randn(shape, generator=generator).to(dtype)


FEED_FORWARD_BUILDERS = [make_mlp, make_siren, make_cnn, make_resnet, make_residual_mlp]
"""Every builder of a network without attention, for tests that run on all of them."""
