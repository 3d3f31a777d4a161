"""``INRDataset``: one API for fitted INR folders and the public INR zoos.

It holds N INRs of one SIREN layout: labels, split indices, the raw parameters (as
:class:`gmn.graph.weights.Weights`), and ``ParameterGraph`` batches made by ONE
``GraphTemplate.batch`` call per minibatch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gmn.data.normalize import Normalize, layer_statistics
from gmn.data.storage import INR_DATASET, ShardStore, read_manifest
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import SirenLayout

Transform = Callable[[Weights, torch.Generator], Weights]


class _MemoryStore:
    """Stacked parameters held in memory (zoo readers, tests)."""

    def __init__(self, params: dict[str, Tensor]):
        self.params = params

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def gather(self, indices: Tensor) -> dict[str, Tensor]:
        return {k: v[indices] for k, v in self.params.items()}

    def shard_of(self, indices: Tensor) -> Tensor:
        return torch.zeros(len(indices), dtype=torch.long)  # one block in memory


class INRDataset:
    """N SIRENs with labels and a train/val/test split.

    Args:
        params: ``{state_dict key: Tensor[N, *shape]}`` (as the zoo files hold them) or a
            ``ShardStore``; :meth:`weights` gives them as ``Weights``.
        labels: [N] long.
        layout: the ``SirenLayout`` of every INR.
        splits: ``{"train" | "val" | "test": Tensor of INR indices}``.
        normalization: per-key ``{"mean", "std"}`` (default: computed on the train split).
        info: per-INR and descriptive extras (``psnr``, ``image_ids``, the manifest, …).
    """

    def __init__(self, params, labels: Tensor, layout: SirenLayout, splits: dict[str, Tensor],
                 *, normalization: dict | None = None, info: dict | None = None):
        self.store = params if isinstance(params, ShardStore) else _MemoryStore(params)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if self.labels.shape != (len(self.store),):
            raise ValueError(
                f"{len(self.store)} INRs but labels of shape {tuple(self.labels.shape)}"
            )
        self.layout = layout
        self.splits = {k: torch.as_tensor(v, dtype=torch.long) for k, v in splits.items()}
        self.info = info or {}
        self._normalization = normalization
        self._template = None

    @classmethod
    def open(cls, folder, *, verify: bool = True, max_loaded_shards: int | None = None
             ) -> INRDataset:
        """A built dataset folder; a shard is hash-checked on its first read. At most
        ``max_loaded_shards`` shards are held in memory at once (None: every shard read)."""
        manifest = read_manifest(folder, INR_DATASET)
        store = ShardStore(folder, manifest["shards"], manifest["keys"], verify=verify,
                           max_loaded=max_loaded_shards)
        return cls(
            store,
            torch.tensor(manifest["labels"]),
            SirenLayout.from_dict(manifest["layout"]),
            {k: torch.tensor(manifest["split"][k], dtype=torch.long)
             for k in ("train", "val", "test")},
            normalization=manifest["normalization"]["stats"],
            info={"psnr": torch.tensor(manifest["psnr"]),
                  "image_ids": torch.tensor(manifest["image_ids"]),
                  "view": torch.tensor(manifest["view"]),
                  "manifest": manifest, "folder": str(Path(folder))},
        )

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"INRDataset({len(self)} INRs, {sizes}, layout={self.layout})"

    def content_sha256(self) -> str:
        """sha256 of everything the INRs say: every parameter (keys in sorted order), the
        labels and the split indices. Two datasets with one digest hold the same data."""
        digest = hashlib.sha256()
        params = self.weights().stacked()
        for key in sorted(params):
            digest.update(key.encode())
            digest.update(params[key].contiguous().numpy().tobytes())
        digest.update(self.labels.numpy().tobytes())
        for name in sorted(self.splits):
            digest.update(name.encode())
            digest.update(self.splits[name].numpy().tobytes())
        return digest.hexdigest()

    def split_indices(self, split: str) -> Tensor:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; this dataset has {sorted(self.splits)}")
        return self.splits[split]

    def weights(self, indices=None) -> Weights:
        """The raw parameters of the INRs ``indices`` (default all)."""
        if indices is None:
            indices = torch.arange(len(self))
        stacked = self.store.gather(torch.as_tensor(indices, dtype=torch.long))
        return Weights.from_stacked(self.template, stacked)

    @property
    def normalization(self) -> Normalize:
        """Per-layer normalisation with statistics of the train split."""
        if self._normalization is None:
            self._normalization = layer_statistics(
                self.weights(self.split_indices("train")))
        return Normalize(self._normalization)

    @property
    def template(self):
        """The ``GraphTemplate`` of the layout (built once)."""
        if self._template is None:
            self._template = GraphTemplate.from_module(self.layout.build())
        return self._template

    def graphs(self, indices, transform: Transform | None = None,
               generator: torch.Generator | None = None, normalize: bool = False):
        """A PyG ``Batch`` of the INRs ``indices`` (with ``y``), from one ``template.batch``."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        weights = self.weights(indices)
        if transform is not None:
            weights = transform(weights, generator)
        if normalize:
            weights = self.normalization(weights)
        return weights.graphs(y=self.labels[indices])

    def loader(self, split: str, batch_size: int = 64, *, shuffle: bool | None = None,
               seed: int = 0, transform: Transform | None = None, normalize: bool = True,
               drop_last: bool = False) -> DataLoader:
        """Minibatches of graphs of ``split`` (shuffled by default for ``"train"``, seeded)."""
        indices = self.split_indices(split)
        shuffle = split == "train" if shuffle is None else shuffle
        return DataLoader(
            indices.tolist(), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=GraphCollate(self, transform, normalize, seed),
        )


