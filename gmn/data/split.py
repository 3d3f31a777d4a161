"""Seeded train/val/test splits by image: every view of an image lands in the same split."""

from __future__ import annotations

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


def split_images(num_images: int, sizes=(0.7, 0.1, 0.2), seed: int = 0) -> dict[str, Tensor]:
    """A seeded random partition of image indices.

    Args:
        sizes: (train, val, test) as fractions summing to 1 or integer counts summing to
            ``num_images``.
    Returns:
        ``{"train" | "val" | "test": sorted image indices}``, none of them empty (sizes that
        leave a split empty raise ``ValueError``).
    """
    if len(sizes) != 3:
        raise ValueError(f"sizes must be (train, val, test), got {sizes!r}")
    if all(isinstance(s, int) for s in sizes):
        counts = list(sizes)
    else:
        if abs(sum(sizes) - 1.0) > 1e-6 or min(sizes) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {sizes!r}")
        counts = [round(f * num_images) for f in sizes[:2]]
        counts.append(num_images - sum(counts))
    if sum(counts) != num_images or min(counts) < 0:
        raise ValueError(f"split sizes {counts} do not partition {num_images} images")
    empty = [name for name, count in zip(SPLITS, counts) if count == 0]
    if empty:
        raise ValueError(f"split sizes {counts} of {num_images} images leave {empty} empty; "
                         "every split needs at least one image (more images, or other sizes)")
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed))
    parts = order.split(counts)
    return {name: part.sort().values for name, part in zip(SPLITS, parts)}


def inrs_of_images(image_index: Tensor, images: Tensor) -> Tensor:
    """Sorted indices of the INRs (``image_index`` [n_inrs] says each INR's image) of ``images``."""
    return torch.isin(image_index, images).nonzero().squeeze(1)
