"""Seeding: one seed fixes initialisation, data order, augmentation and INR fitting.

May import: nothing of gmn.

:func:`derive_seed` is the one way gmn derives a seed from several integers. Training (data
order, dropout, augmentation per step and rank) and INR fitting (each INR's initialisation
from the run seed, image id and view) both use it, so "seed 3, image 7, view 1" means one
thing everywhere. RNG states are captured as tensors and plain Python values so that a
checkpoint holding them loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends only on ``parts`` (NumPy's ``SeedSequence``: stable across
    runs, platforms and processes)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)
    return int(state[0]) & (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state(device: torch.device | None = None) -> dict:
    """The state of the global generators (Python, NumPy, torch CPU and, for a CUDA
    ``device``, that device's generator only), as tensors and plain values."""
    cuda = device is not None and device.type == "cuda"
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if cuda else None,
    }


def restore_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Inverse of :func:`capture_rng_state` (with the same ``device``)."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
