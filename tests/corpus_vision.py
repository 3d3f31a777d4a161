"""Corpus networks of image models, written here from the patterns of public code.

torchvision's ResNet (basic, bottleneck, ResNet-D shortcut, pre-activation, wide), VGG,
AlexNet, SqueezeNet's fire modules, GoogLeNet's inception branches, DenseNet, MobileNetV2/V3,
EfficientNet's MBConv, ResNeXt, RegNet's SE blocks, ShuffleNet's channel shuffle; timm's
Conv2dSame, BiT's StdConv2d, LayerScale, DropPath, squeeze-excitation, ConvMixer, PoolFormer,
ViTs with class tokens and position embeddings, hand-written attention; DCGAN and equalised
learning-rate (ProGAN/StyleGAN) generators and discriminators, spectral norm, PixelNorm,
PixelShuffle upsampling, U-Net skip concatenations. Each is small and seeded by the corpus.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --- ResNets ---------------------------------------------------------------------------------
class PreActBlock(nn.Module):
    """Pre-activation ResNet (He et al. 2016): BN-ReLU-conv twice, shortcut conv when the width
    changes, applied to the activated input."""

    def __init__(self, inp: int, out: int, stride: int = 1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(inp), nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(out), nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or inp != out:
            self.shortcut = nn.Conv2d(inp, out, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.layer1 = PreActBlock(width, width)
        self.layer2 = PreActBlock(width, 2 * width, 2)
        self.bn = nn.BatchNorm2d(2 * width)
        self.linear = nn.Linear(2 * width, 10)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer2(self.layer1(self.conv1(x)))
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1)
        return self.linear(out.view(out.size(0), -1))


class ResNetDBlock(nn.Module):
    """ResNet-D (Bag of Tricks): the downsampling shortcut average-pools, then a 1x1 conv."""

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
                                        nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class WideBlock(nn.Module):
    """Wide ResNet: BN-ReLU-conv, dropout between the convolutions."""

    def __init__(self, inp: int, out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(inp), nn.BatchNorm2d(out)
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1)
        self.dropout = nn.Dropout(0.3)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.Conv2d(inp, out, 1, stride))

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


def wide_resnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), WideBlock(8, 16, 1), WideBlock(16, 16, 2),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


class ResNeXtBlock(nn.Module):
    """ResNeXt bottleneck: a grouped 3x3 convolution (cardinality 4)."""

    def __init__(self, channels: int = 16, groups: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + x)


def resnext() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), ResNeXtBlock(), ResNeXtBlock(),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(1), nn.Linear(16, 5))


class SkipInit(nn.Module):
    """A residual branch scaled by a learned scalar (SkipInit / ReZero: x + α f(x))."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.alpha = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.alpha * F.relu(self.conv(x))


def rezero_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SkipInit(), SkipInit(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


# --- classic CNNs ----------------------------------------------------------------------------
def vgg(batch_norm: bool) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for width in (8, "M", 16, 16, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
            self.classifier = nn.Sequential(nn.Linear(16 * 4, 32), nn.ReLU(True), nn.Dropout(),
                                            nn.Linear(32, 10))

        def forward(self, x: Tensor) -> Tensor:
            x = torch.flatten(self.avgpool(self.features(x)), 1)
            return self.classifier(x)

    return VGG()


class AlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, 2, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(16 * 9, 32),
                                        nn.ReLU(inplace=True), nn.Linear(32, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Fire(nn.Module):
    """SqueezeNet: a squeeze 1x1 conv, then 1x1 and 3x3 expansions concatenated."""

    def __init__(self, inp: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inp, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


def squeezenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2, ceil_mode=True), Fire(8, 4, 8), Fire(16, 4, 8),
                         nn.Dropout(0.5), nn.Conv2d(16, 10, 1), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


class Inception(nn.Module):
    """GoogLeNet's inception module: four branches concatenated along the channels."""

    def __init__(self, inp: int = 8):
        super().__init__()
        self.branch1 = nn.Conv2d(inp, 4, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(inp, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(inp, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(inp, 3, 1))

    def forward(self, x: Tensor) -> Tensor:
        outs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outs, 1)


def googlenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Inception(), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))


class DenseLayer(nn.Module):
    """DenseNet: BN-ReLU-1x1-BN-ReLU-3x3, its output concatenated to its input."""

    def __init__(self, inp: int, growth: int = 4):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(inp), nn.Conv2d(inp, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        new = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
        return torch.cat([x, new], 1)


def densenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), DenseLayer(8), DenseLayer(12),
                         nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.Conv2d(16, 8, 1),
                         nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


class UNetTiny(nn.Module):
    """U-Net: a downsampling path, an upsampling path, skip connections concatenated."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.down2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.conv = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.down1(x)
        b = self.down2(a)
        return self.out(self.conv(torch.cat([a, self.up(b)], dim=1)))


class UpsampleDecoder(nn.Module):
    """A decoder with nearest upsampling then convolution (instead of a transposed conv)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8 * 4 * 4)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, 8, 4, 4)
        return torch.sigmoid(self.conv(self.up(h)))


