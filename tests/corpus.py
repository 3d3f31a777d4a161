"""A corpus of networks written in the styles of public code, for the converters.

Each entry builds a seeded model (eval mode, randomised norm statistics and affine parameters,
PReLU slopes) and an input, and says which outcome is expected: ``CONVERTS`` (the graph, run by
``gmn.graph.execute``, equals the model, also after a hidden-neuron permutation, and
``gmn.to_state_dict`` gives the state_dict back bit for bit) or ``refuses(*fragments)`` (a
``ConversionError`` whose message contains every fragment: the module path where the
unsupported operation sits, and the operation).

The styles, written here from scratch: SIRENs as DWSNets, Sitzmann et al., NFN and
siren-pytorch write them; Unterthiner et al.'s small CNN zoo; the PyTorch tutorial's LeNet;
torchvision-style ResNets; ViT and MLP-Mixer blocks; MobileNet/ConvNeXt blocks; a config-driven
CNN zoo with per-model activations and residual flags; torch's own transformer layers; and in
:mod:`tests.corpus_vision` and :mod:`tests.corpus_mlp` more image models (torchvision, timm,
GANs), coordinate networks, MLPs and sequence models; Hugging Face models built from configs.

``python -m tests.corpus`` converts every entry and prints what happened to each and the
totals (correct / refused naming module and operation / wrong), whatever the entry expects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmn.testing import randomise_norm_stats

CONVERTS = "converts"


def refuses(*fragments: str) -> tuple:
    """A refusal whose message names all ``fragments`` (the module, the operation)."""
    return ("refuses", *fragments)


@dataclass
class Entry:
    """``input``: the input's shape (a standard normal sample), or ``fn(generator)``;
    ``output``: picks the tensor from what the model returns (a Hugging Face output)."""

    name: str
    build: Callable[[], nn.Module]
    input: tuple[int, ...] | Callable[[torch.Generator], Tensor]
    expected: object = CONVERTS
    output: Callable | None = None

    def example(self) -> Tensor:
        generator = torch.Generator().manual_seed(7)
        if callable(self.input):
            return self.input(generator)
        return torch.randn(self.input, generator=generator)

    def run(self, model: nn.Module, x: Tensor) -> Tensor:
        out = model(x)
        return self.output(out) if self.output is not None else out


def randomise(model: nn.Module, generator: torch.Generator, scale: float | None = None) -> None:
    """As trained: norm statistics and affine parameters and PReLU slopes away from their
    initial values; with ``scale``, every parameter drawn from N(0, scale²) (Hugging Face
    models initialise to 0.02, where attention is uniform)."""
    randomise_norm_stats(model, generator)
    with torch.no_grad():
        if scale is not None:
            for p in model.parameters():
                p.normal_(0.0, scale, generator=generator)
        for m in model.modules():
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(-0.5, 0.5, generator=generator)
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                              nn.modules.instancenorm._InstanceNorm)):
                for name in ("weight", "bias"):
                    if getattr(m, name, None) is not None:
                        getattr(m, name).normal_(0.5 if name == "weight" else 0.0, 0.3,
                                                 generator=generator)
            if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.running_mean is not None:
                m.running_mean.normal_(0.0, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)


def _seeded(build: Callable[[], nn.Module], seed: int, scale: float | None = None
            ) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        torch.manual_seed(seed)
        model = build()
        randomise(model, torch.Generator().manual_seed(seed + 1), scale)
        return model.eval()

    return make


# --- SIRENs -----------------------------------------------------------------------------------
class DwsSine(nn.Module):
    """DWSNets style: a Sine module, ``nn.Sequential`` layers, ``+ 0.5`` on the output."""

    def __init__(self, w0: float = 30.0):
        super().__init__()
        self.w0 = w0

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * x)


class DwsSiren(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(2, hidden), DwsSine(), nn.Linear(hidden, hidden),
                                 DwsSine(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.seq(x) + 0.5


class SineLayer(nn.Module):
    """Sitzmann et al. style: the linear layer lives inside the sine layer."""

    def __init__(self, fan_in: int, fan_out: int, omega_0: float = 30.0, is_first: bool = False):
        super().__init__()
        self.omega_0, self.is_first = omega_0, is_first
        self.linear = nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if is_first else math.sqrt(6 / fan_in) / omega_0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega_0 * self.linear(x))


class SitzmannSiren(nn.Module):
    def __init__(self, hidden: int = 16, layers: int = 3):
        super().__init__()
        blocks = [SineLayer(2, hidden, is_first=True)]
        blocks += [SineLayer(hidden, hidden) for _ in range(layers - 1)]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 3))

    def forward(self, coords: Tensor) -> Tensor:
        return self.net(coords)


class NfnSiren(nn.Module):
    """NFN style: ω₀ applied in its own statement, written ``x * w0``."""

    def __init__(self, hidden: int = 16, w0: float = 30.0):
        super().__init__()
        self.w0 = w0
        self.layers = nn.ModuleList([nn.Linear(2, hidden), nn.Linear(hidden, hidden)])
        self.last = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
            x = x * self.w0
            x = torch.sin(x)
        return self.last(x)


class RawSineLayer(nn.Module):
    """siren-pytorch style: the layer owns raw weight/bias parameters and calls F.linear."""

    def __init__(self, fan_in: int, fan_out: int, w0: float = 30.0):
        super().__init__()
        self.w0 = w0
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / fan_in)
        self.bias = nn.Parameter(torch.zeros(fan_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * F.linear(x, self.weight, self.bias))


class InPlaceScaleSiren(nn.Module):
    """ω₀ applied in place (``h *= w0``), a different ω₀ for the first layer."""

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.first, self.hidden, self.last = nn.Linear(2, hidden), nn.Linear(hidden, hidden), \
            nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(x)
        h *= 30.0
        h = torch.sin(h)
        h = self.hidden(h)
        h *= 1.0
        return self.last(torch.sin(h))


class FunctionalDropoutMLP(nn.Module):
    """``F.dropout(h, p, self.training)`` as zoo training scripts write it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.dropout(F.relu(self.fc1(x)), 0.3, self.training)
        h = F.dropout(torch.sigmoid(self.fc2(h)), p=0.3, training=self.training)
        return self.fc3(h)


