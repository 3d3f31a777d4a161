"""Corpus networks of coordinate networks, MLPs and sequence models, written here from the
patterns of public code.

SIRENs as subclasses of nn.Linear, with learned ω₀ (scalar or per neuron), FiLM-free NeRF MLPs
with a skip concatenation of the input, Fourier-feature networks (Tancik et al.: ``x @ B`` with a
fixed buffer, sin and cos concatenated; or a frozen nn.Linear), in-model positional encoding;
MLPs with every norm flag, gated MLPs (SwiGLU, GEGLU with chunk, highway), activations written
by hand (swish, mish, quick GELU, GELU-new), input normalisation by buffers; text CNNs on
embeddings, transformer language models, recurrent layers; weight tying.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --- SIREN / NeRF / Fourier features ---------------------------------------------------------
class SirenLinear(nn.Linear):
    """R1: a SIREN layer as a subclass of nn.Linear whose forward adds the sine."""

    def __init__(self, inp: int, out: int, w0: float = 30.0):
        super().__init__(inp, out)
        self.w0 = w0

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * super().forward(x))


def siren_subclass() -> nn.Module:
    return nn.Sequential(SirenLinear(2, 16), SirenLinear(16, 16), nn.Linear(16, 1))


class ScaledLinear(nn.Linear):
    """R2: equalised learning rate: the weight is scaled in forward."""

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * 0.5, self.bias)


def scaled_linear_mlp() -> nn.Module:
    return nn.Sequential(ScaledLinear(4, 8), nn.ReLU(), ScaledLinear(8, 2))


class LearnedW0Siren(nn.Module):
    """ω₀ learned: a scalar for the first layer, one per neuron for the second."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(2, 16), nn.Linear(16, 16), nn.Linear(16, 1)
        self.w0 = nn.Parameter(torch.tensor(30.0))
        self.w1 = nn.Parameter(torch.full((16,), 1.0))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.sin(self.w0 * self.l1(x))
        return self.l3(torch.sin(self.l2(h) * self.w1))


class NeRFMLP(nn.Module):
    """nerf-pytorch's MLP on an already encoded input: a skip concatenating the input to a
    hidden layer, a density head and a colour head."""

    def __init__(self, inp: int = 9, width: int = 16):
        super().__init__()
        self.pts = nn.ModuleList([nn.Linear(inp, width), nn.Linear(width, width),
                                  nn.Linear(width + inp, width)])
        self.alpha, self.feature = nn.Linear(width, 1), nn.Linear(width, width)
        self.rgb = nn.Linear(width, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.pts):
            h = F.relu(layer(h))
            if i == 1:
                h = torch.cat([x, h], -1)
        return torch.cat([self.rgb(self.feature(h)), self.alpha(h)], -1)


class FourierFeatures(nn.Module):
    """Tancik et al.: ``[sin(2π xB), cos(2π xB)]`` with a fixed Gaussian matrix B (a buffer)."""

    def __init__(self, features: int = 8, sigma: float = 1.0):
        super().__init__()
        self.register_buffer("B", torch.randn(2, features) * sigma)
        self.net = nn.Sequential(nn.Linear(2 * features, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: Tensor) -> Tensor:
        projected = 2 * math.pi * x @ self.B
        return self.net(torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1))


class GaussianEncoding(nn.Module):
    """Fourier features through a frozen nn.Linear (``requires_grad=False``), then a SIREN."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(2, 8, bias=False)
        self.proj.weight.requires_grad_(False)
        self.mlp = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: Tensor) -> Tensor:
        p = self.proj(x)
        return self.mlp(torch.cat((p.sin(), p.cos()), 1))


class PositionalEncodingMLP(nn.Module):
    """NeRF positional encoding computed inside the model on the raw coordinates (refused:
    an activation of the raw input, whose size no layer has read yet)."""

    def __init__(self, frequencies: int = 3):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Linear(2 * (1 + 2 * frequencies), 4)

    def forward(self, x: Tensor) -> Tensor:
        parts = [x]
        for i in range(self.frequencies):
            parts += [torch.sin(2.0 ** i * x), torch.cos(2.0 ** i * x)]
        return self.mlp(torch.cat(parts, -1))


class SinePlusBias(nn.Module):
    """A SIREN whose first layer adds a learned per-neuron phase before the sine."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(2, 8), nn.Linear(8, 1)
        self.phase = nn.Parameter(torch.randn(8))

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(torch.sin(30.0 * (self.l1(x) + self.phase)))


# --- MLPs -------------------------------------------------------------------------------------
def norm_mlp(norm: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), norm, nn.ReLU(), nn.Linear(8, 2))


