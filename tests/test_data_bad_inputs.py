"""Damaged or wrong zoo and CIFAR-10 files are refused with the file and the value named."""

import json
import pickle

import numpy as np
import pytest
import torch

from gmn.data.cifar import CifarFileError, load_cifar10
from gmn.data.zoo import ZooFileError, read_dwsnets_fmnist, read_dwsnets_mnist, read_nfn_siren
from tests.test_data_images import write_cifar
from tests.test_data_zoo import make_dwsnets_mnist, nfn_state, siren_state

FIRST = "mnist_png_training_3_0/checkpoints/model_final.pth"


def edit_splits(root, edit):
    splits = json.loads((root / "mnist_splits.json").read_text())
    edit(splits)
    (root / "mnist_splits.json").write_text(json.dumps(splits))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_an_empty_or_truncated_pth_is_named(tmp_path, content):
    make_dwsnets_mnist(tmp_path)
    (tmp_path / FIRST).write_bytes(content)
    with pytest.raises(ZooFileError, match=f"cannot read .*{FIRST}.*empty, truncated"):
        read_dwsnets_mnist(tmp_path, progress=False)


def test_a_truncated_real_pth_is_named(tmp_path):
    make_dwsnets_mnist(tmp_path)
    data = (tmp_path / FIRST).read_bytes()
    (tmp_path / FIRST).write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooFileError, match=FIRST):
        read_dwsnets_mnist(tmp_path, progress=False)


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_split_paths_outside_the_root_are_refused(tmp_path, where):
    root, outside = tmp_path / "zoo", tmp_path / "elsewhere"
    root.mkdir()
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
])
def test_nan_or_integer_weights_are_refused(tmp_path, bad, message):
    make_dwsnets_mnist(tmp_path)
    state = torch.load(tmp_path / FIRST, weights_only=True)
    if bad == "int":
        state["seq.1.weight"] = state["seq.1.weight"].long()
    else:
        state["seq.1.weight"][0, 0] = bad
    torch.save(state, tmp_path / FIRST)
    with pytest.raises(ZooFileError, match=f"{FIRST}: {message}"):
        read_dwsnets_mnist(tmp_path, progress=False)


@pytest.mark.parametrize("label", [-1, 3.5, 42, "3", True])
def test_bad_labels_in_a_splits_file_are_refused(tmp_path, label):
    make_dwsnets_mnist(tmp_path)
    edit_splits(tmp_path, lambda s: s["val"]["label"].__setitem__(0, label))
    with pytest.raises(ZooFileError, match=f"split 'val'.*label {label!r} is not an integer"):
        read_dwsnets_mnist(tmp_path, progress=False)


@pytest.mark.parametrize("label", [torch.tensor(-1), torch.tensor(2.0), torch.tensor([1, 2])])
def test_bad_labels_in_an_fmnist_file_are_refused(tmp_path, label):
    state = dict(siren_state(0))
    state["label"] = label
    torch.save(state, tmp_path / "inr_0.pth")
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["inr_0.pth"], "val": [],
                                                      "test": []}))
    with pytest.raises(ZooFileError, match="inr_0.pth.*label"):
        read_dwsnets_fmnist(tmp_path, progress=False)


def test_a_file_in_two_splits_is_refused(tmp_path):
    make_dwsnets_mnist(tmp_path)

    def duplicate(splits):
        splits["test"]["path"].append(FIRST)
        splits["test"]["label"].append(3)

    edit_splits(tmp_path, duplicate)
    with pytest.raises(ZooFileError, match=f"{FIRST} is listed twice.*'train'.*'test'"):
        read_dwsnets_mnist(tmp_path, progress=False)


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