class SqueezedOutput(FunctionalDropoutMLP):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(-1)


def siren_pytorch() -> nn.Module:
    return nn.Sequential(RawSineLayer(2, 16), RawSineLayer(16, 16), nn.Linear(16, 1))


class ScaledTwice(nn.Module):
    """A scale applied to a sine that is not followed by an activation: refused at the mul."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(2.0 * torch.sin(self.a(x)))


# --- small CNNs -------------------------------------------------------------------------------
class UnterthinerCNN(nn.Module):
    """Three stride-2 3×3 convolutions, global average pooling, one dense layer."""

    def __init__(self, act: Callable = F.relu, channels: int = 8, dropout: float = 0.1):
        super().__init__()
        self.act = act
        self.c1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.c1(x)))
        x = self.drop(self.act(self.c2(x)))
        x = self.act(self.c3(x))
        return self.fc(x.mean(dim=(2, 3)))


class LeNet(nn.Module):
    """The PyTorch tutorial's LeNet (32×32 input)."""

    def __init__(self, flatten: str = "torch.flatten", head: str | None = None):
        super().__init__()
        self.flatten_style, self.head = flatten, head
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), \
            nn.Linear(84, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        if self.flatten_style == "torch.flatten":
            x = torch.flatten(x, 1)
        elif self.flatten_style == "view size":
            x = x.view(x.size(0), -1)
        else:
            x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        if self.head == "log_softmax":
            return F.log_softmax(x, dim=1)
        return x


class MnistMLP(nn.Module):
    """pytorch/examples style: the image flattened with ``x.view(-1, 28 * 28)`` (here 8×8)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8 * 8, 32), nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(-1, 8 * 8)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


class ViewPerPosition(nn.Module):
    """``x.view(-1, 4)`` of a 6-channel map: rows of 4 values, not a flatten (refused)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 6, 3), nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).view(-1, 4))


