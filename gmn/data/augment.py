"""Augmentations of stacked SIREN parameters ``{key: Tensor[B, *shape]}``, vectorised over B.

Every random transform is a callable ``(params, generator) -> params`` drawing from the given
``torch.Generator`` (one draw per INR), so a seeded loader gives the same augmentations.
The input-space transforms act on the first layer only, which sees the coordinates (y, x):
with W, b the first layer, ``scale_inputs``/``rotate_inputs``/``translate_inputs`` make the INR
compute f(s·x), f(R x) and f(x + t) respectively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gmn.models.siren import SirenLayout

Params = dict[str, Tensor]
FIRST_WEIGHT, FIRST_BIAS = "seq.0.weight", "seq.0.bias"


def _batch(params: Params) -> int:
    return params[FIRST_WEIGHT].shape[0]


def _on(generator: torch.Generator | None) -> torch.device | None:
    """Where ``generator`` draws: a CUDA generator (the Trainer's on a GPU) cannot fill a
    CPU tensor, so draws happen on its device and are then moved next to the parameters."""
    return None if generator is None else generator.device


def _uniform(n: int, low: float, high: float, like: Tensor, generator) -> Tensor:
    draw = torch.rand(n, generator=generator, dtype=like.dtype, device=_on(generator))
    return (low + (high - low) * draw).to(like.device)


def scale_inputs(params: Params, factor: Tensor) -> Params:
    """f(x) → f(factor·x): first-layer weights times ``factor`` [B]."""
    out = dict(params)
    out[FIRST_WEIGHT] = params[FIRST_WEIGHT] * factor.view(-1, 1, 1)
    return out


def rotate_inputs(params: Params, angle: Tensor) -> Params:
    """f(x) → f(R(angle) x) for 2-D coordinates; ``angle`` [B] in radians (W ← W R)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    out = dict(params)
    out[FIRST_WEIGHT] = params[FIRST_WEIGHT] @ rotation.to(params[FIRST_WEIGHT])
    return out


def translate_inputs(params: Params, shift: Tensor) -> Params:
    """f(x) → f(x + shift), ``shift`` [B, in_features] in coordinate units (b ← b + W shift).

    On an H×W ``image_grid`` a shift of 2k/(H−1) along y moves the picture up by k rows.
    """
    out = dict(params)
    weight = params[FIRST_WEIGHT]
    out[FIRST_BIAS] = params[FIRST_BIAS] + (weight @ shift.to(weight).unsqueeze(-1)).squeeze(-1)
    return out


class RandomPermutation:
    """An independent random hidden-neuron permutation per INR (the function is unchanged)."""

    def __init__(self, layout: SirenLayout):
        from gmn.graph.template import GraphTemplate

        self.template = GraphTemplate.from_module(layout.build())

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        from gmn.graph.permutation import permute

        return permute(self.template, params, generator)


class GaussianNoise:
    """Adds N(0, std²) noise to every parameter (fresh noise at every call)."""

    def __init__(self, std: float):
        self.std = float(std)

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        return {
            k: v + self.std * torch.randn(v.shape, generator=generator, dtype=v.dtype,
                                        device=_on(generator)).to(v.device)
            for k, v in params.items()
        }


class WeightDropout:
    """Zeroes each weight (not bias) with probability ``p`` and scales the rest by 1/(1-p)."""

    def __init__(self, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        out = {}
        for key, value in params.items():
            if key.endswith("weight"):
                keep = torch.rand(value.shape, generator=generator, device=_on(generator)) >= self.p
                value = value * keep.to(value) / (1.0 - self.p)
            out[key] = value
        return out


class RandomScale:
    """f(x) → f(s·x), s ~ U(low, high) per INR."""

    def __init__(self, low: float = 0.8, high: float = 1.2):
        self.low, self.high = low, high

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        like = params[FIRST_WEIGHT]
        return scale_inputs(params, _uniform(_batch(params), self.low, self.high, like, generator))


class RandomRotation:
    """f(x) → f(R x), angle ~ U(−max_degrees, max_degrees) per INR."""

    def __init__(self, max_degrees: float = 15.0):
        self.max_radians = math.radians(max_degrees)

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        like = params[FIRST_WEIGHT]
        angle = _uniform(_batch(params), -self.max_radians, self.max_radians, like, generator)
        return rotate_inputs(params, angle)


class RandomTranslation:
    """f(x) → f(x + t), each coordinate of t ~ U(−max_shift, max_shift) per INR."""

    def __init__(self, max_shift: float = 0.1):
        self.max_shift = max_shift

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        like = params[FIRST_WEIGHT]
        n, dims = _batch(params), like.shape[-1]
        shift = _uniform(n * dims, -self.max_shift, self.max_shift, like, generator)
        return translate_inputs(params, shift.view(n, dims))


class RandomPixelShift:
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

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        like = params[FIRST_WEIGHT]
        k = torch.randint(-self.max_pixels, self.max_pixels + 1, (_batch(params), 2),
                          generator=generator, device=_on(generator))
        return translate_inputs(params, k.to(like) * like.new_tensor(self.pixel))


class Compose:
    """Applies transforms in order, sharing one generator."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, params: Params, generator: torch.Generator | None) -> Params:
        for transform in self.transforms:
            params = transform(params, generator)
        return params
