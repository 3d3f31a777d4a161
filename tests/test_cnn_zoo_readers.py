"""Readers of the public CNN zoos, on small files written here in each zoo's layout."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from gmn.data.architectures import build_architecture
from gmn.data.cnn_zoo_readers import read_cnn_wild_park, read_small_cnn_zoo
from gmn.data.zoo import UnsafeFileError
from gmn.graph.mixed import to_state_dicts

SPEC = {"family": "zoo_cnn", "channels": [4, 4, 4], "kernel": 3, "stride": [2, 2, 2],
        "in_channels": 1, "classes": 10}


def tf_variables(state: dict) -> list[tuple[str, np.ndarray]]:
    """A ZooCNN state_dict in TensorFlow's layout: conv kernels [kh, kw, in, out], dense
    kernel [in, out]."""
    out = []
    for i in range(3):
        out.append((f"conv2d_{i}/kernel:0", state[f"convs.{i}.weight"].permute(2, 3, 1, 0)))
        out.append((f"conv2d_{i}/bias:0", state[f"convs.{i}.bias"]))
    out += [("dense/kernel:0", state["head.weight"].T), ("dense/bias:0", state["head.bias"])]
    return [(name, value.numpy()) for name, value in out]


def write_small_zoo(root, n=6, gz=False):
    torch.manual_seed(0)
    activations = ["relu", "tanh"] * (n // 2)
    states = [build_architecture(dict(SPEC, activation=a)).state_dict() for a in activations]
    rows, layout, start = [], [], 0
    for name, value in tf_variables(states[0]):
        layout.append({"varname": name, "start_idx": start, "end_idx": start + value.size,
                       "size": value.size, "shape": str(tuple(value.shape))})
        start += value.size
    weights = np.stack([np.concatenate([v.ravel() for _, v in tf_variables(s)]) for s in states])
    np.save(root / "weights.npy", weights.astype(np.float32))
    for i, a in enumerate(activations):
        rows.append({"test_accuracy": 0.1 * i, "step": 86 if i % 3 else 10,
                     "config.activation": a, "config.learning_rate": 0.01})
    for name, table in (("layout.csv", layout), ("metrics.csv", rows)):
        with open(root / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    if gz:
        (root / "metrics.csv.gz").write_bytes(gzip.compress((root / "metrics.csv").read_bytes()))
    return states, activations


def assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_small_cnn_zoo_weights_come_back_in_torch_layout(tmp_path):
    states, activations = write_small_zoo(tmp_path)
    zoo = read_small_cnn_zoo(tmp_path, tmp_path / "zoo", progress=False)
    assert len(zoo) == 6 and len(zoo.architectures) == 2
    for i, record in enumerate(zoo.models):
        assert record["source_row"] == i
        assert zoo.architectures[zoo.architecture_of[i]]["activation"] == activations[i]
        assert record["test_accuracy"] == pytest.approx(0.1 * i)
        assert record["hyper"]["activation"] == activations[i]
        assert_same(zoo.state_dict(i), states[i])
    batch, order = zoo.graphs(torch.arange(6))
    for model, state in zip(order.tolist(), to_state_dicts(batch)):
        assert_same(state, states[model])


def test_nfn_copy_order_final_steps_and_split(tmp_path):
    states, _ = write_small_zoo(tmp_path, gz=True)
    shuffled = [4, 1, 5, 0, 3, 2]
    (tmp_path / "order.csv").write_text("".join(f"{i}\n" for i in shuffled))
    zoo = read_small_cnn_zoo(tmp_path, tmp_path / "zoo", metrics_file="metrics.csv.gz",
                             order_file="order.csv", final_only=True, nfn_splits=True,
                             progress=False)
    kept = [i for i in shuffled if i % 3]  # rows 0 and 3 are step 10, not the final 86
    assert [m["source_row"] for m in zoo.models] == kept
    for index, row in enumerate(kept):
        assert_same(zoo.state_dict(index), states[row])
    half = list(range(len(kept) // 2))
    random.Random(0).shuffle(half)
    cut = int(0.8 * len(half))
    assert zoo.splits["test"].tolist() == list(range(len(kept) // 2, len(kept)))
    assert zoo.splits["train"].tolist() == sorted(half[:cut])
    assert zoo.splits["val"].tolist() == sorted(half[cut:])


def test_pickled_and_truncated_weights_npy_are_refused_by_name(tmp_path):
    write_small_zoo(tmp_path)
    np.save(tmp_path / "weights.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="weights.npy"):
        read_small_cnn_zoo(tmp_path, tmp_path / "zoo", progress=False)
    write_small_zoo(tmp_path)
    data = (tmp_path / "weights.npy").read_bytes()
    (tmp_path / "weights.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="weights.npy"):
        read_small_cnn_zoo(tmp_path, tmp_path / "zoo", progress=False)


def test_layout_that_does_not_fit_the_weights_is_refused(tmp_path):
    write_small_zoo(tmp_path)
    text = (tmp_path / "layout.csv").read_text().replace("(3, 3, 1, 4)", "(3, 3, 2, 4)")
    (tmp_path / "layout.csv").write_text(text)
    with pytest.raises(ValueError, match="conv2d_0/kernel:0"):
        read_small_cnn_zoo(tmp_path, tmp_path / "zoo", progress=False)


def park_cnn(width: int, kernel: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, kernel), nn.ReLU(), nn.Conv2d(width, width, 3),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def write_park(root):
    torch.manual_seed(0)
    states, split = [], {}
    for name, shapes in (("train", [(4, 3), (6, 5), (4, 3)]), ("val", [(6, 5)]),
                         ("test", [(5, 7)])):
        paths = []
        for width, kernel in shapes:
            path = f"cifar10_zooV2/run{len(states)}/ckpt/checkpoint.pt"
            (root / path).parent.mkdir(parents=True)
            state = park_cnn(width, kernel).state_dict()
            torch.save(state, root / path)
            states.append(state)
            paths.append(path)
        split[name] = {"path": paths, "score": [0.5] * len(paths), "step": [3] * len(paths)}
    (root / "cnn_park_splits.json").write_text(json.dumps(split))
    return states, split


def test_cnn_wild_park_keeps_weights_and_split(tmp_path):
    states, _ = write_park(tmp_path)
    zoo = read_cnn_wild_park(tmp_path, tmp_path / "zoo", progress=False)
    assert len(zoo) == 5 and len(zoo.architectures) == 3
    assert zoo.splits["train"].tolist() == [0, 1, 2]
    assert zoo.splits["test"].tolist() == [4]
    for i, state in enumerate(states):
        assert_same(zoo.state_dict(i), state)
    batch, order = zoo.graphs(torch.arange(5))
    for model, state in zip(order.tolist(), to_state_dicts(batch)):
        assert_same(state, states[model])


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cnn_wild_park_refuses_code_truncation_and_escape(tmp_path, capsys):
    write_park(tmp_path)
    victim = tmp_path / "cifar10_zooV2/run1/ckpt/checkpoint.pt"
    victim.write_bytes(pickle.dumps({"weight": Exploit()}))
    with pytest.raises(UnsafeFileError, match="run1"):
        read_cnn_wild_park(tmp_path, tmp_path / "zoo", progress=False)
    assert "must never run" not in capsys.readouterr().out
    write_park(tmp_path / "again")
    root = tmp_path / "again"
    victim = root / "cifar10_zooV2/run2/ckpt/checkpoint.pt"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(ValueError, match="run2"):
        read_cnn_wild_park(root, root / "zoo", progress=False)
    third = tmp_path / "third"
    third.mkdir()
    _, split = write_park(third)
    split["test"]["path"] = ["../again/cifar10_zooV2/run0/ckpt/checkpoint.pt"]
    (third / "cnn_park_splits.json").write_text(json.dumps(split))
    with pytest.raises(ValueError, match="outside"):
        read_cnn_wild_park(third, third / "zoo", progress=False)
