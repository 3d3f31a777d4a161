"""Data loaders the trainer builds itself, so that it owns the data order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from gmn.train.batch import is_graph_data


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
