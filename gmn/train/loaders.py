"""How the trainer feeds data: loaders it builds itself, so that it owns the data order.

``LoaderSpec`` is everything of a ``DataLoader`` except its order; ``EpochSampler`` is the
training order (seeded per epoch, split across processes, resumable mid-epoch) and
``shard_indices`` the evaluation shard of one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from gmn.batches import is_graph_data
from gmn.seeding import derive_seed


@dataclass
class LoaderSpec:
    """How to batch one dataset: everything of a ``DataLoader`` except its order."""

    dataset: Dataset
    batch_size: int
    collate_fn: Callable
    num_workers: int = 0
    pin_memory: bool = False
    drop_last: bool = False

    @classmethod
    def of(cls, data: Dataset | DataLoader, batch_size: int | None, num_workers: int = 0):
        """From a ``DataLoader`` (its dataset, batch size, collate function and workers
        are kept; its sampler and ``shuffle`` are replaced by the trainer's seeded order)
        or from a dataset (graphs are batched into a PyG ``Batch``, anything else with
        ``default_collate``)."""
        if isinstance(data, DataLoader):
            if data.batch_size is None:
                raise ValueError(
                    "a DataLoader with a custom batch_sampler cannot be re-ordered by the "
                    "trainer; pass a DataLoader with batch_size= or the dataset itself"
                )
            return cls(
                data.dataset,
                data.batch_size,
                data.collate_fn,
                data.num_workers,
                data.pin_memory,
                data.drop_last,
            )
        if batch_size is None:
            raise ValueError("batch_size is required when a dataset (not a DataLoader) is given")
        return cls(data, batch_size, _collate_for(data), num_workers)

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self, sampler, seed: int, batch_size: int | None = None, drop_last=None):
        """A ``DataLoader`` drawing from ``sampler``; ``seed`` fixes the worker seeds."""
        return DataLoader(
            self.dataset,
            batch_size=batch_size or self.batch_size,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=self.drop_last if drop_last is None else drop_last,
            generator=torch.Generator().manual_seed(seed),
        )


def _collate_for(dataset) -> Callable:
    if len(dataset) > 0 and is_graph_data(dataset[0]):
        from torch_geometric.loader.dataloader import Collater

        return Collater(dataset)
    return default_collate


class EpochSampler(Sampler[int]):
    """Training order for one process: the same permutation on every rank, seeded by
    ``(seed, epoch)``, dealt out round-robin (rank ``r`` takes positions ``r, r+K, ...``).

    The permutation is padded by wrapping around so every rank gets the same number of
    samples (as ``DistributedSampler`` does). With ``K`` ranks and a per-rank batch ``b``,
    one step sees the same samples as a single process with batch ``K*b``.

    ``set_epoch(epoch, skip_batches)`` fixes the epoch and drops the batches a resumed
    run has already trained on.

    With ``blocks`` ([B + 1] ascending positions, e.g. where a dataset's shards change) the
    order stays local: the blocks are shuffled, then cut into windows of ``window`` blocks,
    and each window is shuffled within itself, so a dataset that holds ``window`` shards in
    memory streams through them once per epoch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        blocks: torch.Tensor | None = None,
        window: int = 1,
    ):
        if size < world_size:
            raise ValueError(f"{size} training samples cannot be split over {world_size} ranks")
        if blocks is not None and (int(blocks[0]) != 0 or int(blocks[-1]) != size
                                   or bool((blocks[1:] < blocks[:-1]).any()) or window < 1):
            raise ValueError(f"blocks must ascend from 0 to the dataset size {size} and window "
                             f"must be >= 1, got blocks {blocks.tolist()[:4]}... window {window}")
        self.blocks, self.window = blocks, window
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches * self.batch_size

    def per_rank(self) -> int:
        """Samples each rank sees per epoch."""
        return -(-self.size // self.world_size)

    def __iter__(self):
        if self.shuffle and self.blocks is not None:
            order = self._local_order()
        elif self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        padding = self.per_rank() * self.world_size - self.size
        order = torch.cat([order, order[:padding]])
        return iter(order[self.rank :: self.world_size][self.skip :].tolist())

    def __len__(self) -> int:
        return max(self.per_rank() - self.skip, 0)

    def _local_order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        starts, stops = self.blocks[:-1], self.blocks[1:]
        shuffled = torch.randperm(len(starts), generator=generator)
        parts = []
        for first in range(0, len(shuffled), self.window):
            chosen = shuffled[first:first + self.window].tolist()
            window = torch.cat([torch.arange(int(starts[b]), int(stops[b])) for b in chosen])
            parts.append(window[torch.randperm(len(window), generator=generator)])
        return torch.cat(parts)


def shard_indices(size: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Evaluation shard of one rank: positions ``rank, rank+K, ...``; no padding, so the
    shards of all ranks cover ``0..size-1`` exactly once."""
    return list(range(rank, size, world_size))
