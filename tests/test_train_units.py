"""Building blocks of gmn.train: checkpoints, RNG state, schedule, sampler, batches."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from gmn.seeding import capture_rng_state, derive_seed, restore_rng_state, seed_everything
from gmn.train import (
    CheckpointError,
    TrainConfig,
    gather_in_order,
    load_checkpoint,
    move_to,
    save_atomic,
    split_batch,
    warmup_cosine,
)
from gmn.train.loaders import EpochSampler, shard_indices


def test_checkpoint_round_trip_is_weights_only_and_leaves_no_temp_file(tmp_path):
    seed_everything(3)
    state = {"w": torch.randn(3, 4), "rng": capture_rng_state(), "meta": {"epoch": 2, "x": None}}
    path = save_atomic(state, tmp_path / "ck.pt")
    loaded = load_checkpoint(path)  # weights_only=True inside
    assert torch.equal(loaded["w"], state["w"]) and loaded["meta"] == state["meta"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary, no index


def test_save_atomic_replaces_old_file_and_clears_stale_temp(tmp_path):
    stale = tmp_path / ".ck.pt.999.tmp"
    stale.write_bytes(b"half a checkpoint")
    save_atomic({"v": torch.tensor(1)}, tmp_path / "ck.pt")
    save_atomic({"v": torch.tensor(2)}, tmp_path / "ck.pt")
    assert load_checkpoint(tmp_path / "ck.pt")["v"].item() == 2
    assert not stale.exists()


def test_corrupt_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"w": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"f": random.Random}, path)  # a class: only a full unpickler would load it
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_rng_state_restores_every_generator():
    seed_everything(11)
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(5)  # move on
    restore_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_derive_seed_depends_on_every_part():
    seeds = {derive_seed(0, r, s) for r in range(3) for s in range(50)}
    assert len(seeds) == 150 and derive_seed(1, 2) == derive_seed(1, 2)


def test_warmup_cosine_known_values():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = warmup_cosine(opt, total_steps=14, warmup_steps=4, min_lr_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    halfway = 2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert lrs[9] == pytest.approx(halfway)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # after the last update
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(opt, total_steps=3, warmup_steps=5)


def test_epoch_sampler_shards_partition_one_seeded_permutation():
    shards = []
    for rank in range(3):
        sampler = EpochSampler(10, batch_size=2, seed=5, rank=rank, world_size=3)
        sampler.set_epoch(4)
        shards.append(list(sampler))
    assert {len(s) for s in shards} == {4}  # 10 padded to 12
    merged = [i for step in zip(*shards) for i in step]
    single = EpochSampler(10, batch_size=6, seed=5)
    single.set_epoch(4)
    assert merged[:10] == list(single)  # rank-interleaved = single-process order
    single.set_epoch(5)
    assert merged[:10] != list(single)


def test_epoch_sampler_skip_resumes_the_same_order():
    sampler = EpochSampler(23, batch_size=4, seed=0)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, skip_batches=3)
    assert list(sampler) == full[12:] and len(sampler) == 11


def test_shard_indices_cover_each_sample_once():
    shards = [shard_indices(11, r, 4) for r in range(4)]
    assert sorted(i for s in shards for i in s) == list(range(11))


def test_gather_in_order_single_process_and_its_errors():
    rows = torch.arange(12.0).reshape(4, 3)
    out = gather_in_order(rows, torch.tensor([2, 0, 3, 1]), 4)
    assert torch.equal(out[2], rows[0]) and torch.equal(out[1], rows[3])
    with pytest.raises(ValueError, match="1 missing, 1 repeated"):
        gather_in_order(rows, torch.tensor([0, 0, 1, 2]), 4)


def test_split_batch_handles_pairs_and_graph_batches():
    x, y = torch.randn(4, 2), torch.arange(4)
    assert split_batch((x, y))[1] is y
    graphs = Batch.from_data_list([Data(x=torch.ones(3, 2), y=torch.tensor([i])) for i in range(3)])
    inputs, targets = split_batch(graphs)
    assert inputs is graphs and targets.tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="no 'y'"):
        split_batch(Batch.from_data_list([Data(x=torch.randn(2, 2))]))
    with pytest.raises(TypeError, match="dict"):
        split_batch({"x": x})


def test_move_to_keeps_structure():
    moved = move_to({"a": (torch.ones(1), [torch.zeros(2)]), "n": 3}, torch.device("cpu"))
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list) and moved["n"] == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"precision": "fp8"}, "precision"),
        ({"epochs": None}, "epochs, max_steps"),
        ({"patience": 0}, "patience"),
        ({"monitor": "train_loss"}, "monitor"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