# --- MobileNet / EfficientNet / RegNet -------------------------------------------------------
class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1 (no activation);
    the residual when the stride is 1 and the width is kept."""

    def __init__(self, inp: int, out: int, stride: int, expand: int = 4):
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU6(inplace=True), InvertedResidual(8, 8, 1),
                         InvertedResidual(8, 12, 2), InvertedResidual(12, 12, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(12, 10))


class SqueezeExcitation(nn.Module):
    """torchvision's SE: global average pool, 1x1 conv down, activation, 1x1 conv up, a gate
    (sigmoid or hardsigmoid) multiplying the input."""

    def __init__(self, channels: int, squeeze: int, gate: nn.Module | None = None,
                 act: nn.Module | None = None):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.activation = act if act is not None else nn.ReLU()
        self.scale_activation = gate if gate is not None else nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConv(nn.Module):
    """EfficientNet's MBConv: expand, depthwise, SE (SiLU inside), project, stochastic depth
    (identity in eval), residual."""

    def __init__(self, channels: int = 8, expand: int = 4):
        super().__init__()
        hidden = channels * expand
        self.block = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.SiLU(), SqueezeExcitation(hidden, channels // 2, act=nn.SiLU()),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.stochastic_depth = nn.Dropout(0.1)  # stands for StochasticDepth: identity in eval

    def forward(self, x: Tensor) -> Tensor:
        return x + self.stochastic_depth(self.block(x))


def efficientnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU(),
                         MBConv(), MBConv(), nn.Conv2d(8, 16, 1), nn.SiLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


class MobileNetV3Block(nn.Module):
    """MobileNetV3: hardswish, SE with a hardsigmoid gate, residual."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(channels, 16, 1, bias=False), nn.BatchNorm2d(16),
                                    nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 5, 1, 2, groups=16, bias=False),
                                nn.BatchNorm2d(16), nn.Hardswish())
        self.se = SqueezeExcitation(16, 4, gate=nn.Hardsigmoid())
        self.project = nn.Sequential(nn.Conv2d(16, channels, 1, bias=False),
                                     nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.se(self.dw(self.expand(x))))


def mobilenet_v3() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Hardswish(), MobileNetV3Block(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 16), nn.Hardswish(),
                         nn.Dropout(0.2), nn.Linear(16, 10))


class SEFunctional(nn.Module):
    """SE written with functional calls and a view, as in many RegNet/ResNet repositories:
    ``y = x.mean((2, 3)); y = sigmoid(fc2(relu(fc1(y)))); x * y.view(b, c, 1, 1)``."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(channels, 4), nn.Linear(4, channels)
        self.head = nn.Linear(channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv(x))
        b, c = x.size(0), x.size(1)
        y = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        x = x * y.view(b, c, 1, 1)
        return self.head(x.mean((2, 3)))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: a view into groups, a transpose, a view back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        b, c, h, w = x.size(0), x.size(1), x.size(2), x.size(3)
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous()
        return x.view(b, c, h, w)


# --- timm -------------------------------------------------------------------------------------
class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame pattern (R3): TF "SAME" padding by hand, then a convolution."""

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, [0, 1, 0, 1]), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


