"""Stage "inrs" of the editing benchmark: the classification benchmark's INRs (fitted into
``--out/inrs``, cached and verified there) and the task's images.

The task (as in DWSNets and neural-graphs): dilate the digit an INR draws. The target of an
INR is its source image dilated by a ``dilation`` × ``dilation`` square (a maximum filter:
``cv2.dilate`` with a kernel of ones); a model's edited INR is rendered on the same pixel
grid and compared with it. Image families read the input INR rendered on that grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.inr_classification.data import (
    BenchmarkData,
    load_source_images,
    prepare_data,
    standardise_images,
)
from gmn.data import render
from gmn.graph.weights import Weights

from .config import EditingConfig


def dilate(images: Tensor, size: int) -> Tensor:
    """[N, C, H, W] -> each pixel the maximum of its ``size`` × ``size`` neighbourhood (the
    border is not padded with values: a border pixel's neighbourhood is cut off)."""
    return F.max_pool2d(images, size, stride=1, padding=size // 2)


@dataclass
class EditingData:
    """``inrs``: the INRs (standardised parameters, template, split, the affine map back to
    the INRs' own parameters); ``inputs`` [N, C, H, W]: each INR rendered; ``targets``
    [N, C, H, W]: its dilated source image; ``key``: what decides them."""

    inrs: BenchmarkData
    inputs: Tensor
    targets: Tensor
    key: dict

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.targets.shape[-2:])

    def raw(self, params: Tensor) -> Weights:
        """Standardised parameters [B, P] -> the INRs' own (``Weights``)."""
        return raw_weights(self.inrs, params)


def raw_weights(inrs: BenchmarkData, params: Tensor) -> Weights:
    """Standardised parameters [B, P] of ``inrs`` -> the INRs' own (``Weights``)."""
    scale, shift = inrs.param_scale.to(params), inrs.param_shift.to(params)
    return Weights(inrs.template, params * scale + shift, allow_nonfinite=True)


def prepare_editing_data(config: EditingConfig, out: Path) -> EditingData:
    """Fit (or reuse) the INRs, render them, dilate their images."""
    inrs = prepare_data(config, out)
    images = load_source_images(config).images
    if not torch.allclose(standardise_images(images, inrs.split["train"]), inrs.images):
        raise RuntimeError("the source images are not those the INRs were fitted to")
    with torch.no_grad():
        inputs = render(raw_weights(inrs, inrs.params), *images.shape[-2:])
    return EditingData(inrs, inputs, dilate(images, config.dilation),
                       {**inrs.key, "dilation": config.dilation})
