"""`derive_seed`: the one way gmn derives a seed from several integers.

Training (data order, dropout, augmentation per step and rank) and INR fitting (each INR's
initialisation from the run seed, image id and view) both use it, so "seed 3, image 7,
view 1" means one thing everywhere.
"""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends only on ``parts`` (NumPy's ``SeedSequence``: stable across
    runs, platforms and processes)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)
    return int(state[0]) & (2**63 - 1)
