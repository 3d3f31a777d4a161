"""One trainer for every model family: seeded, resumable, mixed precision, DDP.

``Trainer`` and ``TrainConfig`` cover training; the ``distributed`` helpers
(``map_in_order``, ``gather_in_order``, ``all_reduce_sum``, ...) let probes and CKA run
under ``torchrun``.
"""

from gmn.train.batch import move_to, split_batch
from gmn.train.checkpoint import CheckpointError, load_checkpoint, save_atomic
from gmn.train.config import TrainConfig
from gmn.train.distributed import (
    DistContext,
    all_reduce_sum,
    gather_in_order,
    init_distributed,
    shutdown,
)
from gmn.train.schedule import warmup_cosine
from gmn.train.seed import derive_seed, seed_everything
from gmn.train.sharded import map_in_order
from gmn.train.trainer import NonFiniteLossError, Trainer

__all__ = [
    "CheckpointError",
    "DistContext",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "all_reduce_sum",
    "derive_seed",
    "gather_in_order",
    "init_distributed",
    "load_checkpoint",
    "map_in_order",
    "move_to",
    "save_atomic",
    "seed_everything",
    "shutdown",
    "split_batch",
    "warmup_cosine",
]
