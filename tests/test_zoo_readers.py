"""Readers of the public CNN zoos, on small files written here in each zoo's layout (CNN Wild
Park: as neural-graphs' split script and Ray Tune lay it out)."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gmn.data.inr_zoos import UnsafeFileError
from gmn.graph.executor import execute
from gmn.graph.mixed_batches import to_state_dicts
from gmn.zoo.readers import read_cnn_wild_park, read_small_cnn_zoo
from gmn.zoo.specs import build_architecture

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


def test_a_diverged_row_is_kept_and_flagged_not_dropped(tmp_path):
    """NFN's split indexes every final row; dropping a NaN row would shift it silently."""
    write_small_zoo(tmp_path)
    weights = np.load(tmp_path / "weights.npy")
    weights[2, 5] = np.nan
    np.save(tmp_path / "weights.npy", weights)
    zoo = read_small_cnn_zoo(tmp_path, tmp_path / "zoo", progress=False)
    assert len(zoo) == 6 and [m["finite"] for m in zoo.models] == [True, True, False, True,
                                                                    True, True]
    assert [m["source_row"] for m in zoo.models] == list(range(6))


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


class ParkCNN(nn.Module):
    """The layout of neural-graphs' Wild Park CNNs (``cnn_sampler.CNN``): convolutions in a
    ``layers`` ModuleList (padding k // 2), an activation after each, global average pooling,
    then ``fc``. (Their forward also adds residuals by item assignment, which torch.fx cannot
    trace; these have none.)"""

    ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}

    def __init__(self, channels, kernels, activations):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(a, b, k, padding=k // 2)
                                    for a, b, k in zip(channels[:-1], channels[1:], kernels))
        self.activations = [self.ACTIVATIONS[a] for a in activations]
        self.fc = nn.Linear(channels[-1], 10)

    def forward(self, x):
        for layer, activation in zip(self.layers, self.activations):
            x = activation(layer(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


PARK = {"train": [([3, 4, 8], [3, 5], ["relu", "tanh"]), ([3, 8, 4], [7, 3], ["gelu", "relu"]),
                  ([3, 4, 8], [3, 5], ["relu", "tanh"])],
        "val": [([3, 8, 4], [7, 3], ["relu", "relu"])],
        "test": [([3, 16, 4, 4], [3, 3, 5], ["relu", "gelu", "tanh"])]}


def write_park(root):
    """Checkpoints under ``cifar10_zooV2/<trial>/<checkpoint>/checkpoint.pt`` (Ray Tune's
    layout) and ``cnn_park_splits.json`` as neural-graphs' ``generate_cnn_park_splits.py``
    writes it: ``{split: {"path", "score", "step"}}``, paths relative to its dataset folder,
    each split's entries shuffled. The configs are returned (the state_dicts do not hold them)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    states, configs, split = [], [], {}
    for name, cnns in PARK.items():
        entries = []
        for config in cnns:
            path = f"cifar10_zooV2/trial_{len(states):05d}/checkpoint_000010/checkpoint.pt"
            (root / path).parent.mkdir(parents=True)
            state = ParkCNN(*config).state_dict()
            torch.save(state, root / path)
            entries.append((path, float(rng.uniform(0.1, 0.6)), 10, len(states)))
            states.append(state)
            configs.append(config)
        order = rng.permutation(len(entries))
        split[name] = {key: [entries[i][column] for i in order]
                       for column, key in enumerate(("path", "score", "step"))}
        split[name]["_models"] = [entries[i][3] for i in order]
    listed = {name: {k: v for k, v in entry.items() if k != "_models"}
              for name, entry in split.items()}
    (root / "cnn_park_splits.json").write_text(json.dumps(listed))
    return states, configs, split


def park_like(configs, split):
    """``like``: each checkpoint's module, from the configs its trainer knew."""
    config_of = {path: configs[model] for entry in split.values()
                 for path, model in zip(entry["path"], entry["_models"])}
    return lambda relative, state: ParkCNN(*config_of[relative])


def test_cnn_wild_park_keys_alone_ask_for_like(tmp_path):
    write_park(tmp_path)
    with pytest.raises(ValueError, match="checkpoint.pt: its layout cannot be read from its keys"
                                         ".*pass like="):
        read_cnn_wild_park(tmp_path, tmp_path / "zoo", progress=False)


def test_cnn_wild_park_keeps_weights_split_and_architectures(tmp_path):
    states, configs, split = write_park(tmp_path)
    zoo = read_cnn_wild_park(tmp_path, tmp_path / "zoo", like=park_like(configs, split),
                             progress=False)
    assert len(zoo) == 5 and len(zoo.architectures) == 4  # activations count too
    order = [m for name in ("train", "val", "test") for m in split[name]["_models"]]
    arch = {model: zoo.architecture_of[i] for i, model in enumerate(order)}
    assert arch[0] == arch[2] != arch[1]  # the same config, then other activations
    assert zoo.splits["train"].tolist() == [0, 1, 2] and zoo.splits["test"].tolist() == [4]
    scores = [s for name in ("train", "val", "test") for s in split[name]["score"]]
    assert zoo.targets().tolist() == scores
    for i, model in enumerate(order):
        assert_same(zoo.state_dict(i), states[model])
    batch, members = zoo.graphs(torch.arange(5))
    images = torch.randn(2, 3, 9, 9)
    for graph, i in zip(batch.to_data_list(), members.tolist()):
        module = ParkCNN(*configs[order[i]])
        module.load_state_dict(states[order[i]])
        assert torch.allclose(execute(graph, images), module.eval()(images), atol=1e-5)


def test_a_cnn_wild_park_zoo_is_read_without_importing_the_readers(tmp_path):
    """The inferred family is built in: a process that never imported the readers reads it."""
    torch.manual_seed(0)
    split = {}
    for n, name in enumerate(("train", "val", "test")):
        path = f"cifar10_zooV2/trial_{n}/checkpoint_000010/checkpoint.pt"
        (tmp_path / path).parent.mkdir(parents=True)
        torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, 10)).state_dict(), tmp_path / path)
        split[name] = {"path": [path], "score": [0.2 * n], "step": [10]}
    (tmp_path / "cnn_park_splits.json").write_text(json.dumps(split))
    read_cnn_wild_park(tmp_path, tmp_path / "zoo", progress=False)
    code = ("from gmn.zoo.store import ModelZoo\n"
            f"print(ModelZoo({str(tmp_path / 'zoo')!r}).graphs([0, 1, 2])[0].num_graphs)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "3", done.stderr


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cnn_wild_park_refuses_code_truncation_and_escape(tmp_path, capsys):
    _, configs, split = write_park(tmp_path)
    victim = tmp_path / split["train"]["path"][1]
    victim.write_bytes(pickle.dumps({"weight": Exploit()}))
    with pytest.raises(UnsafeFileError, match=split["train"]["path"][1]):
        read_cnn_wild_park(tmp_path, tmp_path / "zoo", like=park_like(configs, split),
                           progress=False)
    assert "must never run" not in capsys.readouterr().out
    root = tmp_path / "again"
    root.mkdir()
    _, configs, split = write_park(root)
    victim = root / split["test"]["path"][0]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(ValueError, match=split["test"]["path"][0]):
        read_cnn_wild_park(root, root / "zoo", like=park_like(configs, split), progress=False)
    third = tmp_path / "third"
    third.mkdir()
    _, configs, split = write_park(third)
    split["test"]["path"] = ["../again/" + split["train"]["path"][0]]
    (third / "cnn_park_splits.json").write_text(json.dumps(
        {k: {c: v for c, v in e.items() if c != "_models"} for k, e in split.items()}))
    with pytest.raises(ValueError, match="points outside"):
        read_cnn_wild_park(third, third / "zoo", like=park_like(configs, split), progress=False)


def test_cnn_wild_park_with_an_empty_split_is_refused(tmp_path):
    _, configs, split = write_park(tmp_path)
    listed = json.loads((tmp_path / "cnn_park_splits.json").read_text())
    listed["val"] = {"path": [], "score": [], "step": []}
    (tmp_path / "cnn_park_splits.json").write_text(json.dumps(listed))
    with pytest.raises(ValueError, match=r"cnn_park_splits.json: split\(s\) \['val'\] are empty"):
        read_cnn_wild_park(tmp_path, tmp_path / "zoo", like=park_like(configs, split),
                           progress=False)