class StdConv2d(nn.Conv2d):
    """BiT's weight standardisation (R4): the kernel standardised per output channel."""

    def forward(self, x: Tensor) -> Tensor:
        v, m = torch.var_mean(self.weight, dim=[1, 2, 3], keepdim=True, unbiased=False)
        w = (self.weight - m) / torch.sqrt(v + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class StdConv2dBatchNorm(nn.Conv2d):
    """timm's StdConv2d: the standardisation written with ``F.batch_norm``."""

    def forward(self, x: Tensor) -> Tensor:
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              training=True, momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


def bit_resnet(conv) -> nn.Module:
    """BiT: standardised convolutions followed by GroupNorm."""
    return nn.Sequential(conv(3, 8, 3, padding=1, bias=False), nn.GroupNorm(2, 8), nn.ReLU(),
                         conv(8, 8, 3, padding=1, bias=False), nn.GroupNorm(2, 8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def conv_same_net() -> nn.Module:
    return nn.Sequential(Conv2dSame(3, 8, 3, stride=2), nn.ReLU(), Conv2dSame(8, 8, 3, stride=2),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 3))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 1e-1):
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """timm's DropPath: identity outside training."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.drop_prob = p

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class TimmMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.drop1 = nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0)
        self.norm, self.fc2, self.drop2 = nn.Identity(), nn.Linear(hidden, dim), nn.Dropout(0.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class TimmAttentionByHand(nn.Module):
    """timm's Attention: one qkv Linear, reshape/permute into heads, q @ k^T, softmax, @ v."""

    def __init__(self, dim: int, heads: int = 2):
        super().__init__()
        self.num_heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, dim * 3), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.size(0), x.size(1), x.size(2)
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class TimmBlock(nn.Module):
    """A timm ViT block with LayerScale and DropPath, attention through nn.MultiheadAttention
    (``attention="by hand"``: timm's own qkv attention)."""

    def __init__(self, dim: int = 8, attention: str = "mha"):
        super().__init__()
        self.attention = attention
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True) if attention == "mha" else \
            TimmAttentionByHand(dim)
        self.ls1, self.ls2 = LayerScale(dim), LayerScale(dim)
        self.drop_path1, self.drop_path2 = DropPath(), DropPath()
        self.mlp = TimmMlp(dim, 2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        h = self.attn(h, h, h, need_weights=False)[0] if self.attention == "mha" else self.attn(h)
        x = x + self.drop_path1(self.ls1(h))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class TimmViT(nn.Module):
    """timm's VisionTransformer: PatchEmbed, class token and position embedding parameters,
    ``x[:, 0]`` pooling (``global_pool='token'``) or the token mean, a head."""

    def __init__(self, pool: str = "token", attention: str = "mha", dist_token: bool = False):
        super().__init__()
        self.pool = pool
        self.patch_embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8) * 0.02)
        self.dist_token = nn.Parameter(torch.randn(1, 1, 8) * 0.02) if dist_token else None
        tokens = 16 + 1 + int(dist_token)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, 8) * 0.02)
        self.pos_drop = nn.Dropout(0.1)
        self.blocks = nn.Sequential(TimmBlock(attention=attention), TimmBlock(attention=attention))
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.head = nn.Linear(8, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.dist_token is not None:
            tokens.append(self.dist_token.expand(x.shape[0], -1, -1))
        x = self.pos_drop(torch.cat((*tokens, x), dim=1) + self.pos_embed)
        x = self.norm(self.blocks(x))
        x = x[:, 0] if self.pool == "token" else x[:, 1:].mean(dim=1)
        return self.head(x)


class ConvMixer(nn.Module):
    """ConvMixer: a patch conv, then depthwise conv (residual) and pointwise conv blocks."""

    class Residual(nn.Module):
        def __init__(self, fn: nn.Module):
            super().__init__()
            self.fn = fn

        def forward(self, x: Tensor) -> Tensor:
            return self.fn(x) + x

    def __init__(self, dim: int = 8, depth: int = 2):
        super().__init__()
        blocks = []
        for _ in range(depth):
            blocks += [self.Residual(nn.Sequential(nn.Conv2d(dim, dim, 3, groups=dim, padding=1),
                                                   nn.GELU(), nn.BatchNorm2d(dim))),
                       nn.Conv2d(dim, dim, 1), nn.GELU(), nn.BatchNorm2d(dim)]
        self.net = nn.Sequential(nn.Conv2d(3, dim, 2, stride=2), nn.GELU(), nn.BatchNorm2d(dim),
                                 *blocks, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                 nn.Linear(dim, 4))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PoolFormerBlock(nn.Module):
    """PoolFormer: the token mixer is average pooling minus its input."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(1, dim), nn.GroupNorm(1, dim)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 2 * dim, 1), nn.GELU(), nn.Conv2d(2 * dim, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + (self.pool(h) - h)
        return x + self.mlp(self.norm2(x))


def poolformer() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 4, 4), PoolFormerBlock(), nn.GroupNorm(1, 8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


class ConvNeXtBlock(nn.Module):
    """The ConvNeXt block as its authors wrote it: depthwise 7x7, permute to channels-last,
    LayerNorm, MLP, layer scale, permute back, residual."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), \
            nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(0.5 * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + h.permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.Module):
    """ConvNeXt's LayerNorm for channels-first maps, written by hand (mean and variance over
    the channel dimension)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def convnext() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 4, 4), ConvNeXtBlock(), ConvNeXtBlock(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(8), nn.Linear(8, 3))


# --- GANs -------------------------------------------------------------------------------------
def dcgan_generator() -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
        nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
        nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False), nn.Tanh())


def dcgan_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(16, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten())


class EqualLinear(nn.Module):
    """StyleGAN2's EqualLinear: weights stored at N(0, 1), scaled by 1/sqrt(fan_in)·lr_mul
    in forward; the bias scaled by lr_mul."""

    def __init__(self, inp: int, out: int, lr_mul: float = 0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out, inp) / lr_mul)
        self.bias = nn.Parameter(torch.randn(out))
        self.scale, self.lr_mul = (1 / math.sqrt(inp)) * lr_mul, lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul),
                            0.2) * math.sqrt(2)


class EqualConv2d(nn.Module):
    """ProGAN/StyleGAN2's EqualConv2d: the kernel scaled by He's constant in forward."""

    def __init__(self, inp: int, out: int, kernel: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out, inp, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out))
        self.scale, self.padding = 1 / math.sqrt(inp * kernel * kernel), padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, padding=self.padding)


def stylegan_mapping() -> nn.Module:
    return nn.Sequential(EqualLinear(8, 8), EqualLinear(8, 8), EqualLinear(8, 8))


class ProGANDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.from_rgb = EqualConv2d(3, 8, 1)
        self.conv1, self.conv2 = EqualConv2d(8, 8, 3, 1), EqualConv2d(8, 16, 3, 1)
        self.fc = EqualLinearPlain(16, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.from_rgb(x), 0.2)
        x = F.avg_pool2d(F.leaky_relu(self.conv1(x), 0.2), 2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.fc(x.mean((2, 3)))


class EqualLinearPlain(nn.Module):
    def __init__(self, inp: int, out: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(out, inp)), nn.Parameter(torch.zeros(out))
        self.scale = 1 / math.sqrt(inp)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class ProGANGenerator(nn.Module):
    """ProGAN's generator: an equalised layer, then PixelNorm (refused: a mean over the
    channels)."""

    def __init__(self):
        super().__init__()
        self.fc = EqualLinearPlain(8, 8)
        self.norm = PixelNorm()
        self.out = EqualLinearPlain(8, 4)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.norm(F.leaky_relu(self.fc(z), 0.2)))


def spectral_norm_discriminator() -> nn.Module:
    return nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 8, 3, 2, 1)), nn.LeakyReLU(0.1),
                         nn.Flatten(), nn.Linear(8 * 16, 1))


def pixel_shuffle_generator() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(3))


class Preprocessed(nn.Module):
    """Inputs normalised inside the model ((x - 0.5) / 0.5), sum pooling."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 6, 3), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - 0.5) / 0.5
        return self.fc(F.relu(self.conv(x)).sum((2, 3)))


