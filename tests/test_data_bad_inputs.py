"""Damaged or wrong zoo and CIFAR-10 files are refused with the file and the value named."""

import json
import pickle

import numpy as np
import pytest
import torch

from gmn.data.cifar import CifarFileError, load_cifar10
from gmn.data.inr_zoos import ZooFileError, read_dwsnets_fmnist, read_dwsnets_mnist, read_nfn_siren
from tests.public_zoos import write_dwsnets_fmnist, write_nfn_sirens
from tests.test_data_images import write_cifar
from tests.test_data_inr_zoos import make_dwsnets_mnist, nfn_state, siren_state

FIRST = "mnist-inrs/mnist_png_training_3_0/checkpoints/model_final.pth"


@pytest.fixture
def dwsnets(tmp_path):
    """A DWSNets MNIST-INR folder as its README lays it out (``dataset/mnist-inrs``,
    ``dataset/mnist_splits.json`` from its split script): the root to read."""
    root = tmp_path / "dataset"
    make_dwsnets_mnist(root)
    return root


def edit_splits(root, edit):
    splits = json.loads((root / "mnist_splits.json").read_text())
    edit(splits)
    (root / "mnist_splits.json").write_text(json.dumps(splits))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_an_empty_or_truncated_pth_is_named(dwsnets, content):
    (dwsnets / FIRST).write_bytes(content)
    with pytest.raises(ZooFileError, match=f"cannot read .*{FIRST}.*empty, truncated"):
        read_dwsnets_mnist(dwsnets, progress=False)


def test_a_truncated_real_pth_is_named(dwsnets):
    data = (dwsnets / FIRST).read_bytes()
    (dwsnets / FIRST).write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooFileError, match=FIRST):
        read_dwsnets_mnist(dwsnets, progress=False)


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_split_paths_outside_the_root_are_refused(tmp_path, where):
    root, outside = tmp_path / "dataset", tmp_path / "elsewhere"
    outside.mkdir()
    make_dwsnets_mnist(root)
    torch.save(siren_state(9), outside / "model_final.pth")
    target = {"dotdot": "../elsewhere/model_final.pth",
              "absolute": str(outside / "model_final.pth"),
              "symlink": "link.pth"}[where]
    if where == "symlink":
        (root / "link.pth").symlink_to(outside / "model_final.pth")
    edit_splits(root, lambda s: s["train"]["path"].__setitem__(0, target))
    with pytest.raises(ZooFileError, match="outside the zoo root"):
        read_dwsnets_mnist(root, progress=False)


def test_a_symlink_out_of_an_nfn_zoo_is_refused(tmp_path):
    root, outside = tmp_path / "zoo", tmp_path / "elsewhere"
    (root / "randinit_smaller_0s").mkdir(parents=True)
    outside.mkdir()
    torch.save(nfn_state(0), root / "randinit_smaller_0s" / "net0.pth")
    torch.save(nfn_state(1), outside / "net1.pth")
    (root / "randinit_smaller_0s" / "net1.pth").symlink_to(outside / "net1.pth")
    with pytest.raises(ZooFileError, match="net1.pth resolves to .*outside the zoo root"):
        read_nfn_siren(root, split_points=(1, 2), progress=False)


@pytest.mark.parametrize("bad, message", [
    (float("nan"), "'seq.1.weight' holds NaN or infinite values"),
    ("int", "'seq.1.weight' holds torch.int64 values"),
    (1e30, "'seq.1.weight' holds a weight of magnitude 1e\\+30"),
    (-2e4, "'seq.1.weight' holds a weight of magnitude 2e\\+04"),
])
def test_nan_integer_or_huge_weights_are_refused(dwsnets, bad, message):
    state = torch.load(dwsnets / FIRST, weights_only=True)
    if bad == "int":
        state["seq.1.weight"] = state["seq.1.weight"].long()
    else:
        state["seq.1.weight"][0, 0] = bad
    torch.save(state, dwsnets / FIRST)
    with pytest.raises(ZooFileError, match=f"{FIRST}: {message}"):
        read_dwsnets_mnist(dwsnets, progress=False)


@pytest.mark.parametrize("label", [-1, 3.5, 42, "42", "x", "3.0", "-1", "", " 3", True])
def test_bad_labels_in_a_splits_file_are_refused(dwsnets, label):
    edit_splits(dwsnets, lambda s: s["val"]["label"].__setitem__(0, label))
    with pytest.raises(ZooFileError, match=f"mnist_splits.json: split 'val' entry .*"
                                           f"model_final.pth: label {label!r} is not an integer"):
        read_dwsnets_mnist(dwsnets, progress=False)


