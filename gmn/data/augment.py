"""Augmentations of B SIRENs held in a :class:`gmn.graph.weights.Weights`, vectorised over B.

Every random transform is an :class:`Augmentation`: ``(weights, generator) -> weights`` drawing
from the given ``torch.Generator`` (one draw per INR), so a seeded loader gives the same
augmentations. The same object is a ``gmn.train.Trainer`` transform: called on a training batch
``(inputs, targets)`` it augments the inputs and keeps the targets.
The input-space transforms act on the first layer only, which sees the coordinates (y, x):
with W, b the first layer, ``scale_inputs``/``rotate_inputs``/``translate_inputs`` make the INR
compute f(s·x), f(R x) and f(x + t) respectively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gmn.graph.permutation import permute
from gmn.graph.signs import flip_signs
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights

FIRST_WEIGHT, FIRST_BIAS = "seq.0.weight", "seq.0.bias"


def _first_layer(weights: Weights) -> tuple[Tensor, Tensor]:
    """The first layer's weight [B, hidden, in] and bias [B, hidden] (views)."""
    stacked = weights.stacked()
    return stacked[FIRST_WEIGHT], stacked[FIRST_BIAS]


def _on(generator: torch.Generator | None) -> torch.device | None:
    """Where ``generator`` draws: a CUDA generator (the Trainer's on a GPU) cannot fill a
    CPU tensor, so draws happen on its device and are then moved next to the parameters."""
    return None if generator is None else generator.device


def _uniform(n: int, low: float, high: float, like: Tensor, generator) -> Tensor:
    draw = torch.rand(n, generator=generator, dtype=like.dtype, device=_on(generator))
    return (low + (high - low) * draw).to(like.device)


def scale_inputs(weights: Weights, factor: Tensor) -> Weights:
    """f(x) → f(factor·x): first-layer weights times ``factor`` [B]."""
    weight, _ = _first_layer(weights)
    return weights.replace({FIRST_WEIGHT: weight * factor.view(-1, 1, 1)})


def rotate_inputs(weights: Weights, angle: Tensor) -> Weights:
    """f(x) → f(R(angle) x) for 2-D coordinates; ``angle`` [B] in radians (W ← W R)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    weight, _ = _first_layer(weights)
    return weights.replace({FIRST_WEIGHT: weight @ rotation.to(weight)})


def translate_inputs(weights: Weights, shift: Tensor) -> Weights:
    """f(x) → f(x + shift), ``shift`` [B, in_features] in coordinate units (b ← b + W shift).

    On an H×W ``image_grid`` a shift of 2k/(H−1) along y moves the picture up by k rows.
    """
    weight, bias = _first_layer(weights)
    return weights.replace(
        {FIRST_BIAS: bias + (weight @ shift.to(weight).unsqueeze(-1)).squeeze(-1)})


class Augmentation:
    """A random transform of N networks: subclasses define :meth:`apply`.

    Called with

    * ``Weights`` → the augmented ``Weights``;
    * a ``[B, P]`` parameter tensor → the augmented tensor, read with ``template`` (given to the
      constructor of :class:`Compose`; the standardised or raw parameter vectors a loader of
      flat vectors yields);
    * a pair ``(inputs, targets)`` (a ``Trainer`` batch) → ``(augmented inputs, targets)``.
    """

    template: GraphTemplate | None = None

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        raise NotImplementedError

    def __call__(self, data, generator: torch.Generator | None):
        if isinstance(data, Weights):
            return self.apply(data, generator)
        if isinstance(data, Tensor):
            if self.template is None:
                raise TypeError(f"{type(self).__name__} got a [B, P] parameter tensor but has no "
                                "template to read it with: wrap it in Compose([...], "
                                "template=template)")
            return self.apply(Weights(self.template, data, allow_nonfinite=True),
                              generator).params
        if isinstance(data, (tuple, list)) and len(data) == 2:
            inputs, targets = data
            return self(inputs, generator), targets
        raise TypeError(f"{type(self).__name__} augments Weights, a [B, P] parameter tensor or "
                        f"an (inputs, targets) pair, got {type(data).__name__}")


class RandomPermutation(Augmentation):
    """An independent random hidden-neuron permutation per INR (the function is unchanged)."""

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        return permute(weights, generator)


class RandomSignFlip(Augmentation):
    """Flips each hidden neuron's sign with probability 1/2, independently per INR: its
    incoming weights, bias and outgoing weights are negated, which keeps the function of a
    network with odd activations such as SIREN's sine (:func:`gmn.graph.signs.flip_signs`)."""

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        return flip_signs(weights, generator)


class GaussianNoise(Augmentation):
    """Adds fresh N(0, std²) noise to every parameter at every call; ``std`` is one float or a
    [P] tensor, one std per parameter in template order (e.g. a multiple of each parameter's
    spread over a training set)."""

    def __init__(self, std: float | Tensor):
        self.std = torch.as_tensor(std, dtype=torch.float64).detach().clone()
        if self.std.dim() > 1:
            raise ValueError(f"a per-parameter std must be a [P] tensor, got {list(std.shape)}")

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        params = weights.params
        if self.std.dim() == 1 and self.std.shape[0] != params.shape[1]:
            raise ValueError(f"GaussianNoise has {self.std.shape[0]} stds for networks of "
                             f"{params.shape[1]} parameters")
        noise = torch.randn(params.shape, generator=generator, dtype=params.dtype,
                            device=_on(generator)).to(params.device)
        return weights.with_params(params + self.std.to(params) * noise)


