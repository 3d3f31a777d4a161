"""Readers for the public CNN zoos; each writes a :class:`ModelZoo` folder (read it with
``ModelZoo``, or pass it to ``python -m benchmarks.generalization --zoo``).

* Unterthiner et al.'s Small CNN Zoo: ``weights.npy`` [N, P] (TensorFlow layout),
  ``layout.csv`` (``varname, start_idx, end_idx, shape`` per variable), ``metrics.csv`` one row
  per model (``test_accuracy``, ``step``, ``config.*`` hyper-parameters). Every model is a
  ``ZooCNN`` (convolutions of stride 2, global average pooling, one dense layer).
* NFN's copy of it: the same with ``metrics.csv.gz`` and a CSV of shuffled row indices; NFN
  keeps the final checkpoints (largest ``step``), tests on the second half and splits the
  first half 80/20 into train/val with ``random.Random(0)``.
* NG's CNN Wild Park: a splits JSON ``{split: {"path": [...], "score": [...], "step": [...]}}``
  whose paths (relative to ``root``) are state_dict checkpoints; the architecture of each is
  inferred from its keys (:mod:`gmn.graph.infer`, activations recorded as unknown).

Safe loading only: ``numpy.load(allow_pickle=False)`` and ``torch.load(weights_only=True)``;
every path must stay inside ``root``; a malicious, truncated or inconsistent file is refused
with an error naming it.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gmn.data.architectures import architecture_id, register_architecture
from gmn.data.model_zoo import ModelZoo, write_zoo_manifest, write_zoo_shard
from gmn.data.zoo import load_weights
from gmn.graph.infer import infer_module


def _inferred(entries: list) -> torch.nn.Module:
    """The module :func:`gmn.graph.infer.infer_module` reads from keys, shapes and dtypes."""
    state = {key: torch.zeros(shape, dtype=getattr(torch, dtype)) for key, shape, dtype in entries}
    return infer_module(state)


register_architecture("inferred_sequential", _inferred)


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it leaves ``root`` (``..``, absolute paths, links)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{relative!r} (from the zoo's index) points outside {root}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} (listed in the zoo's index) not found")
    return path


def _write(out, groups: dict[str, dict], specs: dict[str, dict], source: dict,
           splits: dict | None) -> ModelZoo:
    """Write one shard per architecture: ``groups[arch] = {"params": [state_dicts],
    "records": [model records with "id"]}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = {arch: f"arch{i:02d}" for i, arch in enumerate(groups)}
    shards = []
    for arch, group in groups.items():
        file = f"shard-{len(shards):05d}.safetensors"
        keys = list(group["params"][0])
        stacked = {k: torch.stack([p[k] for p in group["params"]]) for k in keys}
        records = [dict(r, architecture=names[arch], shard=file, row=row)
                   for row, r in enumerate(group["records"])]
        write_zoo_shard(out / file, stacked, {"models": records})
        shards.append({"file": file, "architecture": names[arch]})
    write_zoo_manifest(out, {names[a]: specs[a] for a in groups}, shards, source, splits)
    return ModelZoo(out)


# --- Unterthiner et al.'s Small CNN Zoo and NFN's copy --------------------------------------
def _read_csv(path: Path) -> list[dict]:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return list(csv.DictReader(io.StringIO(raw.decode())))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from error


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: refused (truncated, or not a plain numeric .npy: "
                         f"{error})") from error
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{path}: expected a float [models, parameters] array, got "
                         f"{array.dtype} {array.shape}")
    return array


def _layout(path: Path, num_params: int) -> list[tuple[str, int, int, tuple[int, ...]]]:
    rows = []
    for row in _read_csv(path):
        try:
            name, start, end = row["varname"], int(row["start_idx"]), int(row["end_idx"])
            shape = tuple(ast.literal_eval(row["shape"]))
        except (KeyError, ValueError, SyntaxError, TypeError) as error:
            raise ValueError(f"{path}: row {row} lacks varname/start_idx/end_idx/shape") from error
        if end - start != int(np.prod(shape)) or not 0 <= start < end <= num_params:
            raise ValueError(f"{path}: {name} spans [{start}, {end}) for shape {shape} in "
                             f"{num_params} parameters")
        rows.append((name, start, end, shape))
    return rows


def _torch_state(flat: np.ndarray, layout) -> dict[str, Tensor]:
    """One model's TensorFlow variables → a ``ZooCNN`` state_dict."""
    state, conv = {}, 0
    for name, start, end, shape in layout:
        value = torch.from_numpy(np.array(flat[start:end], dtype=np.float32)).reshape(shape)
        if name.endswith("kernel:0") and value.dim() == 4:  # [kh, kw, in, out]
            state[f"convs.{conv}.weight"] = value.permute(3, 2, 0, 1).contiguous()
        elif name.endswith("kernel:0") and value.dim() == 2:  # [in, out]
            state["head.weight"] = value.T.contiguous()
        elif name.endswith("bias:0"):
            key = "head.bias" if "head.weight" in state else f"convs.{conv}.bias"
            state[key] = value
            conv += "head.weight" not in state
        else:
            raise ValueError(f"variable {name} with shape {shape} is not a conv/dense "
                             "kernel or bias")
    return state