class ParameterRows(Dataset):
    """The INRs ``indices`` of an :class:`INRDataset` as a map-style dataset of ``(params [P],
    label)`` pairs, read from its store batch by batch (a ``DataLoader`` fetches a whole batch
    with one :meth:`__getitems__`), normalised per layer with the train-split statistics
    unless ``normalize`` is false. Nothing is held but what the store keeps loaded: opened
    with ``max_loaded_shards``, a dataset larger than memory trains in a bounded window, in
    an order that stays within a few shards at a time (:meth:`shuffle_blocks`)."""

    def __init__(self, dataset: INRDataset, indices, normalize: bool = True):
        self.dataset = dataset
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.normalization = dataset.normalization if normalize else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor]:
        return self.__getitems__([position])[0]

    def __getitems__(self, positions: list[int]) -> list[tuple[Tensor, Tensor]]:
        indices = self.indices[torch.as_tensor(positions, dtype=torch.long)]
        weights = self.dataset.weights(indices)
        if self.normalization is not None:
            weights = self.normalization(weights)
        return list(zip(weights.params.unbind(0), self.dataset.labels[indices].unbind(0)))

    def shuffle_blocks(self) -> Tensor:
        """[B + 1] ascending positions where the shard of consecutive rows changes (the
        blocks a shard-local training order shuffles, ``TrainConfig.shuffle_window``)."""
        shard = self.dataset.store.shard_of(self.indices)
        change = (shard[1:] != shard[:-1]).nonzero().squeeze(1) + 1
        return torch.cat([torch.zeros(1, dtype=torch.long), change,
                          torch.tensor([len(self.indices)])])


class GraphCollate:
    """Turns a list of INR indices into one graph ``Batch`` (augmentations seeded by ``seed``)."""

    def __init__(self, dataset: INRDataset, transform: Transform | None, normalize: bool,
                 seed: int):
        self.dataset, self.transform, self.normalize = dataset, transform, normalize
        self.generator = torch.Generator().manual_seed(seed + 1)

    def __call__(self, indices: list[int]):
        return self.dataset.graphs(indices, self.transform, self.generator, self.normalize)