class WeightDropout(Augmentation):
    """Zeroes each weight (not bias) with probability ``p`` and scales the rest by 1/(1-p)."""

    def __init__(self, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        stacked, out = weights.stacked(), {}
        for key in weights.template.keys:
            if key.endswith("weight"):
                value = stacked[key]
                keep = torch.rand(value.shape, generator=generator, device=_on(generator)) >= self.p
                out[key] = value * keep.to(value) / (1.0 - self.p)
        return weights.replace(out)


class RandomScale(Augmentation):
    """f(x) → f(s·x), s ~ U(low, high) per INR."""

    def __init__(self, low: float = 0.8, high: float = 1.2):
        self.low, self.high = low, high

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        like = weights.params
        return scale_inputs(weights, _uniform(len(weights), self.low, self.high, like, generator))


class RandomRotation(Augmentation):
    """f(x) → f(R x), angle ~ U(−max_degrees, max_degrees) per INR."""

    def __init__(self, max_degrees: float = 15.0):
        self.max_radians = math.radians(max_degrees)

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        angle = _uniform(len(weights), -self.max_radians, self.max_radians, weights.params,
                         generator)
        return rotate_inputs(weights, angle)


class RandomTranslation(Augmentation):
    """f(x) → f(x + t), each coordinate of t ~ U(−max_shift, max_shift) per INR."""

    def __init__(self, max_shift: float = 0.1):
        self.max_shift = max_shift

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        n, dims = len(weights), _first_layer(weights)[0].shape[-1]
        shift = _uniform(n * dims, -self.max_shift, self.max_shift, weights.params, generator)
        return translate_inputs(weights, shift.view(n, dims))


class RandomPixelShift(Augmentation):
    """The image moved by whole pixels: k ~ U{−max_pixels, …, max_pixels} rows and columns per
    INR, δ = k·2/(size − 1) on the H×W ``image_grid``, so it is still sampled at pixel centres
    (the rendered image is the shifted rendering, edges aside)."""

    def __init__(self, height: int, width: int, max_pixels: int = 1):
        if max_pixels < 0 or height < 2 or width < 2:
            raise ValueError(
                f"RandomPixelShift needs max_pixels >= 0 and an image of at least 2×2 pixels, "
                f"got max_pixels={max_pixels}, image {height}×{width}"
            )
        self.pixel = (2.0 / (height - 1), 2.0 / (width - 1))
        self.max_pixels = int(max_pixels)

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        like = weights.params
        k = torch.randint(-self.max_pixels, self.max_pixels + 1, (len(weights), 2),
                          generator=generator, device=_on(generator))
        return translate_inputs(weights, k.to(like) * like.new_tensor(self.pixel))


class Compose(Augmentation):
    """Applies transforms in order, sharing one generator; ``template`` reads [B, P] parameter
    tensors (see :class:`Augmentation`)."""

    def __init__(self, transforms: Sequence, template: GraphTemplate | None = None):
        self.transforms, self.template = list(transforms), template

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        for transform in self.transforms:
            weights = transform(weights, generator)
        return weights


class InRawSpace(Augmentation):
    """Applies ``transform`` to the networks' own parameters when ``weights`` hold an affine
    standardisation of them (``raw = params * scale + shift``, [P] each, e.g. per-layer
    statistics): the change it makes to the raw parameters is carried back,
    ``params + (transform(raw) − raw) / scale``, so entries it leaves alone stay bit-identical.

    Transforms that use the function (sign flips, pixel shifts) must see the raw parameters:
    negating a standardised value ``(w − m) / s`` is not negating ``w``.
    """

    def __init__(self, transform, scale: Tensor, shift: Tensor):
        if scale.shape != shift.shape or scale.dim() != 1:
            raise ValueError(f"InRawSpace takes a [P] scale and a [P] shift, got "
                             f"{list(scale.shape)} and {list(shift.shape)}")
        self.transform, self.scale, self.shift = transform, scale, shift

    def apply(self, weights: Weights, generator: torch.Generator | None) -> Weights:
        params = weights.params
        scale, shift = self.scale.to(params), self.shift.to(params)
        raw = weights.with_params(params * scale + shift)
        moved = self.transform(raw, generator).params
        return weights.with_params(params + (moved - raw.params) / scale)


def mixup(weights: Weights, labels: Tensor, num_classes: int,
          generator: torch.Generator | None, strength: float = 1.0) -> tuple[Weights, Tensor]:
    """Weight-space mixup: each INR i mixed with INR ``pairs[i]`` of the same batch,
    ``λ·θ_i + (1 − λ)·θ_pairs[i]`` with ``λ = 1 − strength·u``, u ~ U(0, 1) per INR, and the
    one-hot labels mixed alike.

    Meaningful only where parameter vectors are aligned, i.e. INRs fitted from one shared
    initialisation (their neurons correspond and the fits stay near it, so the function is
    near-linear in the parameters). Returns the mixed weights and soft targets [B, num_classes]
    (``nn.CrossEntropyLoss`` takes them as class probabilities).
    """
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"mixup strength must be in (0, 1], got {strength}")
    n, like = len(weights), weights.params
    pairs = torch.randperm(n, generator=generator, device=_on(generator)).to(like.device)
    lam = 1.0 - strength * _uniform(n, 0.0, 1.0, like, generator)
    params = lam[:, None] * like + (1.0 - lam[:, None]) * like[pairs]
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(like)
    targets = lam[:, None] * one_hot + (1.0 - lam[:, None]) * one_hot[pairs]
    return weights.with_params(params), targets