class ResidualMLP(nn.Module):
    """Pre-norm residual MLP blocks (x + mlp(norm(x))), as in MLP-Mixer's channel mixing."""

    def __init__(self, width: int = 8, depth: int = 2):
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 16),
                                                  nn.GELU(), nn.Linear(16, width))
                                    for _ in range(depth))
        self.out = nn.Linear(width, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.inp(x)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class SwiGLU(nn.Module):
    """LLaMA's feed-forward: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int = 6, hidden: int = 12):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class GEGLUChunk(nn.Module):
    """GEGLU written with ``chunk`` (refused: it splits one layer's neurons in two)."""

    def __init__(self):
        super().__init__()
        self.proj, self.out = nn.Linear(6, 16), nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(a * F.gelu(gate))


class Highway(nn.Module):
    """Highway network: t·H(x) + (1 − t)·x."""

    def __init__(self, width: int = 6):
        super().__init__()
        self.h, self.t, self.out = nn.Linear(width, width), nn.Linear(width, width), \
            nn.Linear(width, 2)

    def forward(self, x: Tensor) -> Tensor:
        t = torch.sigmoid(self.t(x))
        return self.out(t * F.relu(self.h(x)) + (1 - t) * x)


class InputNormalised(nn.Module):
    """Input normalisation by buffers inside the model: (x - mean) / std."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, -0.2, 0.1, 0.0]))
        self.register_buffer("std", torch.tensor([0.3, 0.2, 1.5, 0.7]))
        self.mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp((x - self.mean) / self.std)


class TemperatureScaled(nn.Module):
    """Calibrated logits: a learned temperature divides the output."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)
        self.temperature = nn.Parameter(torch.tensor([1.5]))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x))) / self.temperature


WRITTEN_OUT = {  # activations written out as public code writes them
    "swish": lambda h: h * torch.sigmoid(h),
    "mish": lambda h: h * torch.tanh(F.softplus(h)),
    "quick_gelu": lambda h: h * torch.sigmoid(1.702 * h),
    "gelu_new": lambda h: 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (
        h + 0.044715 * torch.pow(h, 3.0)))),  # refused: a cube
    "clamp": lambda h: torch.clamp(h, -0.5, 0.8),
    "clamp min": lambda h: h.clamp(min=0.1),
    "hardtanh": lambda h: F.hardtanh(h, -2.0, 2.0),
    "clamp_ in place": lambda h: h.clamp_(0.0, 1.0),
    "relu squared": lambda h: torch.square(F.relu(h)),
}


class WrittenOut(nn.Module):
    """A hidden layer whose activation is written out (:data:`WRITTEN_OUT`)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(WRITTEN_OUT[self.kind](self.fc1(x)))


def hf_activation_mlp(name: str) -> nn.Module:
    from transformers.activations import ACT2CLS

    return nn.Sequential(nn.Linear(4, 8), ACT2CLS[name](), nn.Linear(8, 2))


def activation_mlp(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 2))


# --- sequences --------------------------------------------------------------------------------
class TextCNN(nn.Module):
    """Kim (2014): embeddings, 1-D convolutions over time, max over time, a linear head."""

    def __init__(self, vocab: int = 30, dim: int = 8):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.embedding(ids).transpose(1, 2)  # [B, D, T]
        x = F.relu(self.conv(x))
        return self.fc(torch.amax(x, dim=2))


class EmbeddingMean(nn.Module):
    """fastText-style: the mean of the token embeddings, a linear classifier."""

    def __init__(self):
        super().__init__()
        self.embedding, self.fc = nn.Embedding(40, 8), nn.Linear(8, 3)

    def forward(self, ids: Tensor) -> Tensor:
        return self.fc(self.embedding(ids).mean(dim=1))


class TinyTransformerLM(nn.Module):
    """A transformer encoder on embeddings plus a learned position embedding parameter, the
    mean of its tokens classified."""

    def __init__(self, vocab: int = 30, dim: int = 8, length: int = 7):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.5)
        layer = nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(ids) + self.pos).mean(dim=1))


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(4, 6, batch_first=True), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class TiedLM(nn.Module):
    """Embedding and output layer sharing one matrix (weight tying; refused)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.hidden = nn.Linear(8, 8)
        self.out = nn.Linear(8, 20, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: Tensor) -> Tensor:
        return self.out(torch.tanh(self.hidden(self.embed(ids))))


class TCNBlock(nn.Module):
    """A temporal convolution block with causal padding removed by slicing (a "chomp";
    refused: indexing along time)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, padding=2, dilation=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv(x)[:, :, :-2])
        return self.fc(h.mean(-1))


class Conv1dAudio(nn.Module):
    """A 1-D CNN on waveforms: strided convolutions, BatchNorm1d, global max pooling."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 8, 9, stride=4), nn.BatchNorm1d(8), nn.ReLU(),
                                      nn.MaxPool1d(2), nn.Conv1d(8, 8, 5, dilation=2),
                                      nn.BatchNorm1d(8), nn.ReLU(), nn.AdaptiveMaxPool1d(1))
        self.head = nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).squeeze(-1))


class BilinearPooling(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 5), nn.Linear(4, 5)

    def forward(self, x: Tensor) -> Tensor:
        return torch.bmm(self.a(x).unsqueeze(2), self.b(x).unsqueeze(1)).flatten(1)


class MaskedFill(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        return h.masked_fill(h < 0, 0.0)


class NanoGPT(nn.Module):
    """nanoGPT's forward: ``pos = torch.arange(0, t)``, ``wte(idx) + wpe(pos)``, blocks, a
    final LayerNorm and an untied head (its blocks as torch's pre-norm encoder layers)."""

    def __init__(self, vocab: int = 30, dim: int = 8, length: int = 12):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(length, dim)
        self.drop = nn.Dropout(0.1)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(
            dim, 2, 4 * dim, dropout=0.0, batch_first=True, norm_first=True) for _ in range(2))
        self.ln_f, self.lm_head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: Tensor) -> Tensor:
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class DropoutDefault(nn.Module):
    """``F.dropout(h, 0.5)`` without ``training=``: drops even in eval mode (refused)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5))