class PoolSqueezeCNN(nn.Module):
    """Adaptive pooling then ``.squeeze(-1).squeeze(-1)``, a Softmax module head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.hardswish(self.bn(self.conv(x)))).squeeze(-1).squeeze(-1)
        return self.softmax(self.fc(x))


class BareSqueezeCNN(PoolSqueezeCNN):
    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.conv(x)).squeeze())


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(2, 6, 5, padding=2), nn.Conv1d(6, 6, 3, dilation=2)
        self.gn = nn.GroupNorm(2, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.mish(self.gn(self.c1(x)))
        x = F.avg_pool1d(F.gelu(self.c2(x), approximate="tanh"), 2)
        return self.fc(torch.amax(x, dim=-1))


# --- residual networks ------------------------------------------------------------------------
class TorchvisionBasicBlock(nn.Module):
    """torchvision's BasicBlock: ``out += identity`` in place and a shared inplace ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, width: int, stride: int = 1):
        super().__init__()
        out = 2 * width
        self.conv1, self.bn1 = nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                        nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class TorchvisionResNet(nn.Module):
    def __init__(self, block: str = "basic", width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        if block == "basic":
            self.layer1 = nn.Sequential(TorchvisionBasicBlock(width, width),
                                        TorchvisionBasicBlock(width, width))
            self.layer2 = nn.Sequential(TorchvisionBasicBlock(width, 2 * width, 2))
            out = 2 * width
        else:
            self.layer1 = nn.Sequential(Bottleneck(width, width))
            self.layer2 = nn.Sequential(Bottleneck(2 * width, width, 2))
            out = 2 * width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(out, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SRResNetBlock(nn.Module):
    """SRGAN's residual block: conv, BN, per-channel PReLU, conv, BN, ``x + ...``."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(SRResNetBlock(channels), SRResNetBlock(channels))
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


class InPlaceStatements(nn.Module):
    """In-place operations used as statements, not reassigned."""

    def __init__(self, style: str):
        super().__init__()
        self.style = style
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        if self.style == "relu_":
            h.relu_()
        elif self.style == "F.relu inplace":
            F.relu(h, inplace=True)
        y = self.fc2(h)
        if self.style == "add_":
            y.add_(h)
        return self.fc3(y)


class AlphaAdd(nn.Module):
    def __init__(self, alpha: float, subtract: bool = False):
        super().__init__()
        self.alpha, self.subtract = alpha, subtract
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.fc1(x))
        if self.subtract:
            return self.fc3(h - self.fc2(h))
        return self.fc3(torch.add(h, self.fc2(h), alpha=self.alpha))


# --- config-driven zoo ------------------------------------------------------------------------
@dataclass
class ZooConfig:
    activation: Callable = F.relu
    residual: bool = False
    norm: str = "batch"
    widths: list[int] = field(default_factory=lambda: [8, 8])


class ZooCNN(nn.Module):
    """One class, many models: the activation is a function attribute, the config a dataclass."""

    def __init__(self, config: ZooConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(1, config.widths[0], 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                   for a, b in zip(config.widths[:-1], config.widths[1:]))
        norm = {"batch": nn.BatchNorm2d, "group": lambda c: nn.GroupNorm(2, c),
                "none": lambda c: nn.Identity()}[config.norm]
        self.norms = nn.ModuleList(norm(b) for b in config.widths[1:])
        self.head = nn.Linear(config.widths[-1], 10)

    def forward(self, x: Tensor) -> Tensor:
        act = self.config.activation
        x = act(self.stem(x))
        for conv, norm in zip(self.convs, self.norms):
            h = norm(conv(x))
            x = act(x + h) if self.config.residual else act(h)
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


# --- ViT / Mixer / MobileNet / ConvNeXt -------------------------------------------------------
class ViTBlock(nn.Module):
    """A pre-norm ViT on pre-cut patches [B, L, P]: linear patch embedding, attention, MLP,
    a mean over tokens and a linear head."""

    def __init__(self, patch: int = 12, embed: int = 8, heads: int = 2, token_dim: int = -2):
        super().__init__()
        self.token_dim = token_dim
        self.embed = nn.Linear(patch, embed)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(embed), nn.LayerNorm(embed), \
            nn.LayerNorm(embed)
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(embed, 2 * embed), nn.GELU(), nn.Linear(2 * embed,
                                                                                   embed))
        self.head = nn.Linear(embed, 5)

    def forward(self, patches: Tensor) -> Tensor:
        x = self.embed(patches)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return self.head(self.ln3(x).mean(dim=self.token_dim))


class ConvPatchViT(nn.Module):
    """torchvision-style patch embedding: conv, ``flatten(2).transpose(1, 2)``."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)
        self.head = nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.proj(x).flatten(2).transpose(1, 2).mean(dim=1))


class PatchViT(nn.Module):
    """A ViT with timm's ``PatchEmbed`` (conv, ``flatten(2).transpose(1, 2)``), pre-norm
    attention/MLP blocks and ``global_pool='avg'`` (``x.mean(dim=1)``); no class token or
    position embedding (timm's ``class_token=False, pos_embed='none'``)."""

    def __init__(self, embed: int = 8, depth: int = 2, heads: int = 2):
        super().__init__()
        self.proj = nn.Conv2d(3, embed, 4, stride=4)
        self.blocks = nn.ModuleList(ViTBlockBody(embed, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed)
        self.head = nn.Linear(embed, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, HW, C]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


class ViTBlockBody(nn.Module):
    def __init__(self, embed: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(embed), nn.LayerNorm(embed)
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(embed, 2 * embed), nn.GELU(),
                                 nn.Linear(2 * embed, embed))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TimmViT(nn.Module):
    """timm's VisionTransformer: a class token and position embeddings held as parameters of
    the model, ``torch.cat`` and ``x[:, 0]`` (refused: only Hugging Face's ``ViTEmbeddings``
    has a converter that places them in the graph)."""

    def __init__(self, embed: int = 8):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, embed, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed))
        self.pos_embed = nn.Parameter(torch.randn(1, 17, embed))
        self.block = ViTBlockBody(embed, 2)
        self.norm, self.head = nn.LayerNorm(embed), nn.Linear(embed, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        return self.head(self.norm(self.block(x))[:, 0])


class MixerBlock(nn.Module):
    """MLP-Mixer: token mixing transposes tokens and channels."""

    def __init__(self, tokens: int = 4, channels: int = 6):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.token_mlp = nn.Linear(tokens, tokens)
        self.channel_mlp = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mlp(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(x)


class MobileNetBlock(nn.Module):
    """Depthwise 3×3 + BN + ReLU6, pointwise 1×1 + BN + Hardswish, inverted residual."""

    def __init__(self, channels: int = 8, expand: int = 2):
        super().__init__()
        hidden = channels * expand
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False),
                                    nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden,
                                                 bias=False), nn.BatchNorm2d(hidden),
                                       nn.Hardswish())
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False),
                                     nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.depthwise(self.expand(x)))


class MobileNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.Hardswish())
        self.block = MobileNetBlock()
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
                                  nn.Hardsigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.silu(self.grouped(self.block(self.stem(x)))))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt: depthwise 7×7, permute to channels-last, LayerNorm, MLP, layer scale."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: Tensor) -> Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + h.permute(0, 3, 1, 2)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(channels, 2, 1), nn.Conv2d(2, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(h, 1)))))
        return h * scale