def read_small_cnn_zoo(root, out, metrics_file: str = "metrics.csv", order_file: str | None = None,
                       final_only: bool = False, nfn_splits: bool = False,
                       progress: bool = True) -> ModelZoo:
    """Unterthiner et al.'s Small CNN Zoo under ``root`` → a ModelZoo in ``out``.

    Args:
        metrics_file: ``metrics.csv`` (or NFN's ``metrics.csv.gz``), one row per weights row.
        order_file: NFN's CSV of shuffled row indices (applied first).
        final_only: keep only each run's last checkpoint (the largest ``step``).
        nfn_splits: record NFN's split (test: second half; train/val: the first half
            shuffled by ``random.Random(0)``, 80/20).
    """
    root = Path(root)
    weights = _load_npy(_inside(root, "weights.npy"))
    metrics = _read_csv(_inside(root, metrics_file))
    layout = _layout(_inside(root, "layout.csv"), weights.shape[1])
    if len(metrics) != len(weights):
        raise ValueError(f"{root / metrics_file} has {len(metrics)} rows, weights.npy "
                         f"{len(weights)}")
    order = list(range(len(weights)))
    if order_file is not None:
        order = [int(r[0]) for r in csv.reader(io.StringIO(_inside(root, order_file).read_text()))
                 if r]
        if len(set(order)) != len(order) or not all(0 <= i < len(weights) for i in order):
            raise ValueError(f"{root / order_file}: row indices must be distinct and in "
                             f"[0, {len(weights)})")
    if final_only:
        last = max(int(float(metrics[i].get("step", 0))) for i in order)
        order = [i for i in order if int(float(metrics[i].get("step", 0))) == last]
    if any("test_accuracy" not in metrics[i] for i in order[:1]):
        raise KeyError(f"{root / metrics_file} has no test_accuracy column")
    in_channels = next(shape[2] for _, _, _, shape in layout if len(shape) == 4)
    convs = [shape for name, _, _, shape in layout if len(shape) == 4]
    groups: dict[str, dict] = {}
    specs: dict[str, dict] = {}
    count = 0
    for row in tqdm(order, desc="reading zoo", disable=not progress):
        flat = weights[row]
        if not np.isfinite(flat).all():
            continue
        activation = metrics[row].get("config.activation", "relu")
        spec = {"family": "zoo_cnn", "channels": [s[3] for s in convs], "kernel": convs[0][0],
                "activation": activation, "stride": [2] * len(convs), "in_channels": in_channels,
                "classes": next(s[1] for _, _, _, s in layout if len(s) == 2)}
        arch = architecture_id(spec)
        specs[arch] = spec
        group = groups.setdefault(arch, {"params": [], "records": []})
        group["params"].append(_torch_state(flat, layout))
        hyper = {k[len("config."):]: v for k, v in metrics[row].items()
                 if k.startswith("config.")}
        group["records"].append({"id": count, "source_row": row, "hyper": hyper,
                                 "test_accuracy": float(metrics[row]["test_accuracy"]),
                                 "step": int(float(metrics[row].get("step", 0))),
                                 "finite": True})
        count += 1
    splits = _nfn_splits(count) if nfn_splits else None
    return _write(out, groups, specs, {"reader": "small-cnn-zoo", "root": str(root)}, splits)


def _nfn_splits(n: int) -> dict:
    test = list(range(n // 2, n))
    trainval = list(range(n // 2))
    random.Random(0).shuffle(trainval)
    cut = int(0.8 * len(trainval))
    return {"train": sorted(trainval[:cut]), "val": sorted(trainval[cut:]), "test": test}


# --- NG's CNN Wild Park ----------------------------------------------------------------------
def read_cnn_wild_park(root, out, splits_file: str = "cnn_park_splits.json",
                       progress: bool = True) -> ModelZoo:
    """NG's CNN Wild Park checkpoints listed in ``splits_file`` → a ModelZoo in ``out`` that
    keeps the file's train/val/test split."""
    root = Path(root)
    index_path = _inside(root, splits_file)
    try:
        index = json.loads(index_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{index_path}: not a JSON splits file ({error})") from error
    groups: dict[str, dict] = {}
    specs: dict[str, dict] = {}
    splits: dict[str, list[int]] = {}
    count = 0
    for name in ("train", "val", "test"):
        entry = index.get(name)
        if not isinstance(entry, dict) or len(entry.get("path", [])) != len(
                entry.get("score", [None])):
            raise ValueError(f"{index_path}: split {name!r} needs equally long 'path' and "
                             "'score' lists")
        splits[name] = []
        steps = entry.get("step", [None] * len(entry["path"]))
        for relative, score, step in tqdm(list(zip(entry["path"], entry["score"], steps)),
                                          desc=f"reading {name}", disable=not progress):
            path = _inside(root, relative)
            state = _state_dict_of(path)
            entries = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                       for k, v in state.items()]
            spec = {"family": "inferred_sequential", "entries": entries}
            try:
                _inferred(entries)
            except Exception as error:
                raise ValueError(f"{path}: its layout cannot be read from its keys "
                                 f"({error})") from error
            arch = architecture_id(spec)
            specs[arch] = spec
            group = groups.setdefault(arch, {"params": [], "records": []})
            group["params"].append(state)
            finite = all(bool(torch.isfinite(v).all()) for v in state.values()
                         if v.is_floating_point())
            group["records"].append({"id": count, "path": relative, "test_accuracy": float(score),
                                     "step": step, "finite": finite})
            splits[name].append(count)
            count += 1
    return _write(out, groups, specs, {"reader": "cnn-wild-park", "root": str(root)}, splits)


def _state_dict_of(path: Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint (a state_dict, or one under ``state_dict``/``model``)."""
    try:
        loaded = load_weights(path)
    except (RuntimeError, EOFError, OSError) as error:  # truncated zip or pickle
        raise ValueError(f"{path}: unreadable checkpoint ({error})") from error
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    state = {k: v for k, v in loaded.items() if isinstance(v, Tensor)}
    if not state:
        raise ValueError(f"{path} holds no tensors (keys {sorted(loaded)[:5]})")
    return state