class ResizeToInput(nn.Module):
    """A decoder branch resized to the input's size (refused: a size read from a tensor)."""

    def __init__(self):
        super().__init__()
        self.down, self.skip = nn.Conv2d(3, 4, 3, 2), nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.down(x), size=x.shape[2:]) + self.skip(x)


class TutorialLeNet(nn.Module):
    """The PyTorch tutorial's ``num_flat_features`` loop over ``x.size()[1:]`` (refused: fx
    cannot iterate over a size)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 5), nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(x.view(-1, self.num_flat_features(x)))

    @staticmethod
    def num_flat_features(x: Tensor) -> int:
        num = 1
        for s in x.size()[1:]:
            num *= s
        return num


class ProjectionHead(nn.Module):
    """A contrastive (SimCLR) head: features L2-normalised (refused: F.normalize)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.fc2(F.relu(self.fc1(x))), dim=1)


class UNetOutputSize(UNetTiny):
    """U-Net upsampling to the skip's size with ``output_size=`` (refused: a setting read from
    a tensor's size, which would be recorded as the module's own)."""

    def forward(self, x: Tensor) -> Tensor:
        a = self.down1(x)
        b = self.down2(a)
        return self.out(self.conv(torch.cat([a, self.up(b, output_size=a.size())], dim=1)))