# --- activations ------------------------------------------------------------------------------
def activation_mlp(act: nn.Module) -> Callable[[], nn.Module]:
    return lambda: nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 2))


class TransformerStack(nn.Module):
    def __init__(self, norm_first: bool, batch_first: bool = True):
        super().__init__()
        self.inp = nn.Linear(3, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation="gelu",
                                           norm_first=norm_first, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.out = nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.encoder(self.inp(x)))


def wrapped(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """The model as submodule '0', so that errors inside its forward name a module path."""
    return lambda: nn.Sequential(build())


def _ids(vocab: int, shape: tuple[int, int]) -> Callable[[torch.Generator], Tensor]:
    return lambda generator: torch.randint(0, vocab, shape, generator=generator)


def _hf(name: str, **config):
    """A Hugging Face model of class ``name`` from a config object built offline."""
    def build() -> nn.Module:
        import transformers

        model_class = getattr(transformers, name)
        config_class = model_class.config_class
        return model_class(config_class(**config))

    return build


def _entries() -> list[Entry]:
    from tests import corpus_mlp as mlp
    from tests import corpus_vision as vision

    e = []

    def add(name, build, shape, expected=CONVERTS, output=None, scale=None):
        e.append(Entry(name, _seeded(build, len(e), scale), shape, expected, output))

    from gmn.models.siren import Siren

    add("siren gmn dwsnets", lambda: Siren(2, (16, 16), 1), (7, 2))
    add("siren gmn standard", lambda: Siren(2, (16, 16), 1, style="standard"), (7, 2))
    add("siren dwsnets style", DwsSiren, (7, 2))
    add("siren sitzmann style", SitzmannSiren, (7, 2))
    add("siren nfn style", NfnSiren, (7, 2))
    add("siren in-place scale (h *= w0)", InPlaceScaleSiren, (7, 2))
    add("siren siren-pytorch style (F.linear on own weights)", siren_pytorch, (7, 2))
    add("scaled sine not before an activation", wrapped(ScaledTwice), (7, 2))
    for act in (F.relu, torch.tanh, F.elu, torch.sin):
        add(f"unterthiner cnn {act.__name__}", lambda a=act: UnterthinerCNN(a), (2, 1, 16, 16))
    add("unterthiner cnn, Sequential with AdaptiveAvgPool2d + Flatten", lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 10)),
        (2, 1, 16, 16))
    add("mlp with F.dropout(h, p, self.training)", FunctionalDropoutMLP, (5, 4))
    add("mlp output .squeeze(-1)", SqueezedOutput, (5, 4))
    add("lenet torch.flatten", LeNet, (2, 1, 32, 32))
    add("lenet view(size(0), -1)", lambda: LeNet("view size"), (2, 1, 32, 32))
    add("lenet log_softmax head", lambda: LeNet(head="log_softmax"), (2, 1, 32, 32))
    add("lenet view(-1, 400)", lambda: LeNet("view -1"), (2, 1, 32, 32))
    add("mnist mlp x.view(-1, 28 * 28)", MnistMLP, (3, 1, 8, 8))
    add("view(-1, 4) of a 6-channel map (no flatten)", wrapped(ViewPerPosition), (2, 3, 6, 6),
        refuses("in module '0' (ViewPerPosition)", "reshape"))
    add("pool + squeeze(-1) + softmax head", PoolSqueezeCNN, (2, 3, 8, 8))
    add("squeeze() without dims", wrapped(BareSqueezeCNN), (2, 3, 8, 8),
        refuses("in module '0' (BareSqueezeCNN)", "squeeze"))
    add("conv1d + groupnorm + mish + gelu tanh", Conv1dNet, (2, 2, 20))
    add("torchvision resnet basic", TorchvisionResNet, (2, 3, 32, 32))
    add("torchvision resnet bottleneck", lambda: TorchvisionResNet("bottleneck"),
        (2, 3, 32, 32))
    for style in ("relu_", "F.relu inplace", "add_"):
        add(f"in-place {style}", lambda s=style: InPlaceStatements(s), (5, 4))
    add("torch.add alpha=0.5", lambda: AlphaAdd(0.5), (5, 4))
    add("subtraction", lambda: AlphaAdd(1.0, subtract=True), (5, 4))
    for i, config in enumerate([
            ZooConfig(), ZooConfig(torch.tanh, True), ZooConfig(F.gelu, True, "group"),
            ZooConfig(F.silu, False, "none", [8, 8, 8]), ZooConfig(F.relu, True, "batch"),
            ZooConfig(torch.sin, False, "group")]):
        add(f"config zoo #{i} ({config.activation.__name__}, residual={config.residual}, "
            f"norm={config.norm})", lambda c=config: ZooCNN(c), (2, 1, 8, 8))
    add("vit block, mean over tokens (dim=-2)", ViTBlock, (2, 6, 12))
    add("vit block, mean over tokens (dim=1)", wrapped(lambda: ViTBlock(token_dim=1)),
        (2, 6, 12), refuses("in module '0' (ViTBlock)", "reduction"))
    add("vit conv patch embedding, mean over tokens (dim=1)", ConvPatchViT, (2, 3, 8, 8))
    add("vit timm-style PatchEmbed, global_pool='avg'", PatchViT, (2, 3, 16, 16))
    add("vit timm-style class token and position embedding", wrapped(TimmViT), (2, 3, 16, 16))
    add("mlp-mixer block", wrapped(MixerBlock), (2, 4, 6),
        refuses("in module '0' (MixerBlock)", "transpose"))
    add("mobilenet block (depthwise, relu6, hardswish, hardsigmoid)", MobileNetLike,
        (2, 3, 16, 16))
    add("convnext block", wrapped(ConvNeXtBlock), (2, 8, 8, 8))
    add("squeeze-excitation", wrapped(SqueezeExcite), (2, 3, 8, 8))
    for act in (nn.LeakyReLU(0.0), nn.LeakyReLU(0.2), nn.Softplus(beta=2.0), nn.ELU(0.5),
                nn.GELU(approximate="tanh"), nn.Mish(), nn.SiLU(), nn.Sigmoid(), nn.ReLU6()):
        add(f"mlp {act!r}", activation_mlp(act), (5, 4))
    add("mlp Softplus(threshold=5)", activation_mlp(nn.Softplus(threshold=5.0)), (5, 4),
        refuses("module '1' (Softplus)", "threshold"))
    add("mlp one PReLU module used twice", activation_mlp(nn.PReLU()), (5, 4),
        refuses("'1.weight'", "used twice"))
    add("mlp PReLU per neuron and single slope", lambda: nn.Sequential(
        nn.Linear(4, 8), nn.PReLU(8), nn.Linear(8, 8), nn.PReLU(), nn.Linear(8, 2)), (5, 4))
    add("srresnet (per-channel PReLU, residual blocks)", SRResNet, (2, 3, 12, 12))
    add("mlp Hardtanh", activation_mlp(nn.Hardtanh()), (5, 4))
    add("nn.Linear alone", lambda: nn.Linear(4, 3), (5, 4))
    add("batchnorm first", lambda: nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)), (5, 4))
    add("transformer encoder post-norm", lambda: TransformerStack(False), (2, 5, 3))
    add("transformer encoder pre-norm, seq first", lambda: TransformerStack(True, False),
        (5, 2, 3))
    add("lstm", lambda: nn.Sequential(nn.LSTM(4, 4)), (3, 5, 4), refuses("'0'", "LSTM"))

    # --- torchvision-style image models (tests/corpus_vision.py) ---
    image = (2, 3, 32, 32)
    add("torchvision-style pre-activation resnet", vision.PreActResNet, image)
    add("resnet-d block (avg-pool shortcut)", wrapped(lambda: vision.ResNetDBlock(3, 8)), image)
    add("wide resnet (bn-relu-conv, dropout)", vision.wide_resnet, image)
    add("resnext (grouped 3x3, cardinality 4)", vision.resnext, image)
    add("rezero / skipinit (x + alpha f(x), learned scalar)", vision.rezero_net, image)
    add("vgg", lambda: vision.vgg(False), image)
    add("vgg with batchnorm", lambda: vision.vgg(True), image)
    add("alexnet (adaptive pool 3x3, flatten)", vision.AlexNet, (2, 3, 48, 48))
    add("squeezenet fire modules (cat of 1x1 and 3x3)", vision.squeezenet, image)
    add("googlenet inception branches (cat)", vision.googlenet, (2, 3, 16, 16))
    add("densenet layers (cat of input and new features)", vision.densenet, (2, 3, 16, 16))
    add("u-net (transposed conv, skip concatenation)", vision.UNetTiny, (2, 1, 16, 16))
    add("u-net upsampling with output_size=", vision.UNetOutputSize, (2, 1, 16, 16),
        refuses("'up'", "output_size"))
    add("decoder: view to a map, nn.Upsample, conv", vision.UpsampleDecoder, (3, 6),
        refuses("in the top-level forward", "reshape"))
    add("torchvision mobilenet v2 (inverted residuals)", vision.mobilenet_v2, image)
    add("torchvision mobilenet v3 block (SE with hardsigmoid)", vision.mobilenet_v3, image)
    add("efficientnet mbconv (SE with SiLU, stochastic depth)", vision.efficientnet, image)
    add("SE written with mean, view(b, c, 1, 1) and a product", vision.SEFunctional,
        (2, 3, 8, 8))
    add("shufflenet channel shuffle", wrapped(vision.ChannelShuffle), (2, 3, 8, 8),
        refuses("in module '0' (ChannelShuffle)", "reshape"))
    add("timm Conv2dSame (R3)", vision.conv_same_net, (2, 3, 16, 16))
    add("BiT StdConv2d, var_mean (R4)", lambda: vision.bit_resnet(vision.StdConv2d),
        (2, 3, 16, 16))
    add("timm StdConv2d, F.batch_norm", lambda: vision.bit_resnet(vision.StdConv2dBatchNorm),
        (2, 3, 16, 16))
    add("timm vit, class token pooling", vision.TimmViT, (2, 3, 16, 16))
    add("timm vit, mean of the patch tokens (x[:, 1:])", wrapped(
        lambda: vision.TimmViT(pool="avg")), (2, 3, 16, 16),
        refuses("in module '0' (TimmViT)", "indexing"))
    add("timm deit, class and distillation tokens", lambda: vision.TimmViT(dist_token=True),
        (2, 3, 16, 16))
    add("timm vit, qkv attention by hand", lambda: vision.TimmViT(attention="by hand"),
        (2, 3, 16, 16), refuses("'blocks.0.attn'", "reshape"))
    add("convmixer", vision.ConvMixer, (2, 3, 16, 16))
    add("poolformer (pool - x token mixer)", vision.poolformer, (2, 3, 16, 16))
    add("convnext (permute, channels-last layernorm, layer scale)", vision.convnext,
        (2, 3, 16, 16))
    add("convnext channels-first layernorm by hand", lambda: nn.Sequential(
        nn.Conv2d(3, 8, 4, 4), vision.ChannelsFirstLayerNorm(8)), (2, 3, 16, 16),
        refuses("'1'", "mean"))
    add("dcgan generator (transposed convs)", vision.dcgan_generator, (2, 8, 1, 1))
    add("dcgan discriminator", vision.dcgan_discriminator, image)
    add("stylegan2 mapping network (EqualLinear, lr_mul)", vision.stylegan_mapping, (4, 8))
    add("progan discriminator (EqualConv2d)", vision.ProGANDiscriminator, (2, 3, 8, 8))
    add("progan generator with PixelNorm", vision.ProGANGenerator, (4, 8),
        refuses("'norm'", "reduction"))
    add("spectral-norm discriminator", vision.spectral_norm_discriminator, (2, 3, 8, 8),
        refuses("'0.weight'", "spectral_norm"))
    add("pixel-shuffle upsampler (ESPCN)", vision.pixel_shuffle_generator, (2, 3, 8, 8),
        refuses("'1'", "PixelShuffle"))
    add("input normalised in forward ((x - 0.5) / 0.5), sum pooling", vision.Preprocessed,
        (2, 3, 8, 8))
    add("decoder resized to the input's size", wrapped(vision.ResizeToInput), (2, 3, 8, 8),
        refuses("in module '0' (ResizeToInput)", "interpolate", "size"))
    add("pytorch tutorial lenet (num_flat_features)", wrapped(vision.TutorialLeNet),
        (2, 1, 12, 12), refuses("module '0' (TutorialLeNet)", "iterated"))
    add("simclr projection head (F.normalize)", wrapped(vision.ProjectionHead), (4, 8),
        refuses("in module '0' (ProjectionHead)", "normalize"))
    add("autoencoder with nn.Unflatten", lambda: nn.Sequential(
        nn.Linear(6, 16), nn.Unflatten(1, (4, 2, 2)), nn.ConvTranspose2d(4, 1, 2, 2)), (3, 6),
        refuses("'1'", "Unflatten"))
    add("3-d convolution", lambda: nn.Sequential(nn.Conv3d(1, 2, 3), nn.Flatten(),
                                                 nn.Linear(2 * 2 * 2, 2)), (2, 1, 4, 4, 3),
        refuses("'0'", "Conv3d"))

    # --- coordinate networks, MLPs, sequence models (tests/corpus_mlp.py) ---
    add("siren layer as nn.Linear subclass (R1)", mlp.siren_subclass, (7, 2))
    add("equalised-lr nn.Linear subclass (R2)", mlp.scaled_linear_mlp, (5, 4))
    add("siren with learned omega_0 (scalar, per neuron)", mlp.LearnedW0Siren, (7, 2))
    add("nerf mlp, input concatenated to a hidden layer", mlp.NeRFMLP, (5, 9))
    add("fourier features x @ B (buffer), sin/cos cat", mlp.FourierFeatures, (5, 2))
    add("gaussian encoding through a frozen nn.Linear", mlp.GaussianEncoding, (5, 2))
    add("positional encoding of the raw input", mlp.PositionalEncodingMLP, (5, 2),
        refuses("in the top-level forward", "raw network input"))
    add("siren with a learned phase (sin(w0 (Wx + b + p)))", mlp.SinePlusBias, (7, 2))
    for norm in (nn.BatchNorm1d(8, affine=False), nn.BatchNorm1d(8, track_running_stats=False),
                 nn.LayerNorm(8, elementwise_affine=False), nn.LayerNorm(8, bias=False),
                 nn.LayerNorm(8, eps=1e-3), nn.GroupNorm(2, 8, affine=False), nn.RMSNorm(8),
                 nn.RMSNorm(8, eps=1e-6, elementwise_affine=False)):
        add(f"mlp {norm!r}", lambda n=norm: mlp.norm_mlp(n), (5, 4))
    for norm in (nn.InstanceNorm2d(8), nn.InstanceNorm2d(8, affine=True),
                 nn.InstanceNorm2d(8, affine=True, track_running_stats=True)):
        add(f"cnn {norm!r}", lambda n=norm: nn.Sequential(
            nn.Conv2d(3, 8, 3), n, nn.ReLU(), nn.Conv2d(8, 2, 3)), (2, 3, 8, 8))
    add("cnn LocalResponseNorm", lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.LocalResponseNorm(
        2), nn.Conv2d(8, 2, 3)), (2, 3, 8, 8), refuses("'1'", "LocalResponseNorm"))
    add("cnn LayerNorm over [C, H, W]", lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 6, 6]), nn.Flatten(), nn.Linear(144, 2)),
        (2, 3, 8, 8), refuses("'1'", "LayerNorm"))
    add("conv2d padding='same', padding_mode='reflect'", lambda: nn.Sequential(
        nn.Conv2d(3, 4, 4, padding="same", padding_mode="reflect"), nn.ReLU(),
        nn.Conv2d(4, 2, 3, padding=1, padding_mode="circular")), (2, 3, 8, 8))
    add("pads: ZeroPad2d, ReflectionPad2d, F.pad replicate", lambda: nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.ZeroPad2d((1, 0, 1, 0)),
        nn.Conv2d(4, 4, 2), PadReplicate(), nn.Conv2d(4, 2, 3)), (2, 3, 8, 8))
    add("residual mlp (pre-norm blocks)", mlp.ResidualMLP, (5, 4))
    add("swiglu feed-forward", mlp.SwiGLU, (5, 6))
    add("geglu with chunk", wrapped(mlp.GEGLUChunk), (5, 6),
        refuses("in module '0' (GEGLUChunk)", "chunk"))
    add("highway network (t * H(x) + (1 - t) * x)", mlp.Highway, (5, 6))
    add("input normalised by buffers ((x - mean) / std)", mlp.InputNormalised, (5, 4))
    add("temperature-scaled logits (/ a parameter)", mlp.TemperatureScaled, (5, 4))
    for kind in mlp.WRITTEN_OUT:
        if kind != "gelu_new":
            add(f"{kind} written out", lambda k=kind: mlp.WrittenOut(k), (5, 4))
    add("gelu-new written out (a cube)", wrapped(lambda: mlp.WrittenOut("gelu_new")), (5, 4),
        refuses("in module '0' (WrittenOut)", "pow"))
    for act in (nn.SELU(), nn.Softsign(), nn.RReLU(0.1, 0.3), nn.CELU(0.7), nn.Hardtanh(-2, 2),
                nn.LogSigmoid(), nn.Tanhshrink(), nn.Softshrink(0.2), nn.Hardshrink(0.3)):
        add(f"mlp {act!r}", lambda a=act: mlp.activation_mlp(a), (5, 4))
    add("mlp nn.Threshold", lambda: mlp.activation_mlp(nn.Threshold(0.1, 20.0)), (5, 4),
        refuses("'1'", "Threshold"))
    add("mlp nn.GLU", lambda: nn.Sequential(nn.Linear(4, 8), nn.GLU(), nn.Linear(4, 2)), (5, 4),
        refuses("'1'", "GLU"))
    for name in ("gelu_new", "quick_gelu", "gelu_fast", "gelu_pytorch_tanh", "silu", "mish"):
        add(f"mlp with Hugging Face activation {name}", lambda n=name: mlp.hf_activation_mlp(n),
            (5, 4))
    add("text cnn (embedding, conv1d over time, max)", mlp.TextCNN, _ids(30, (2, 9)))
    add("fasttext (embedding mean)", mlp.EmbeddingMean, _ids(40, (3, 5)))
    add("transformer on embeddings + position parameter", mlp.TinyTransformerLM,
        _ids(30, (2, 7)))
    add("1-d audio cnn (strided, dilated, global max)", mlp.Conv1dAudio, (2, 1, 128))
    add("nanogpt (arange positions, wte + wpe, blocks, head)", mlp.NanoGPT, _ids(30, (2, 7)))
    add("F.dropout without training= (drops in eval mode)", wrapped(mlp.DropoutDefault), (5, 4),
        refuses("in module '0' (DropoutDefault)", "dropout", "training mode"))
    add("gru classifier", mlp.GRUClassifier, (2, 5, 4), refuses("'gru'", "GRU"))
    add("weight-tied language model", mlp.TiedLM, _ids(20, (2, 5)),
        refuses("'embed.weight'", "'out.weight'", "tied weights"))
    add("tcn with a chomp (x[:, :, :-k])", wrapped(mlp.TCNBlock), (2, 3, 16),
        refuses("in module '0' (TCNBlock)", "indexing"))
    add("bilinear pooling (bmm of two layers)", wrapped(mlp.BilinearPooling), (3, 4),
        refuses("in module '0' (BilinearPooling)", "unsqueeze"))
    add("masked_fill", wrapped(mlp.MaskedFill), (3, 4),
        refuses("in module '0' (MaskedFill)", "lt"))

    # --- Hugging Face models built from configs ---
    text = _ids(50, (2, 7))
    small = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=32)
    add("hf BertModel (pooler output)", _hf("BertModel", vocab_size=50,
                                            max_position_embeddings=16, **small),
        text, output=lambda o: o.pooler_output, scale=0.5)
    add("hf BertForSequenceClassification", _hf(
        "BertForSequenceClassification", vocab_size=50, max_position_embeddings=16, num_labels=3,
        **small), text, output=lambda o: o.logits, scale=0.5)
    add("hf GPT2Model", _hf("GPT2Model", vocab_size=50, n_embd=16, n_layer=2, n_head=2,
                            n_positions=16, bos_token_id=0, eos_token_id=0),
        text, output=lambda o: o.last_hidden_state, scale=0.5)
    add("hf DeiTModel", _hf("DeiTModel", image_size=16, patch_size=4, **small), (2, 3, 16, 16),
        output=lambda o: o.pooler_output, scale=0.5)
    add("hf DeiTForImageClassificationWithTeacher", _hf(
        "DeiTForImageClassificationWithTeacher", image_size=16, patch_size=4, num_labels=3,
        **small), (2, 3, 16, 16), output=lambda o: o.logits, scale=0.5)
    add("hf ViTForImageClassification", _hf("ViTForImageClassification", image_size=16,
                                             patch_size=4, num_labels=3, **small),
        (2, 3, 16, 16), output=lambda o: o.logits, scale=0.5)
    add("hf ConvNextForImageClassification", _hf(
        "ConvNextForImageClassification", hidden_sizes=[8, 16], depths=[2, 1], num_stages=2,
        patch_size=2, num_labels=3), (2, 3, 16, 16), output=lambda o: o.logits, scale=0.3)
    add("hf MobileNetV2Model (tf padding)", _hf("MobileNetV2Model", image_size=32,
                                                depth_multiplier=0.25), (2, 3, 33, 33),
        output=lambda o: o.pooler_output)
    add("hf MobileNetV2ForImageClassification", _hf(
        "MobileNetV2ForImageClassification", image_size=32, depth_multiplier=0.25, num_labels=3,
        tf_padding=False), (2, 3, 32, 32), output=lambda o: o.logits)
    add("hf ResNetForImageClassification", _hf(
        "ResNetForImageClassification", embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
        num_labels=3), (2, 3, 32, 32), output=lambda o: o.logits)
    add("hf ViTForMaskedImageModeling", _hf("ViTForMaskedImageModeling", image_size=16,
                                            patch_size=4, **small), (2, 3, 16, 16),
        refuses("'vit.embeddings'", "mask token"), output=lambda o: o.reconstruction)
    return e


