"""Neural functionals with NP layers (Zhou et al. 2023, *Permutation Equivariant Neural
Functionals*): weight-space features in, weight-space features out.

An MLP of L layers has weights ``W_i`` [n_i, n_{i-1}] and biases ``b_i`` [n_i]. Weight-space
features give every weight and every bias a C-vector: :class:`WeightSpaceFeatures`, per
layer ``weights[i]`` [B, n_i, n_{i-1}, C] and ``biases[i]`` [B, n_i, C]. The NP layer
(:class:`NPLinear`) is the general linear map of such features that commutes with
permutations of the neurons of every layer, input and output neurons included (a larger
group than the hidden-neuron permutations, so it is equivariant to those too). Writing
``·`` for a mean over that index, an output weight feature is

    W'_i[j, k] = A W_i[j, k] + R(W_i[·, k], W_{i-1}[k, ·], b_{i-1}[k])
                 + S(W_i[j, ·], b_i[j], W_{i+1}[·, j]) + G(W_s[·, ·], b_s[·] for all s)

and an output bias feature ``b'_i[j] = T(W_i[j, ·], b_i[j], W_{i+1}[·, j]) + H(...)`` with
linear maps A, R, S, G, T, H over channels, one set per layer (terms that would read a layer
before the first or after the last are left out). Pooling every layer's weight and bias
features (:meth:`WeightSpaceFeatures.layer_means`) is invariant, which makes a classifier
(:class:`NFNClassifier`); a last NP layer with one output channel makes an editor that
outputs a change of every parameter (:class:`NFNEditor`). Inputs are lifted to many
channels by fixed Gaussian Fourier features of each scalar (:class:`GaussianFourierFeatures`),
as in the paper's INR experiments. With ``io_embedding`` a learned vector of each input and
output neuron is added once, which keeps the hidden-neuron equivariance but lets the model
tell input coordinates and output channels apart.

Supported networks: chains of ``nn.Linear`` layers, each with a bias (MLPs, SIRENs;
``gmn.graph.function_samples.sequential_spec``). Models read flat [B, P] parameter vectors
of a ``GraphTemplate`` (the same input as ``gmn.models.WeightMLP`` and
``gmn.nn.params_to_gmn.build_gmn``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from gmn.graph.function_samples import UnsupportedArchitectureError, sequential_spec


class WeightSpaceFeatures(NamedTuple):
    """Per layer i: ``weights[i]`` [B, n_i, n_{i-1}, C] and ``biases[i]`` [B, n_i, C]."""

    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    def map(self, fn) -> WeightSpaceFeatures:
        """``fn`` applied to every tensor (an elementwise activation, dropout)."""
        return WeightSpaceFeatures(tuple(fn(w) for w in self.weights),
                                   tuple(fn(b) for b in self.biases))

    def layer_means(self) -> Tensor:
        """[B, 2 L C]: per layer, the mean weight feature and the mean bias feature (invariant
        to every neuron permutation)."""
        parts = [w.mean((1, 2)) for w in self.weights] + [b.mean(1) for b in self.biases]
        return torch.cat(parts, dim=-1)


class MLPLayout:
    """Where each layer's weight [n_i, n_{i-1}] and bias [n_i] sit in a template's parameter
    vector: :meth:`split` [B, P] -> one-channel :class:`WeightSpaceFeatures`, :meth:`join`
    back. Raises ``ValueError`` for anything but a chain of ``nn.Linear`` layers with biases
    whose weights and biases are all its parameters."""

    def __init__(self, template):
        try:
            steps = sequential_spec(template).steps
        except UnsupportedArchitectureError as error:
            raise ValueError(f"NP layers read chains of nn.Linear layers ({error})") from error
        if any(step.bias_offset is None for step in steps):
            raise ValueError("NP layers need a bias in every layer")
        self.steps = steps
        self.widths = [steps[0].fan_in] + [step.fan_out for step in steps]
        self.num_params = template.num_params
        if sum(s.fan_out * (s.fan_in + 1) for s in steps) != self.num_params:
            raise ValueError("the template has parameters besides the layers' weights and biases")

    def __len__(self) -> int:
        return len(self.steps)

    def split(self, params: Tensor) -> WeightSpaceFeatures:
        """[B, P] -> features with C = 1 (views of ``params``)."""
        b = params.shape[0]
        weights, biases = [], []
        for s in self.steps:
            weight = params[:, s.weight_offset:s.weight_offset + s.fan_out * s.fan_in]
            weights.append(weight.reshape(b, s.fan_out, s.fan_in, 1))
            biases.append(params[:, s.bias_offset:s.bias_offset + s.fan_out].unsqueeze(-1))
        return WeightSpaceFeatures(tuple(weights), tuple(biases))

    def join(self, features: WeightSpaceFeatures) -> Tensor:
        """One-channel features -> [B, P] in the template's order."""
        b = features.weights[0].shape[0]
        parts = {}
        for s, w, bias in zip(self.steps, features.weights, features.biases):
            parts[s.weight_offset] = w.reshape(b, -1)
            parts[s.bias_offset] = bias.reshape(b, -1)
        return torch.cat([parts[offset] for offset in sorted(parts)], dim=1)


