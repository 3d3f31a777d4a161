"""Data order: seeded per epoch, split across processes, resumable mid-epoch."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from gmn.train.seed import derive_seed


class EpochSampler(Sampler[int]):
    """Training order for one process: the same permutation on every rank, seeded by
    ``(seed, epoch)``, dealt out round-robin (rank ``r`` takes positions ``r, r+K, ...``).

    The permutation is padded by wrapping around so every rank gets the same number of
    samples (as ``DistributedSampler`` does). With ``K`` ranks and a per-rank batch ``b``,
    one step sees the same samples as a single process with batch ``K*b``.

    ``set_epoch(epoch, skip_batches)`` fixes the epoch and drops the batches a resumed
    run has already trained on.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if size < world_size:
            raise ValueError(f"{size} training samples cannot be split over {world_size} ranks")
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches * self.batch_size

    def per_rank(self) -> int:
        """Samples each rank sees per epoch."""
        return -(-self.size // self.world_size)

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        padding = self.per_rank() * self.world_size - self.size
        order = torch.cat([order, order[:padding]])
        return iter(order[self.rank :: self.world_size][self.skip :].tolist())

    def __len__(self) -> int:
        return max(self.per_rank() - self.skip, 0)


def shard_indices(size: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Evaluation shard of one rank: positions ``rank, rank+K, ...``; no padding, so the
    shards of all ranks cover ``0..size-1`` exactly once."""
    return list(range(rank, size, world_size))