class PadReplicate(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, (1, 1, 1, 1), mode="replicate")


ENTRIES = _entries()


@dataclass
class Outcome:
    """What converting an entry gave: ``"correct"``, ``"refused"`` or ``"wrong"``, and why."""

    kind: str
    detail: str = ""


def relative_error(got: Tensor, expected: Tensor) -> float:
    if got.shape != expected.shape:
        return math.inf
    return float((got - expected).norm()) / max(float(expected.norm()), 1e-30)


def check(entry: Entry) -> Outcome:
    """Convert ``entry``'s model and compare: the graph run by ``execute`` against the model
    (to 1e-5 relative), also after a random hidden-neuron permutation, and the state_dict from
    the graph against the model's, bit for bit. A ``ConversionError`` is a refusal."""
    import copy

    import gmn
    from tests.test_graph_permutation import permute_state

    model = entry.build()
    x = entry.example()
    with torch.no_grad():
        expected = entry.run(model, x)
        try:
            graph = gmn.from_state_dict(model)
        except gmn.ConversionError as error:
            return Outcome("refused", str(error))
        try:
            error = relative_error(gmn.graph.execute(graph, x), expected)
            state = model.state_dict()
            back = gmn.to_state_dict(graph)
            permuted = permute_state(model, state, torch.Generator().manual_seed(1))
            clone = copy.deepcopy(model)
            clone.load_state_dict(permuted)
            moved = relative_error(entry.run(clone, x), expected)
            moved_graph = relative_error(gmn.graph.execute(
                gmn.from_state_dict(permuted, like=model), x), expected)
        except Exception as failure:  # noqa: BLE001 - any failure of a converted graph is wrong
            return Outcome("wrong", f"{type(failure).__name__}: {failure}")
    bitwise = list(back) == list(state) and all(
        torch.equal(back[k].view(-1).view(torch.uint8), state[k].view(-1).view(torch.uint8))
        if state[k].is_floating_point() else torch.equal(back[k], state[k]) for k in state)
    problems = [f"{what} {value:.1e}" for what, value in (
        ("execute", error), ("permuted model", moved), ("permuted graph", moved_graph))
        if not value <= 1e-5]
    if not bitwise:
        problems.append("round trip not bitwise")
    return Outcome("wrong", ", ".join(problems)) if problems else Outcome("correct")


def main() -> None:
    """Convert every entry; print each outcome and the totals."""
    counts = {"correct": 0, "refused": 0, "refused without module and operation": 0,
              "wrong": 0}
    for entry in ENTRIES:
        outcome = check(entry)
        kind = outcome.kind
        if kind == "refused" and not (entry.expected != CONVERTS and all(
                f in outcome.detail for f in entry.expected[1:])):
            kind = "refused without module and operation"
        counts[kind] += 1
        detail = outcome.detail.splitlines()[0][:160] if outcome.detail else ""
        print(f"{kind:8s} | {entry.name}" + (f" | {detail}" if detail else ""))
    total = len(ENTRIES)
    print(f"\n{total} networks: {counts['correct']} correct "
          f"({100 * counts['correct'] / total:.0f} %), {counts['refused']} refused naming the "
          f"module and the operation, {counts['refused without module and operation']} refused "
          f"without naming them, {counts['wrong']} wrong")


if __name__ == "__main__":
    main()