class GaussianFourierFeatures(nn.Module):
    """Each scalar x (C_in channels) -> ``[sin(2π x·B), cos(2π x·B)]``, 2 m channels, with a
    fixed random B [C_in, m] drawn from N(0, scale²) (a buffer).

    Shapes: ``forward(features with C_in channels) -> features with 2 m channels``."""

    def __init__(self, in_channels: int = 1, mapping_size: int = 64, scale: float = 3.0):
        super().__init__()
        self.register_buffer("frequencies", torch.randn(in_channels, mapping_size) * scale)
        self.out_channels = 2 * mapping_size

    def forward(self, features: WeightSpaceFeatures) -> WeightSpaceFeatures:
        def encode(x: Tensor) -> Tensor:
            angle = 2 * math.pi * (x @ self.frequencies.to(x.dtype))
            return torch.cat([angle.sin(), angle.cos()], dim=-1)

        return features.map(encode)


def _rows(x: Tensor) -> Tensor:
    """[B, n_i, n_{i-1}, C] -> [B, n_{i-1}, C]: the mean over output neurons."""
    return x.mean(1)


def _cols(x: Tensor) -> Tensor:
    """[B, n_i, n_{i-1}, C] -> [B, n_i, C]: the mean over input neurons."""
    return x.mean(2)


class NPLinear(nn.Module):
    """The NP-equivariant linear layer (module docstring) of an L-layer MLP's weight space.

    Args:
        num_layers: L.
        in_channels, out_channels: C_in, C_out.

    Shapes: ``forward(features with C_in channels) -> features with C_out channels``, each
    layer's shapes kept.
    """

    def __init__(self, num_layers: int, in_channels: int, out_channels: int):
        super().__init__()
        self.num_layers = num_layers
        c, o, L = in_channels, out_channels, num_layers
        self.pointwise = nn.ModuleList(nn.Linear(c, o) for _ in range(L))
        # inputs indexed by a layer's input neuron k: W_i[·, k] (+ W_{i-1}[k, ·], b_{i-1}[k])
        self.by_input = nn.ModuleList(
            nn.Linear(c * (3 if i > 0 else 1), o, bias=False) for i in range(L))
        # inputs indexed by a layer's output neuron j: W_i[j, ·], b_i[j] (+ W_{i+1}[·, j])
        width = [c * (3 if i < L - 1 else 2) for i in range(L)]
        self.by_output = nn.ModuleList(nn.Linear(width[i], o, bias=False) for i in range(L))
        self.bias_by_output = nn.ModuleList(nn.Linear(width[i], o) for i in range(L))
        self.pooled = nn.ModuleList(nn.Linear(2 * L * c, o, bias=False) for _ in range(L))
        self.bias_pooled = nn.ModuleList(nn.Linear(2 * L * c, o, bias=False) for _ in range(L))

    def forward(self, features: WeightSpaceFeatures) -> WeightSpaceFeatures:
        w, b = features
        if len(w) != self.num_layers:
            raise ValueError(f"NPLinear of {self.num_layers} layers got {len(w)}")
        pooled = features.layer_means()
        weights, biases = [], []
        for i in range(self.num_layers):
            by_input = [_rows(w[i])]
            if i > 0:
                by_input += [_cols(w[i - 1]), b[i - 1]]
            by_output = [_cols(w[i]), b[i]]
            if i < self.num_layers - 1:
                by_output.append(_rows(w[i + 1]))
            by_output = torch.cat(by_output, -1)
            weight = (self.pointwise[i](w[i])
                      + self.by_input[i](torch.cat(by_input, -1)).unsqueeze(1)
                      + self.by_output[i](by_output).unsqueeze(2)
                      + self.pooled[i](pooled)[:, None, None])
            bias = self.bias_by_output[i](by_output) + self.bias_pooled[i](pooled)[:, None]
            weights.append(weight)
            biases.append(bias)
        return WeightSpaceFeatures(tuple(weights), tuple(biases))


class NPBlock(nn.Module):
    """``NPLinear -> ReLU -> dropout``; returns :class:`WeightSpaceFeatures` (``gmn.probe``
    records their :meth:`~WeightSpaceFeatures.layer_means`)."""

    def __init__(self, num_layers: int, in_channels: int, out_channels: int,
                 dropout: float = 0.0):
        super().__init__()
        self.linear = NPLinear(num_layers, in_channels, out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, features: WeightSpaceFeatures) -> WeightSpaceFeatures:
        return self.linear(features).map(lambda x: self.dropout(torch.relu(x)))


