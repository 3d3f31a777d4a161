"""Images for INR fitting: an ``ImageSet`` is images [N, C, H, W] in [0, 1] with labels.

This module holds the container, tensor input, resizing and scikit-learn's bundled digits;
the file readers (``gmn.data.idx``, ``gmn.data.cifar``) build on it, and
``gmn.data.sources.load_images`` picks a source by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class ImageSet:
    """images [N, C, H, W] float32 in [0, 1]; labels [N] long; ``source`` describes the origin
    (stored in a dataset's manifest)."""

    images: Tensor
    labels: Tensor
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must be [N] = [{self.images.shape[0]}], got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long)
        source = {**self.source, "subset": index.tolist()}
        return ImageSet(self.images[index], self.labels[index], source)


def from_tensor(images: Tensor, labels, *, scale: float | None = None, source: str = "tensor"):
    """Wrap any images [N, C, H, W] (or [N, H, W] grey) with labels [N].

    Integer images are divided by 255 unless ``scale`` is given; float images must already lie
    in [0, 1] (or give ``scale``), otherwise a ``ValueError`` says what range was found.
    """
    images = torch.as_tensor(images)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if scale is None and not images.is_floating_point():
        scale = 255.0
    images = images.float() / scale if scale is not None else images.float()
    low, high = images.min().item(), images.max().item()
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"images must lie in [0, 1] (pass scale=), found values in [{low:g}, {high:g}]"
        )
    labels = torch.as_tensor(labels, dtype=torch.long)
    return ImageSet(images.contiguous(), labels, {"name": source, "num_images": len(labels)})


def resize(images: ImageSet, size: int | tuple[int, int]) -> ImageSet:
    """Bilinear resize (antialiased when shrinking) to ``size``; values stay in [0, 1]."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    shrinking = size[0] < images.images.shape[-2] or size[1] < images.images.shape[-1]
    resized = F.interpolate(
        images.images, size=size, mode="bilinear", align_corners=False, antialias=shrinking
    ).clamp_(0.0, 1.0)
    return ImageSet(resized, images.labels, {**images.source, "size": list(size)})


def load_digits(size: int | tuple[int, int] | None = None) -> ImageSet:
    """scikit-learn's 1,797 8×8 handwritten digits (values 0…16 scaled to [0, 1]), optionally
    resized (e.g. ``size=28``)."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = from_tensor(torch.tensor(digits.images), digits.target, scale=16.0, source="digits")
    return resize(images, size) if size is not None else images
