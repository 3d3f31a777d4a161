"""The two splits: one architecture family, and mixed architectures with some held out."""

from __future__ import annotations

import math
import random

import torch

from gmn.zoo.store import ModelZoo, split_models


def usable_models(zoo: ModelZoo) -> torch.Tensor:
    """Models whose weights are all finite (a diverged run cannot be converted)."""
    return torch.tensor([i for i, m in enumerate(zoo.models) if m.get("finite", True)])


def reference_architecture(zoo: ModelZoo) -> str:
    """The architecture with the most models (the zoo builder's reference family)."""
    counts = {a: zoo.architecture_of.count(a) for a in zoo.architectures}
    return max(counts, key=lambda a: (counts[a], -sorted(counts).index(a)))


def _published(zoo: ModelZoo, models: torch.Tensor) -> dict[str, torch.Tensor]:
    """The zoo's own split (a public zoo's), restricted to ``models``."""
    keep = set(models.tolist())
    return {k: torch.tensor([i for i in v.tolist() if i in keep], dtype=torch.long)
            for k, v in zoo.splits.items()}


def homogeneous_split(zoo: ModelZoo, seed: int) -> dict:
    """Train/val/test (70/15/15) of the reference architecture's models (a public zoo's own
    split when it ships one)."""
    arch = reference_architecture(zoo)
    models = usable_models(zoo)
    models = models[torch.tensor([zoo.architecture_of[i] == arch for i in models.tolist()])]
    split = (_published(zoo, models) if zoo.splits is not None
             else split_models(zoo, seed=seed, models=models))
    return {"split": split, "held_out": [], "architectures": [arch]}


def mixed_split(zoo: ModelZoo, seed: int, held_out_fraction: float = 0.25) -> dict:
    """All architectures; a seeded quarter of the non-reference ones only in test (a public
    zoo's own split when it ships one, e.g. CNN Wild Park's)."""
    if zoo.splits is not None:
        return {"split": _published(zoo, usable_models(zoo)), "held_out": [],
                "architectures": sorted(zoo.architectures)}
    reference = reference_architecture(zoo)
    others = sorted(a for a in zoo.architectures if a != reference)
    count = min(len(others), math.ceil(held_out_fraction * len(others))) if others else 0
    held_out = sorted(random.Random(seed).sample(others, count))
    split = split_models(zoo, seed=seed, models=usable_models(zoo), held_out=held_out)
    return {"split": split, "held_out": held_out, "architectures": sorted(zoo.architectures)}


SPLITS = {"homogeneous": homogeneous_split, "mixed": mixed_split}