class NFN(nn.Module):
    """[B, P] parameters -> weight-space features: Gaussian Fourier features of every weight
    and bias, (with ``io_embedding``, learned input- and output-neuron vectors), then one
    :class:`NPBlock` per entry of ``channels``.

    Args:
        template: the ``GraphTemplate`` of the networks read.
        channels: output channels of the NP blocks.
        fourier_size: m, half the channels of the Fourier features.
        fourier_scale: standard deviation of their frequencies (per unit of the input).
        dropout: dropout after every block.
        io_embedding: add a learned vector per input neuron (to ``weights[0]``'s columns) and
            per output neuron (to the last layer's rows and biases).

    Shapes: ``forward(params [B, P]) -> WeightSpaceFeatures`` with ``channels[-1]`` channels.
    """

    def __init__(self, template, channels: tuple[int, ...] = (128, 128, 128),
                 fourier_size: int = 64, fourier_scale: float = 3.0, dropout: float = 0.0,
                 io_embedding: bool = False):
        super().__init__()
        self.layout = MLPLayout(template)
        self.encode = GaussianFourierFeatures(1, fourier_size, fourier_scale)
        width, num_layers = self.encode.out_channels, len(self.layout)
        if io_embedding:
            self.input_embedding = nn.Parameter(torch.randn(self.layout.widths[0], width) * 0.1)
            self.output_embedding = nn.Parameter(torch.randn(self.layout.widths[-1], width) * 0.1)
        self.io_embedding = io_embedding
        widths = [width, *channels]
        self.blocks = nn.ModuleList(NPBlock(num_layers, a, b, dropout)
                                    for a, b in zip(widths[:-1], widths[1:]))
        self.out_channels = widths[-1]

    def forward(self, params: Tensor) -> WeightSpaceFeatures:
        features = self.encode(self.layout.split(params))
        if self.io_embedding:
            w, b = map(list, features)
            w[0] = w[0] + self.input_embedding.to(w[0])
            w[-1] = w[-1] + self.output_embedding.to(w[-1]).unsqueeze(1)
            b[-1] = b[-1] + self.output_embedding.to(b[-1])
            features = WeightSpaceFeatures(tuple(w), tuple(b))
        for block in self.blocks:
            features = block(features)
        return features


class NFNClassifier(nn.Module):
    """An invariant NFN: :class:`NFN` features, their per-layer means
    (:meth:`WeightSpaceFeatures.layer_means`, ``pool``), an MLP ``head``.

    Args:
        template, **nfn_options: see :class:`NFN`.
        num_classes: outputs.
        head_hidden: width of the head's two hidden layers.
        head_dropout: dropout in the head.

    Shapes: ``forward(params [B, P]) -> [B, num_classes]``.
    """

    def __init__(self, template, num_classes: int, head_hidden: int = 256,
                 head_dropout: float = 0.0, **nfn_options):
        super().__init__()
        self.nfn = NFN(template, **nfn_options)
        self.pool = LayerMeans()
        pooled = 2 * len(self.nfn.layout) * self.nfn.out_channels
        self.head = nn.Sequential(
            nn.Linear(pooled, head_hidden), nn.ReLU(), nn.Dropout(head_dropout),
            nn.Linear(head_hidden, head_hidden), nn.ReLU(), nn.Dropout(head_dropout),
            nn.Linear(head_hidden, num_classes))

    def forward(self, params: Tensor) -> Tensor:
        return self.head(self.pool(self.nfn(params)))


class LayerMeans(nn.Module):
    """``WeightSpaceFeatures -> [B, 2 L C]``: :meth:`WeightSpaceFeatures.layer_means`."""

    def forward(self, features: WeightSpaceFeatures) -> Tensor:
        return features.layer_means()


class NFNEditor(nn.Module):
    """An equivariant NFN that edits networks: ``params + join(NPLinear(NFN(params)))``, the
    last NP layer giving one channel (a change of every weight and bias; it starts at zero, so
    an untrained editor is the identity).

    Shapes: ``forward(params [B, P]) -> [B, P]`` (see :class:`NFN` for the options)."""

    def __init__(self, template, **nfn_options):
        super().__init__()
        self.nfn = NFN(template, **nfn_options)
        self.out = NPLinear(len(self.nfn.layout), self.nfn.out_channels, 1)
        for parameter in self.out.parameters():
            nn.init.zeros_(parameter)

    def forward(self, params: Tensor) -> Tensor:
        return params + self.nfn.layout.join(self.out(self.nfn(params)))
