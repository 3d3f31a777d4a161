"""The CNN zoo builder: seeded (bit for bit), resumable after a kill, verified on read, and the
stored weights are the networks whose accuracy is recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gmn.data.storage import IntegrityError
from gmn.graph.mixed_batches import to_state_dicts
from gmn.zoo.build import ZooConfig, build_zoo, load_split_images, plan_jobs
from gmn.zoo.grouped_cnn import grouped_accuracy
from gmn.zoo.store import ModelZoo, split_models

TINY = dict(models=6, architectures=3, reference_share=0.34, group_size=2, train_images=200,
            max_epochs=2)
ROOT = Path(__file__).resolve().parents[1]


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def zoo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    build_zoo(folder, ZooConfig(**TINY), progress=False)
    return folder


def test_same_seed_same_zoo_bit_for_bit(zoo_folder, tmp_path):
    build_zoo(tmp_path, ZooConfig(**TINY), progress=False)
    assert files_of(tmp_path) == files_of(zoo_folder)
    other = tmp_path / "other"
    build_zoo(other, ZooConfig(**dict(TINY, seed=1)), progress=False)
    assert (other / "shard-00000.safetensors").read_bytes() != (
        zoo_folder / "shard-00000.safetensors").read_bytes()


def test_stored_weights_have_the_recorded_accuracy(zoo_folder):
    zoo = ModelZoo(zoo_folder)
    (_, _), (x, y) = load_split_images(ZooConfig(**TINY))
    assert len(zoo) == TINY["models"] and len(zoo.architectures) == TINY["architectures"]
    for index, record in enumerate(zoo.models):
        model = zoo.module(index)
        with torch.no_grad():
            accuracy = (model(x).argmax(1) == y).double().mean().item()
        assert accuracy == pytest.approx(record["test_accuracy"], abs=1.5 / len(y)), index
        assert len(record["accuracy"]) == record["epochs"] == record["hyper"]["epochs"]
    # the grouped forward used in training agrees with the modules on every model
    for arch, members, weights in zoo.grouped(torch.arange(len(zoo))):
        stacked = {k: v.contiguous() for k, v in weights.stacked().items()}  # as trained
        grouped = grouped_accuracy(zoo.architectures[arch], stacked, x, y)
        assert torch.allclose(grouped, zoo.targets()[members], atol=1.5 / len(y))


def test_graphs_round_trip_to_the_stored_state_dicts(zoo_folder):
    zoo = ModelZoo(zoo_folder)
    order = torch.tensor([5, 0, 3, 1, 4, 2])
    batch, graph_models = zoo.graphs(order)
    assert sorted(graph_models.tolist()) == list(range(6))
    assert batch.num_graphs == 6
    for model, state in zip(graph_models.tolist(), to_state_dicts(batch)):
        expected = zoo.state_dict(model)
        assert list(state) == list(expected)
        assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_kill_and_resume_gives_the_uninterrupted_zoo(zoo_folder, tmp_path):
    config = {k.replace("_", "-"): v for k, v in TINY.items()}
    command = [sys.executable, "-m", "benchmarks.cnn_zoo", "build", "--out", str(tmp_path),
               "--no-progress"] + [f"--{k}={v}" for k, v in config.items()]
    jobs = len(plan_jobs(ZooConfig(**TINY))[1])
    process = subprocess.Popen(command, cwd=ROOT)
    first = tmp_path / "shard-00000.safetensors"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = sorted(tmp_path.glob("shard-*.safetensors"))
    assert first.exists() and 0 < len(written) < jobs, "the kill must land mid-build"
    assert not (tmp_path / "manifest.json").exists()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    assert files_of(tmp_path) == files_of(zoo_folder)


def test_a_changed_shard_is_refused_with_its_name(zoo_folder, tmp_path):
    build_zoo(tmp_path, ZooConfig(**TINY), progress=False)
    shard = tmp_path / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    zoo = ModelZoo(tmp_path)
    model = next(i for i, m in enumerate(zoo.models) if m["shard"] == shard.name)
    with pytest.raises(IntegrityError, match="shard-00001.safetensors"):
        zoo.state_dict(model)


def test_an_edited_zoo_manifest_is_refused_with_its_name(zoo_folder, tmp_path):
    for path in zoo_folder.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["models"][0]["test_accuracy"] = 0.99  # still valid JSON: only its hash tells
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"manifest\.json: its content does not match"):
        ModelZoo(tmp_path)


def test_a_damaged_shard_whose_manifest_was_deleted_is_trained_again(zoo_folder, tmp_path):
    """A zoo shard carries the hash of its own content: with the manifest lost, a resumed
    build still catches a damaged shard instead of writing a manifest that vouches for it."""
    for path in zoo_folder.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "manifest.json").unlink()
    shard = tmp_path / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # a weight's byte: the file still parses
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"shard-00001\.safetensors: its content does not "
                                         r"match.*training shard-00001\.safetensors again"):
        build_zoo(tmp_path, ZooConfig(**TINY), progress=False)
    assert files_of(tmp_path) == files_of(zoo_folder)


def test_a_different_config_in_the_same_folder_is_refused(zoo_folder):
    with pytest.raises(ValueError, match="max_epochs"):
        build_zoo(zoo_folder, ZooConfig(**dict(TINY, max_epochs=3)), progress=False)


def test_splits_hold_out_architectures_and_normalise_per_architecture(zoo_folder):
    zoo = ModelZoo(zoo_folder)
    held = sorted(zoo.architectures)[-1]
    split = split_models(zoo, (0.5, 0.25, 0.25), seed=3, held_out=[held])
    assert sorted(torch.cat(list(split.values())).tolist()) == list(range(len(zoo)))
    for name in ("train", "val"):
        assert held not in {zoo.architecture_of[i] for i in split[name].tolist()}
    assert {i for i, a in enumerate(zoo.architecture_of) if a == held} <= set(
        split["test"].tolist())
    again = split_models(zoo, (0.5, 0.25, 0.25), seed=3, held_out=[held])
    assert all(torch.equal(split[k], again[k]) for k in split)
    stats = zoo.normalization(split["train"])
    assert held not in stats
    arch = zoo.architecture_of[int(split["train"][0])]
    members = [i for i in split["train"].tolist() if zoo.architecture_of[i] == arch]
    weights = torch.stack([zoo.state_dict(i)["head.weight"] for i in members]).double()
    assert stats[arch].stats["head.weight"]["mean"] == pytest.approx(weights.mean().item())
    with pytest.raises(KeyError, match="nope"):
        split_models(zoo, held_out=["nope"])
    with pytest.raises(ValueError, match="sum to 1"):  # once silently cut as (0.5, 0.5, rest)
        split_models(zoo, (0.5, 0.5, 0.5))


def test_split_models_cuts_a_seeded_permutation_of_the_pool(zoo_folder):
    """Known answer, written out independently: permute the non-held-out models with the
    seed, round the train and val counts, the rest plus every held-out model is test."""
    zoo = ModelZoo(zoo_folder)
    held = sorted(zoo.architectures)[0]
    models = torch.tensor([5, 0, 3, 1, 4, 2])
    held_models = torch.tensor([zoo.architecture_of[i] == held for i in models.tolist()])
    pool = models[~held_models]
    order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(7))]
    n_train, n_val = round(0.5 * len(pool)), round(0.25 * len(pool))
    expected = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
                "test": torch.cat([order[n_train + n_val:], models[held_models]])}
    split = split_models(zoo, (0.5, 0.25, 0.25), seed=7, models=models, held_out=[held])
    assert {k: v.tolist() for k, v in split.items()} == {
        k: sorted(v.tolist()) for k, v in expected.items()}


def test_manifest_specs_are_plain_json(zoo_folder):
    manifest = json.loads((zoo_folder / "manifest.json").read_text())
    assert manifest["format"] == "gmn.model-zoo"
    for spec in manifest["architectures"].values():
        assert spec["family"] == "zoo_cnn"
        assert json.loads(json.dumps(spec)) == spec
