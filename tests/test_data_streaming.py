"""Training that streams INRs from their shards: a bounded window in memory, every INR once
per epoch, the same rows as the whole set in memory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gmn.data.build import build_dataset
from gmn.data.dataset import INRDataset, ParameterRows
from gmn.data.fit import FitRecipe
from gmn.data.images import load_digits
from gmn.data.storage import ShardStore
from gmn.models.siren import SirenLayout
from gmn.train import TrainConfig, Trainer
from gmn.train.loaders import EpochSampler

SHARD = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 images × 2 views of tiny SIRENs in shards of 6 INRs (14 shards)."""
    out = tmp_path_factory.mktemp("stream") / "inrs"
    recipe = FitRecipe(layout=SirenLayout(hidden=(4, 4)), steps=3, target_psnr=None)
    build_dataset(load_digits().subset(range(40)), out, recipe=recipe, views=2, seed=1,
                  shard_size=SHARD, progress=False)
    return out


def test_local_order_is_a_permutation_that_stays_in_its_window():
    """Each epoch is a permutation; a window of two blocks is used up before the next opens."""
    blocks = torch.tensor([0, 5, 9, 16, 20, 27])
    sizes = (blocks[1:] - blocks[:-1]).tolist()
    sampler = EpochSampler(27, 4, seed=3, blocks=blocks, window=2)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        assert sorted(order.tolist()) == list(range(27)), "every sample once per epoch"
        block = (torch.searchsorted(blocks, order, right=True) - 1).tolist()
        remaining, window = list(sizes), set()
        for b in block:
            if b not in window:
                assert len(window) < 2 or all(remaining[w] == 0 for w in window), \
                    "a new window opens only when the open one is used up"
                window = {w for w in window if remaining[w]} | {b}
                window = window if len(window) <= 2 else {b}
            remaining[b] -= 1
    again = EpochSampler(27, 4, seed=3, blocks=blocks, window=2)
    again.set_epoch(2)
    assert list(again) == order.tolist(), "seeded by (seed, epoch)"
    again.set_epoch(2, skip_batches=2)
    assert list(again) == order[8:].tolist(), "a resumed epoch skips what it trained on"
    with pytest.raises(ValueError, match="blocks must ascend from 0 to the dataset size 27"):
        EpochSampler(27, 4, seed=0, blocks=torch.tensor([0, 30]))


def test_rows_read_from_shards_are_the_rows_held_in_memory(folder):
    whole = INRDataset.open(folder)
    streamed = INRDataset.open(folder, max_loaded_shards=1)
    indices = torch.tensor([70, 3, 45, 4, 11])
    rows = ParameterRows(streamed, indices)
    expected = whole.normalization(whole.weights(indices)).params
    got = torch.stack([params for params, _ in rows.__getitems__(list(range(5)))])
    assert torch.equal(got, expected)
    assert torch.equal(torch.stack([label for _, label in rows.__getitems__([0, 1])]),
                       whole.labels[indices[:2]])
    assert len(streamed.store._loaded) == 1, "the store keeps one shard"
    assert ParameterRows(whole, torch.arange(80)).shuffle_blocks().tolist() == \
        [0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66, 72, 78, 80]


def test_training_streams_a_dataset_larger_than_its_memory_cap(folder, tmp_path, monkeypatch):
    """The cap (two shards) is far below the dataset (14 shards): one epoch visits every INR
    once while the store never holds more than the cap."""
    dataset = INRDataset.open(folder, max_loaded_shards=2)
    shard_bytes = sum(v.numel() * v.element_size() for v in dataset.store._shard(0).values())
    cap, total = 2 * shard_bytes, len(dataset.store.shards) * shard_bytes
    assert total > 6 * cap
    held, visited = [], []
    original = ShardStore._shard

    def spy(store, index):
        out = original(store, index)
        held.append(sum(v.numel() * v.element_size() for s in store._loaded.values()
                        for v in s.values()))
        return out

    monkeypatch.setattr(ShardStore, "_shard", spy)
    rows = ParameterRows(dataset, torch.arange(len(dataset)))
    original_items = ParameterRows.__getitems__

    def record(self, positions):
        visited.extend(self.indices[torch.as_tensor(positions)].tolist())
        return original_items(self, positions)

    monkeypatch.setattr(ParameterRows, "__getitems__", record)
    config = TrainConfig(run_dir=str(tmp_path / "run"), epochs=1, batch_size=4, lr=1e-3,
                         monitor="val_accuracy", progress=False, shuffle_window=2,
                         tensorboard=False)
    params = dataset.template.num_params
    trainer = Trainer(lambda: nn.Linear(params, 10), rows, rows, config=config)
    visited.clear()
    trainer.fit()
    train_pass = visited[:len(dataset)]
    assert sorted(train_pass) == list(range(len(dataset))), "every INR once in the epoch"
    assert max(held) <= cap, f"held {max(held)} bytes against a cap of {cap}"


def test_a_dataset_without_blocks_cannot_take_a_shuffle_window(tmp_path):
    data = torch.utils.data.TensorDataset(torch.zeros(8, 3), torch.zeros(8, dtype=torch.long))
    config = TrainConfig(run_dir=str(tmp_path), epochs=1, batch_size=4, shuffle_window=2,
                         progress=False)
    with pytest.raises(ValueError, match="shuffle_window needs a training dataset with "
                                         "shuffle_blocks"):
        Trainer(lambda: nn.Linear(3, 2), data, data, config=config)
