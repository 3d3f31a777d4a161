"""Zoo readers on tiny zoos in the DWSNets MNIST, DWSNets Fashion-MNIST and NFN layouts."""

import json
import os
import pickle

import pytest
import torch

from gmn.data.zoo import (
    UnsafeFileError,
    load_weights,
    read_dwsnets_fmnist,
    read_dwsnets_mnist,
    read_nfn_siren,
)
from gmn.models.siren import Siren


def siren_state(seed, **kwargs):
    torch.manual_seed(seed)
    return Siren(**kwargs).state_dict()


def make_dwsnets_mnist(root):
    splits, states = {}, {}
    for split, names in (("train", [(3, 0), (5, 1), (3, 2)]), ("val", [(7, 3)]),
                         ("test", [(1, 4)])):
        paths, labels = [], []
        for label, index in names:
            mode = "testing" if split == "test" else "training"
            relative = f"mnist_png_{mode}_{label}_{index}/checkpoints/model_final.pth"
            (root / relative).parent.mkdir(parents=True)
            states[index] = siren_state(index)
            torch.save(states[index], root / relative)
            # DWSNets' split files hold absolute paths from the machine that made them
            paths.append(f"/home/someone/data/mnist-inrs/{relative}" if index % 2 else relative)
            labels.append(label)
        splits[split] = {"path": paths, "label": labels}
    (root / "mnist_splits.json").write_text(json.dumps(splits))
    return states


def test_dwsnets_mnist_reader(tmp_path):
    states = make_dwsnets_mnist(tmp_path)
    dataset = read_dwsnets_mnist(tmp_path, progress=False)
    assert len(dataset) == 5 and dataset.labels.tolist() == [3, 5, 3, 7, 1]
    assert {k: v.tolist() for k, v in dataset.splits.items()} == {
        "train": [0, 1, 2], "val": [3], "test": [4]}
    assert torch.equal(dataset.weights().stacked()["seq.1.weight"][3], states[3]["seq.1.weight"])
    assert dataset.layout.style == "dwsnets" and dataset.layout.hidden == (32, 32)
    batch = dataset.graphs([0, 4])
    assert batch.num_graphs == 2 and batch.y.tolist() == [3, 1]


def test_dwsnets_mnist_label_mismatch_is_named(tmp_path):
    make_dwsnets_mnist(tmp_path)
    splits = json.loads((tmp_path / "mnist_splits.json").read_text())
    splits["val"]["label"] = [2]
    (tmp_path / "mnist_splits.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match="mnist_png_training_7_3.*label 7.*2"):
        read_dwsnets_mnist(tmp_path, progress=False)


def test_dwsnets_fmnist_reader_takes_labels_from_the_files(tmp_path):
    splits = {"train": [], "val": [], "test": []}
    for index, split in enumerate(["train", "train", "val", "test"]):
        state = dict(siren_state(index))
        state["label"] = torch.tensor(index + 4)
        torch.save(state, tmp_path / f"inr_{index}.pth")
        splits[split].append(f"inr_{index}.pth")
    splits["test"] = {"path": splits["test"]}
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    dataset = read_dwsnets_fmnist(tmp_path, progress=False)
    assert dataset.labels.tolist() == [4, 5, 6, 7]
    assert dataset.split_indices("val").tolist() == [2]
    assert torch.equal(dataset.weights().stacked()["seq.0.bias"][1], siren_state(1)["seq.0.bias"])


def nfn_state(seed):
    state = siren_state(seed, out_features=3, style="standard")
    return {(f"net.{k[4]}.linear.{k[6:]}" if k[4] != "2" else f"net.2.{k[6:]}"): v
            for k, v in state.items()}


def test_nfn_reader_renames_keys_and_splits_by_index(tmp_path):
    for index in range(6):
        folder = tmp_path / f"randinit_smaller_{index % 3}s"
        folder.mkdir(exist_ok=True)
        torch.save(nfn_state(index), folder / f"net{index}.pth")
    (tmp_path / "randinit_smaller_aug0_0s").mkdir()  # augmented copies are not the base set
    torch.save(nfn_state(9), tmp_path / "randinit_smaller_aug0_0s" / "net0.pth")
    dataset = read_nfn_siren(tmp_path, split_points=(3, 5), progress=False)
    assert dataset.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert {k: v.tolist() for k, v in dataset.splits.items()} == {
        "train": [0, 1, 2], "val": [3, 4], "test": [5]}
    assert dataset.layout.out_features == 3 and dataset.layout.style == "standard"
    expected = siren_state(4, out_features=3, style="standard")
    assert all(torch.equal(dataset.weights().stacked()[k][4], expected[k]) for k in expected)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pth_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "model_final.pth"
    torch.save({"seq.0.weight": RunsCode()}, path, pickle_protocol=2)
    with pytest.raises(UnsafeFileError, match="model_final.pth"):
        load_weights(path)
    assert isinstance(UnsafeFileError("x"), pickle.UnpicklingError)
