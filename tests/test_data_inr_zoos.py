"""Zoo readers on tiny zoos written the way DWSNets', neural-graphs' and NFN's own scripts
write them (``tests/public_zoos.py``)."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from gmn.data.inr_zoos import (
    UnsafeFileError,
    ZooFileError,
    load_weights,
    read_dwsnets_fmnist,
    read_dwsnets_mnist,
    read_nfn_siren,
)
from gmn.models.siren import Siren
from tests.public_zoos import (
    DWSNETS_MACHINE_CWD,
    dwsnets_mnist_splits,
    neural_graphs_fmnist_splits,
    neural_graphs_mnist_splits,
    nfn_siren_state,
    write_dwsnets_fmnist,
    write_dwsnets_mnist_inrs,
    write_nfn_sirens,
)

# (mode, label, id): 4 training INRs (one goes to val) and 2 testing ones
MNIST_INRS = [("training", 3, 0), ("training", 5, 1), ("training", 3, 2), ("training", 7, 3),
              ("testing", 1, 4), ("testing", 0, 5)]


def siren_state(seed, **kwargs):
    torch.manual_seed(seed)
    return Siren(**kwargs).state_dict()


def make_dwsnets_mnist(root):
    """DWSNets' layout under ``root`` (``dataset/`` of its README): INRs in
    ``root/mnist-inrs``, ``root/mnist_splits.json`` from its split script (absolute paths of
    another machine, string labels). Returns the state_dicts by INR id."""
    states = write_dwsnets_mnist_inrs(root / "mnist-inrs", MNIST_INRS)
    dwsnets_mnist_splits(root.parent, f"{root.name}/mnist-inrs", root.name, val_size=1)
    return states


def split_ids(dataset):
    """The INR ids (from the folder names) of each split."""
    ids = [int(Path(path).parent.parent.name.split("_")[-1]) for path in dataset.info["paths"]]
    return {name: [ids[i] for i in index.tolist()] for name, index in dataset.splits.items()}


def test_dwsnets_mnist_reader_reads_the_split_script_output(tmp_path):
    root = tmp_path / "dataset"
    states = make_dwsnets_mnist(root)
    written = json.loads((root / "mnist_splits.json").read_text())
    assert sorted(written) == ["test", "train", "val"] and list(written)[-1] == "val"
    assert all(p.startswith(DWSNETS_MACHINE_CWD) for s in written.values() for p in s["path"])
    assert {label for s in written.values() for label in s["label"]} <= set("013578")
    dataset = read_dwsnets_mnist(root, progress=False)
    ids = split_ids(dataset)
    assert sorted(ids["train"] + ids["val"]) == [0, 1, 2, 3] and len(ids["val"]) == 1
    assert sorted(ids["test"]) == [4, 5]
    label_of = {index: label for _, label, index in MNIST_INRS}
    order = ids["train"] + ids["val"] + ids["test"]
    assert dataset.labels.tolist() == [label_of[i] for i in order]
    stacked = dataset.weights().stacked()
    for row, index in enumerate(order):
        assert all(torch.equal(stacked[k][row], states[index][k]) for k in states[index])
    assert dataset.layout.style == "dwsnets" and dataset.layout.hidden == (32, 32)
    batch = dataset.graphs([0, 5])
    assert batch.num_graphs == 2 and batch.y.tolist() == dataset.labels[[0, 5]].tolist()


def test_neural_graphs_mnist_splits_are_read_too(tmp_path):
    states = write_dwsnets_mnist_inrs(tmp_path / "mnist-inrs", MNIST_INRS)
    neural_graphs_mnist_splits(tmp_path)
    assert json.loads((tmp_path / "mnist_splits.json").read_text())["test"]["path"][0] \
        .startswith("mnist-inrs/mnist_png_testing_")
    dataset = read_dwsnets_mnist(tmp_path, progress=False)
    ids = split_ids(dataset)
    assert sorted(ids["test"]) == [4, 5] and len(ids["val"]) == 1
    first = ids["train"][0]
    stacked = dataset.weights().stacked()
    assert torch.equal(stacked["seq.1.weight"][0], states[first]["seq.1.weight"])


def test_dwsnets_mnist_label_mismatch_is_named(tmp_path):
    root = tmp_path / "dataset"
    make_dwsnets_mnist(root)
    splits = json.loads((root / "mnist_splits.json").read_text())
    splits["test"]["label"] = ["2", "2"]
    (root / "mnist_splits.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match="mnist_png_testing_(1_4|0_5).*label (1|0).*2"):
        read_dwsnets_mnist(root, progress=False)


FMNIST_LABELS = {"train": [4, 5, 9], "val": [6], "test": [7, 0]}


def test_dwsnets_fmnist_reader_takes_labels_from_the_files(tmp_path):
    states = write_dwsnets_fmnist(tmp_path, FMNIST_LABELS)
    dataset = read_dwsnets_fmnist(tmp_path / "fmnist_inrs", progress=False)
    assert dataset.labels.tolist() == [4, 5, 9, 6, 7, 0]
    assert dataset.split_indices("val").tolist() == [3]
    stacked = dataset.weights().stacked()
    assert torch.equal(stacked["seq.0.bias"][1], states["train"][1]["seq.0.bias"])


def test_neural_graphs_fmnist_splits_are_read_and_their_labels_checked(tmp_path):
    write_dwsnets_fmnist(tmp_path, FMNIST_LABELS)
    neural_graphs_fmnist_splits(tmp_path)
    dataset = read_dwsnets_fmnist(tmp_path, splits_file="fmnist_splits.json", progress=False)
    assert dataset.labels.tolist() == [4, 5, 9, 6, 7, 0]
    splits = json.loads((tmp_path / "fmnist_splits.json").read_text())
    splits["test"]["label"][1] = 3
    (tmp_path / "fmnist_splits.json").write_text(json.dumps(splits))
    with pytest.raises(ZooFileError, match="split 'test' lists label 3 for .*model_5.pth, whose "
                                           "file says 0"):
        read_dwsnets_fmnist(tmp_path, splits_file="fmnist_splits.json", progress=False)


def nfn_state(seed):
    return nfn_siren_state(seed, out_features=3)


def test_nfn_reader_renames_keys_and_splits_by_index(tmp_path):
    states = write_nfn_sirens(tmp_path, [0, 1, 2, 0, 1, 2], augmented=1, out_features=3)
    dataset = read_nfn_siren(tmp_path, split_points=(3, 5), progress=False)
    assert dataset.labels.tolist() == [0, 1, 2, 0, 1, 2]  # the augmented copies are not read
    assert {k: v.tolist() for k, v in dataset.splits.items()} == {
        "train": [0, 1, 2], "val": [3, 4], "test": [5]}
    assert dataset.layout.out_features == 3 and dataset.layout.style == "standard"
    stacked = dataset.weights().stacked()
    renamed = {"seq.0.weight": "net.0.linear.weight", "seq.1.bias": "net.1.linear.bias",
               "seq.2.weight": "net.2.weight", "seq.2.bias": "net.2.bias"}
    for ours, theirs in renamed.items():
        assert torch.equal(stacked[ours][4], states[4][theirs])


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pth_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "model_final.pth"
    torch.save({"seq.0.weight": RunsCode()}, path, pickle_protocol=2)
    with pytest.raises(UnsafeFileError, match="model_final.pth"):
        load_weights(path)
    assert isinstance(UnsafeFileError("x"), pickle.UnpicklingError)
