"""One trainer for every model family: seeded, resumable, mixed precision, DDP.

Owns the training loop and its run folder; knows nothing of graphs or models.
May import: gmn.files, gmn.seeding, gmn.batches.

``Trainer`` and ``TrainConfig`` cover training; the ``distributed`` helpers
(``map_in_order``, ``gather_in_order``, ``all_reduce_sum``, ...) let probes and CKA run
under ``torchrun``.

* :mod:`~gmn.train.trainer`: ``Trainer``, ``NonFiniteLossError``;
* :mod:`~gmn.train.config`: ``TrainConfig`` and its schedule ``warmup_cosine``;
* :mod:`~gmn.train.loaders`: the data order (``LoaderSpec``, ``EpochSampler``,
  ``shard_indices``);
* :mod:`~gmn.train.evaluation`: ``evaluate`` and ``map_in_order`` over a dataset split across
  processes;
* :mod:`~gmn.train.distributed`: process group and collectives (``init_distributed``,
  ``all_reduce_sum``, ``gather_in_order``, ...);
* :mod:`~gmn.train.run_folder`: verified checkpoints (``save_atomic``, ``load_checkpoint``)
  and the metric log.

``move_to``/``split_batch`` (:mod:`gmn.batches`) and ``seed_everything``/``derive_seed``
(:mod:`gmn.seeding`) live in gmn's shared modules and are re-exported here.
"""

from gmn.batches import move_to, split_batch
from gmn.seeding import derive_seed, seed_everything
from gmn.train.config import TrainConfig, warmup_cosine
from gmn.train.distributed import (
    DistContext,
    all_reduce_sum,
    gather_in_order,
    init_distributed,
    shutdown,
)
from gmn.train.evaluation import map_in_order
from gmn.train.run_folder import CheckpointError, load_checkpoint, save_atomic
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
