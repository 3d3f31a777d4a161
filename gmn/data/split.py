"""Seeded train/val/test splits: of INR datasets by image (every view of an image lands in the
same split), of CNN zoos by model (:func:`gmn.zoo.store.split_models`), both cut by
:func:`random_partition`."""

from __future__ import annotations

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


def split_counts(total: int, sizes) -> list[int]:
    """(train, val, test) counts of ``total`` items: ``sizes`` are fractions summing to 1
    (train and val rounded, test the rest) or integer counts summing to ``total``.

    Raises:
        ValueError: sizes that are not three, fractions that do not sum to 1, counts that do
        not partition ``total``, naming them.
    """
    if len(sizes) != 3:
        raise ValueError(f"sizes must be (train, val, test), got {sizes!r}")
    if all(isinstance(s, int) for s in sizes):
        counts = list(sizes)
    else:
        if abs(sum(sizes) - 1.0) > 1e-6 or min(sizes) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {sizes!r}")
        counts = [round(f * total) for f in sizes[:2]]
        counts.append(total - sum(counts))
    if sum(counts) != total or min(counts) < 0:
        raise ValueError(f"split sizes {counts} do not partition {total} items")
    return counts


def random_partition(total: int, counts: list[int], seed: int) -> dict[str, Tensor]:
    """``{"train" | "val" | "test": positions}``: a seeded random permutation of
    ``range(total)`` cut into ``counts`` (each part in the permutation's order)."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return dict(zip(SPLITS, order.split(counts)))


def split_images(num_images: int, sizes=(0.7, 0.1, 0.2), seed: int = 0) -> dict[str, Tensor]:
    """A seeded random partition of image indices.

    Args:
        sizes: (train, val, test) as fractions summing to 1 or integer counts summing to
            ``num_images`` (:func:`split_counts`).
    Returns:
        ``{"train" | "val" | "test": sorted image indices}``, none of them empty (sizes that
        leave a split empty raise ``ValueError``).
    """
    counts = split_counts(num_images, sizes)
    empty = [name for name, count in zip(SPLITS, counts) if count == 0]
    if empty:
        raise ValueError(f"split sizes {counts} of {num_images} images leave {empty} empty; "
                         "every split needs at least one image (more images, or other sizes)")
    return {name: part.sort().values
            for name, part in random_partition(num_images, counts, seed).items()}


def inrs_of_images(image_index: Tensor, images: Tensor) -> Tensor:
    """Sorted indices of the INRs (``image_index`` [n_inrs] says each INR's image) of ``images``."""
    return torch.isin(image_index, images).nonzero().squeeze(1)