@pytest.mark.parametrize("label", [torch.tensor(-1), torch.tensor(2.0), torch.tensor([1, 2])])
def test_bad_labels_in_an_fmnist_file_are_refused(tmp_path, label):
    write_dwsnets_fmnist(tmp_path, {"train": [1, 2], "val": [3], "test": [4]})
    path = tmp_path / "fmnist_inrs" / "train" / "model_1.pth"
    torch.save({**torch.load(path, weights_only=True), "label": label}, path)
    with pytest.raises(ZooFileError, match="model_1.pth.*label"):
        read_dwsnets_fmnist(tmp_path / "fmnist_inrs", progress=False)


def test_a_file_in_two_splits_is_refused(dwsnets):
    splits = json.loads((dwsnets / "mnist_splits.json").read_text())
    where = "val" if FIRST in splits["val"]["path"][0] else "train"

    def duplicate(splits):
        splits["test"]["path"].append(FIRST)  # the same file, written relative to the root
        splits["test"]["label"].append(3)

    edit_splits(dwsnets, duplicate)
    with pytest.raises(ZooFileError, match=f"{FIRST} is listed twice.*'{where}'.*'test'"):
        read_dwsnets_mnist(dwsnets, progress=False)


def test_a_missing_inr_is_not_replaced_by_a_stray_file_with_its_name(dwsnets):
    """DWSNets' absolute paths are matched by their tails under the root; a tail that every
    INR shares (checkpoints/model_final.pth) belongs to none of them."""
    (dwsnets / FIRST).unlink()
    (dwsnets / "checkpoints").mkdir()
    torch.save(siren_state(42), dwsnets / "checkpoints" / "model_final.pth")
    with pytest.raises(FileNotFoundError, match="mnist_png_training_3_0/checkpoints/"
                                                "model_final.pth .*not found.*checkpoints/"
                                                "model_final.pth is a shorter tail that other "
                                                "entries share"):
        read_dwsnets_mnist(dwsnets, progress=False)


def test_two_files_matching_one_entry_are_refused_as_ambiguous(dwsnets):
    copy = dwsnets / FIRST.removeprefix("mnist-inrs/")
    copy.parent.mkdir(parents=True)
    torch.save(siren_state(42), copy)
    with pytest.raises(ZooFileError, match="mnist_png_training_3_0.* is ambiguous: .* both "
                                           "match it"):
        read_dwsnets_mnist(dwsnets, progress=False)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_an_empty_split_is_refused(dwsnets, split):
    edit_splits(dwsnets, lambda s: s.__setitem__(split, {"path": [], "label": []}))
    with pytest.raises(ZooFileError, match=f"mnist_splits.json: split\\(s\\) \\['{split}'\\] "
                                           "are empty"):
        read_dwsnets_mnist(dwsnets, progress=False)


def test_nfn_split_points_beyond_a_small_zoo_are_refused(tmp_path):
    write_nfn_sirens(tmp_path, [0, 1, 2, 0, 1, 2])
    with pytest.raises(ZooFileError, match=r"split_points=\(45000, 50000\).*net indices run "
                                           r"0\.\.5.*\['val', 'test'\] are empty"):
        read_nfn_siren(tmp_path, progress=False)  # NFN's MNIST split points


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "test_batch is empty"),
    (lambda p: p.write_bytes(b"garbage, not a pickle"), "test_batch is not a CIFAR-10"),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "test_batch is not a CIFAR-10"),
])
def test_damaged_cifar_batches_are_named(tmp_path, damage, message):
    write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))
    damage(tmp_path / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(CifarFileError, match=message):
        load_cifar10(tmp_path, split="test", download=False)


@pytest.mark.parametrize("data, labels, message", [
    (np.zeros((2, 3000), np.uint8), [0, 1], r"'data' is uint8 \(2, 3000\)"),
    (np.zeros((2, 3072), np.uint8), [0], r"'labels' is int64 \(1,\)"),
    (np.zeros((2, 3072), np.uint8), [0, 42], "label 42 is not a CIFAR-10 class"),
    (np.zeros((2, 3072), np.uint8), [-1, 0], "label -1 is not a CIFAR-10 class"),
])
def test_wrong_cifar_sizes_and_labels_are_named(tmp_path, data, labels, message):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, np.random.default_rng(1))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, 2))
    with pytest.raises(CifarFileError, match=f"test_batch: {message}"):
        load_cifar10(tmp_path, split="test", download=False)
