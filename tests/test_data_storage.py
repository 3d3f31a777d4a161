"""Dataset folders: round trip, split by image, normalisation, hashes, kill-and-resume, torchrun."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest
import torch

from gmn.data.build import build_dataset
from gmn.data.dataset import INRDataset
from gmn.data.fit import FitRecipe, fit_inrs
from gmn.data.images import load_digits
from gmn.data.normalize import Normalize, layer_statistics
from gmn.data.split import split_images
from gmn.data.storage import INR_DATASET, IntegrityError, read_manifest, sha256

RECIPE = FitRecipe(steps=20, lr=1e-3, target_psnr=None)

BUILD_SCRIPT = """
import os, sys
import torch
import torch.distributed as dist
from gmn.data.build import build_dataset
torch.set_num_threads(1)  # tiny tensors: threads only add contention
from gmn.data.fit import FitRecipe
from gmn.data.images import load_digits
folder, count, steps, shard_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if "RANK" in os.environ:
    dist.init_process_group("gloo")
images = load_digits().subset(range(count))
build_dataset(images, folder, recipe=FitRecipe(steps=steps, lr=1e-3, target_psnr=None),
              views=2, seed=3, shard_size=shard_size, progress=False)
if dist.is_initialized():
    dist.destroy_process_group()
"""


def folder_contents(folder):
    return {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.name != "build.json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inrs")
    images = load_digits().subset(range(10))
    build_dataset(images, folder, recipe=RECIPE, views=2, seed=3, shard_size=6,
                  split=(6, 2, 2), progress=False)
    return folder, images


def test_stored_parameters_equal_a_direct_fit(built):
    folder, images = built
    dataset = INRDataset.open(folder)
    direct = fit_inrs(images, recipe=RECIPE, views=2, seed=3, progress=False)
    assert len(dataset) == 20
    for key, value in dataset.weights().stacked().items():
        assert torch.equal(value, direct.params[key]), key
    assert torch.equal(dataset.info["psnr"], direct.psnr)
    assert dataset.labels.tolist() == images.labels.repeat_interleave(2).tolist()
    manifest = read_manifest(folder, INR_DATASET)
    assert manifest["fit"]["steps"] == 20 and manifest["seed"] == 3 and manifest["views"] == 2
    assert manifest["gmn_version"] and manifest["source"]["name"] == "digits"
    assert [s["stop"] - s["start"] for s in manifest["shards"]] == [6, 6, 6, 2]
    subset = dataset.weights(torch.tensor([13, 0, 7])).stacked()
    assert torch.equal(subset["seq.1.bias"], direct.params["seq.1.bias"][[13, 0, 7]])


def test_split_keeps_all_views_of_an_image_together_and_is_seeded(built):
    folder, _ = built
    dataset = INRDataset.open(folder)
    images_of = {k: set(dataset.info["image_ids"][v].tolist()) for k, v in dataset.splits.items()}
    assert [len(images_of[k]) for k in ("train", "val", "test")] == [6, 2, 2]
    assert not (images_of["train"] & images_of["val"] or images_of["train"] & images_of["test"]
                or images_of["val"] & images_of["test"])
    assert sorted(torch.cat(list(dataset.splits.values())).tolist()) == list(range(20))
    again = build_dataset(load_digits().subset(range(10)), folder, recipe=RECIPE, views=2,
                          seed=3, shard_size=6, split=(6, 2, 2), progress=False)
    assert read_manifest(again, INR_DATASET)["split"] == read_manifest(folder, INR_DATASET)["split"]


def test_normalisation_uses_the_train_split(built):
    dataset = INRDataset.open(built[0])
    train = dataset.weights(dataset.split_indices("train"))
    stats = read_manifest(built[0], INR_DATASET)["normalization"]["stats"]
    expected = layer_statistics(train)
    assert all(stats[k] == pytest.approx(expected[k]) for k in train.stacked())
    normalized = dataset.normalization(train)
    for key, value in normalized.stacked().items():
        assert abs(value.mean().item()) < 1e-5 and abs(value.std().item() - 1) < 1e-4, key
    back = Normalize(stats).inverse(normalized)
    assert torch.allclose(back.params, train.params, atol=1e-6)


def test_a_corrupted_shard_is_named(built, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in built[0].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    shard = folder / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    dataset = INRDataset.open(folder)
    dataset.weights(torch.arange(6))  # shard 0 is intact
    with pytest.raises(IntegrityError, match="shard-00001.safetensors"):
        dataset.weights(torch.tensor([7]))


def _copy(folder, to):
    to.mkdir()
    for path in folder.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


def test_a_corrupted_shard_is_refitted_on_rebuild_never_rehashed(built, tmp_path):
    folder = _copy(built[0], tmp_path / "copy")
    before = folder_contents(folder)
    shard = folder / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="shard-00001.safetensors.*refitting"):
        build_dataset(built[1], folder, recipe=RECIPE, views=2, seed=3, shard_size=6,
                      split=(6, 2, 2), progress=False)
    assert folder_contents(folder) == before  # refitted bit-identically, manifest unchanged
    INRDataset.open(folder).weights()  # every shard matches the manifest


@pytest.mark.parametrize("name", ["manifest.json", "build.json"])
def test_a_truncated_or_edited_record_is_named(built, tmp_path, name):
    folder = _copy(built[0], tmp_path / "copy")

    def use():  # the reader of each record: opening the dataset, or resuming the build
        if name == "manifest.json":
            return INRDataset.open(folder)
        return build_dataset(built[1], folder, recipe=RECIPE, views=2, seed=3, shard_size=6,
                             split=(6, 2, 2), progress=False)

    text = (folder / name).read_text()
    (folder / name).write_text(text[: len(text) // 2])
    with pytest.raises(IntegrityError, match=f"{name} is not valid JSON"):
        use()
    edited = json.loads(text)
    edited["seed"] = 4
    (folder / name).write_text(json.dumps(edited))
    with pytest.raises(IntegrityError, match=f"{name}: its content does not match"):
        use()


def test_a_damaged_manifest_vouches_for_nothing_on_rebuild(built, tmp_path):
    folder = _copy(built[0], tmp_path / "copy")
    (folder / "manifest.json").write_text("{")
    shard = folder / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # still readable: only a hash shows it
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="manifest.json is not valid JSON"):
        build_dataset(built[1], folder, recipe=RECIPE, views=2, seed=3, shard_size=6,
                      split=(6, 2, 2), progress=False)
    assert folder_contents(folder) == folder_contents(built[0])


def test_a_truncated_shard_is_named(built, tmp_path):
    folder = _copy(built[0], tmp_path / "copy")
    shard = folder / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(IntegrityError, match="shard-00000.safetensors"):
        INRDataset.open(folder, verify=False).weights()
    with pytest.warns(UserWarning, match="shard-00000.safetensors"):  # a rebuild refits it
        build_dataset(built[1], folder, recipe=RECIPE, views=2, seed=3, shard_size=6,
                      split=(6, 2, 2), progress=False)
    assert folder_contents(folder) == folder_contents(built[0])


def test_rebuilding_with_other_settings_is_refused(built):
    with pytest.raises(ValueError, match="different.*recipe"):
        build_dataset(load_digits().subset(range(10)), built[0], recipe=FitRecipe(steps=3),
                      views=2, seed=3, shard_size=6, progress=False)


def _rebuild(images, folder, **overrides):
    settings = dict(recipe=RECIPE, views=2, seed=3, shard_size=6, split=(6, 2, 2),
                    progress=False)
    return build_dataset(images, folder, **{**settings, **overrides})


def _flip(path, at=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_shard_whose_manifest_was_deleted_is_refitted_not_vouched_for(built, tmp_path):
    """A shard carries the hash of its own content: with the manifest lost, a damaged shard is
    still caught, and the manifest rebuilt from the refitted one."""
    folder = _copy(built[0], tmp_path / "copy")
    (folder / "manifest.json").unlink()
    _flip(folder / "shard-00001.safetensors", at=-1)  # tensor data: still a readable file
    with pytest.warns(UserWarning, match=r"shard-00001\.safetensors: its content does not "
                                         r"match.*refitting"):
        _rebuild(built[1], folder)
    assert folder_contents(folder) == folder_contents(built[0])


def test_moving_the_image_folder_keeps_the_inrs(built, tmp_path):
    """The build is keyed by the images' content, not by where they were read from."""
    folder = _copy(built[0], tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    images = built[1]
    moved = type(images)(images.images, images.labels,
                         {**images.source, "files": ["/elsewhere/t10k-images-idx3-ubyte"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing refitted
        _rebuild(moved, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_another_split_is_refused_naming_it_and_writes_nothing(built, tmp_path):
    """A folder's INRs serve its split (possibly through a link from another run folder):
    a build asking for another split is refused before anything is written."""
    folder = _copy(built[0], tmp_path / "copy")
    link = tmp_path / "other-run-inrs"
    link.symlink_to(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ValueError, match=r"holds INRs split \[6, 2, 2\].*asked for split "
                                         r"\[5, 3, 2\]"):
        _rebuild(built[1], link, split=(5, 3, 2))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_folder_with_a_non_utf8_name_is_built_and_reused_not_refitted(built, tmp_path):
    folder = tmp_path / os.fsdecode(b"inrs-\xff")  # a name the OS accepts, not UTF-8
    _rebuild(built[1], folder)
    assert folder_contents(folder) == folder_contents(built[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no shard reported damaged or refitted
        _rebuild(built[1], folder)
    assert folder_contents(folder) == folder_contents(built[0])
    assert torch.equal(INRDataset.open(folder).weights().params,
                       INRDataset.open(built[0]).weights().params)


def run_build(folder, *args, env=None):
    return subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(folder), *map(str, args)],
                            env={**os.environ, **(env or {})})


BUILD_ARGS = (12, 15, 2)  # 12 images × 2 views, 15 steps, 12 shards of 2 INRs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    assert run_build(folder, *BUILD_ARGS).wait(timeout=240) == 0
    return folder_contents(folder)


def test_killed_build_resumes_bit_identically(tmp_path, uninterrupted):
    process = run_build(tmp_path, *BUILD_ARGS)
    deadline = time.time() + 120
    while not list(tmp_path.glob("shard-*.safetensors")):
        assert process.poll() is None and time.time() < deadline, "build ended before a shard"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = list(tmp_path.glob("shard-*.safetensors"))
    assert 0 < len(written) < 12, "the build was killed mid-way"
    assert not (tmp_path / "manifest.json").exists()
    assert run_build(tmp_path, *BUILD_ARGS).wait(timeout=240) == 0
    assert folder_contents(tmp_path) == uninterrupted


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_style_build_with_two_gloo_ranks_matches_one_process(tmp_path, uninterrupted):
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    ranks = [run_build(tmp_path, *BUILD_ARGS, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(2)]
    assert [p.wait(timeout=240) for p in ranks] == [0, 0]
    assert folder_contents(tmp_path) == uninterrupted
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["shards"]) == 12


@pytest.mark.parametrize("num_images, sizes, counts", [
    (3, (0.7, 0.1, 0.2), r"\[2, 0, 1\]"), (2, (0.7, 0.1, 0.2), r"\[1, 0, 1\]"),
    (5, (5, 0, 0), r"\[5, 0, 0\]"),
])
def test_sizes_that_leave_a_split_empty_are_refused(num_images, sizes, counts):
    with pytest.raises(ValueError, match=f"split sizes {counts} of {num_images} images leave "
                                         r"\['val'"):
        split_images(num_images, sizes)


def test_the_build_record_refuses_other_settings_by_name(tmp_path):
    """One check for INR datasets and CNN zoos: the first build writes build.json; a rerun
    with the same settings passes, one with other settings is refused naming the record, the
    key and both values; ignored keys (provenance) may differ; nothing is overwritten."""
    from gmn.data.storage import check_build_record

    check_build_record(tmp_path, {"seed": 1, "sizes": (6, 2, 2), "version": "a"})
    record = (tmp_path / "build.json").read_bytes()
    check_build_record(tmp_path, {"seed": 1, "sizes": [6, 2, 2], "version": "b"},
                       ignored=("version",))
    with pytest.raises(ValueError, match=r"build\.json was built with different settings "
                                         r"\(seed: \[1\] on disk, \[2\] asked\)"):
        check_build_record(tmp_path, {"seed": 2, "sizes": (6, 2, 2), "version": "a"})
    with pytest.raises(ValueError, match=r"\(extra, version: \[None, 'a'\] on disk"):
        check_build_record(tmp_path, {"seed": 1, "sizes": (6, 2, 2), "version": "b",
                                      "extra": 0})
    assert (tmp_path / "build.json").read_bytes() == record
