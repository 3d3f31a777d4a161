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
  whose paths (relative to ``root``) are state_dict checkpoints.
* Any folder of checkpoints (``torch.save``'d state_dicts, or safetensors files) with a CSV of
  their targets: :func:`import_checkpoints`.

The architecture of a checkpoint is inferred from its keys (:mod:`gmn.graph.infer`,
activations recorded as unknown), or given with ``like=``: a module of the architecture (or a
function ``like(relative_path, state_dict) -> module``); its graph template is then stored
in the zoo, so reading the zoo needs neither the module's class nor a registered factory.

Safe loading only: ``numpy.load(allow_pickle=False)``, ``torch.load(weights_only=True)`` and
safetensors; every path must stay inside ``root``; a malicious, truncated or inconsistent file
is refused with an error naming it.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from gmn.data.inr_zoos import load_weights
from gmn.data.storage import write_shard
from gmn.files import sha256
from gmn.graph.convert import template_for
from gmn.graph.errors import ConversionError
from gmn.zoo.specs import architecture_id, inferred_sequential, inferred_spec
from gmn.zoo.store import MODEL_ZOO, ModelZoo, write_zoo_manifest
from gmn.zoo.stored_template import STORED_FAMILY, template_bytes, write_template

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
Like = nn.Module | Callable[[str, dict], nn.Module] | None


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it leaves ``root`` (``..``, absolute paths, links)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{relative!r} (from the zoo's index) points outside {root}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} (listed in the zoo's index) not found")
    return path


def _write(out, groups: dict[str, dict], specs: dict[str, dict], source: dict,
           splits: dict | None, templates: dict | None = None) -> ModelZoo:
    """Write one shard per architecture: ``groups[arch] = {"params": [state_dicts],
    "records": [model records with "id"]}``, and the graph template of each architecture in
    ``templates`` (those imported with ``like=``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if splits is not None:
        empty = [name for name in ("train", "val", "test") if not splits.get(name)]
        if empty:
            raise ValueError(f"{source.get('split_file', source['root'])}: split(s) {empty} "
                             "are empty; every split needs models (val selects, test scores)")
    for arch, template in (templates or {}).items():
        write_template(template, out / specs[arch]["file"])
    names = {arch: f"arch{i:02d}" for i, arch in enumerate(groups)}
    shards = []
    for arch, group in groups.items():
        file = f"shard-{len(shards):05d}.safetensors"
        keys = list(group["params"][0])
        stacked = {k: torch.stack([p[k] for p in group["params"]]) for k in keys}
        records = [dict(r, architecture=names[arch], shard=file, row=row)
                   for row, r in enumerate(group["records"])]
        write_shard(out / file, stacked, {"models": records}, MODEL_ZOO)
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

    Every row becomes a model; one with NaN or infinite weights (a diverged run) is kept with
    ``finite: False`` (NFN's split counts it too; the benchmark leaves it out).
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
                                 "finite": bool(np.isfinite(flat).all())})
        count += 1
    splits = _nfn_splits(count) if nfn_splits else None
    return _write(out, groups, specs, {"reader": "small-cnn-zoo", "root": str(root)}, splits)


def _nfn_splits(n: int) -> dict:
    test = list(range(n // 2, n))
    trainval = list(range(n // 2))
    random.Random(0).shuffle(trainval)
    cut = int(0.8 * len(trainval))
    return {"train": sorted(trainval[:cut]), "val": sorted(trainval[cut:]), "test": test}


class _Models:
    """Checkpoints added one by one, grouped by architecture (see the module docstring for
    ``like``), then written as a :class:`ModelZoo`."""

    def __init__(self, like: Like):
        self.like = like
        self.groups: dict[str, dict] = {}
        self.specs: dict[str, dict] = {}
        self.templates: dict[str, object] = {}
        self._stored: dict[object, str] = {}  # template -> its architecture id
        self.count = 0

    def add(self, path: Path, relative: str, state: dict[str, Tensor], record: dict) -> int:
        """Add one model (``state``, read from ``path``); returns its index."""
        arch = self._architecture(path, relative, state)
        group = self.groups.setdefault(arch, {"params": [], "records": []})
        group["params"].append(state)
        finite = all(bool(torch.isfinite(v).all()) for v in state.values()
                     if v.is_floating_point())
        group["records"].append({"id": self.count, "path": relative, **record, "finite": finite})
        self.count += 1
        return self.count - 1

    def _architecture(self, path: Path, relative: str, state: dict[str, Tensor]) -> str:
        if self.like is None:
            spec = inferred_spec(state)
            arch = architecture_id(spec)
            if arch not in self.specs:
                try:
                    inferred_sequential(spec["entries"])
                except Exception as error:
                    raise ValueError(f"{path}: its layout cannot be read from its keys "
                                     f"({error})") from error
                self.specs[arch] = spec
            return arch
        module = self.like if isinstance(self.like, nn.Module) else self.like(relative, state)
        if not isinstance(module, nn.Module):
            raise TypeError(f"like({relative!r}, state_dict) returned a "
                            f"{type(module).__name__}, not an nn.Module")
        template = template_for(module)
        try:
            template.flatten(state, allow_nonfinite=True)
        except ConversionError as error:
            raise ValueError(f"{path} does not fit like= ({type(module).__name__}): "
                             f"{error}") from error
        if template not in self._stored:
            digest = hashlib.sha256(template_bytes(template)).hexdigest()
            arch = f"{STORED_FAMILY}:{digest}"
            self._stored[template] = arch
            self.templates[arch] = template
            self.specs[arch] = {"family": STORED_FAMILY,
                                "file": f"template-{digest[:16]}.safetensors", "sha256": digest}
        return self._stored[template]

    def write(self, out, source: dict, splits: dict | None) -> ModelZoo:
        return _write(out, self.groups, self.specs, source, splits, self.templates)


# --- NG's CNN Wild Park ----------------------------------------------------------------------
def read_cnn_wild_park(root, out, splits_file: str = "cnn_park_splits.json", like: Like = None,
                       progress: bool = True) -> ModelZoo:
    """NG's CNN Wild Park checkpoints listed in ``splits_file`` → a ModelZoo in ``out`` that
    keeps the file's train/val/test split (each must hold models). ``like``: see the module
    docstring (default: each architecture inferred from its keys)."""
    root = Path(root)
    index_path = _inside(root, splits_file)
    try:
        index = json.loads(index_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{index_path}: not a JSON splits file ({error})") from error
    models = _Models(like)
    splits: dict[str, list[int]] = {}
    for name in ("train", "val", "test"):
        entry = index.get(name)
        if not isinstance(entry, dict) or len(entry.get("path", [])) != len(
                entry.get("score", [None])):
            raise ValueError(f"{index_path}: split {name!r} needs equally long 'path' and "
                             "'score' lists")
        steps = entry.get("step", [None] * len(entry["path"]))
        splits[name] = [
            models.add(path, relative, _state_dict_of(path),
                       {"test_accuracy": float(score), "step": step})
            for relative, score, step in tqdm(list(zip(entry["path"], entry["score"], steps)),
                                              desc=f"reading {name}", disable=not progress)
            for path in [_inside(root, relative)]]
    source = {"reader": "cnn-wild-park", "root": str(root), "split_file": str(index_path)}
    return models.write(out, source, splits)


def _state_dict_of(path: Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint: a safetensors file, or a ``torch.save``'d state_dict (or
    one under ``state_dict``/``model_state_dict``/``model``)."""
    if path.suffix == ".safetensors":
        try:
            loaded = load_file(str(path))
        except Exception as error:  # noqa: BLE001 - safetensors raises its own kinds
            raise ValueError(f"{path}: unreadable safetensors file ({error})") from error
    else:
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


# --- a folder of checkpoints with a CSV of targets --------------------------------------------
def import_checkpoints(folder, targets, out, *, like: Like = None, column: str | None = None,
                       metric: str = "test_accuracy", progress: bool = True) -> ModelZoo:
    """A folder of checkpoints and a CSV of their targets → a :class:`ModelZoo` in ``out``.

    Args:
        folder: checkpoints anywhere below it: files ending in ``.pt``, ``.pth``, ``.ckpt``,
            ``.bin`` (``torch.save``'d state_dicts, or dicts holding one under
            ``state_dict``/``model_state_dict``/``model``) or ``.safetensors``.
        targets: a CSV with a header line. Its first column names each checkpoint by its path
            below ``folder``, with or without the suffix (``cnn_007.pt`` or ``cnn_007``); an
            optional ``split`` column (``train``/``val``/``test``) becomes the zoo's split.
        out: the zoo folder to write.
        like: the architecture when the keys cannot tell it (activations, pooling, residual
            connections): a module, or ``like(relative_path, state_dict) -> module``.
            Default: inferred from the keys of each checkpoint.
        column: the target column (default: the one named ``metric``, else the one column
            besides the file and split).
        metric: the model record key the target is stored under (``ModelZoo.targets`` and
            ``python -m benchmarks.generalization`` read ``test_accuracy``).

    Every checkpoint must have exactly one row and every row a checkpoint; the other columns
    are kept in each record's ``columns``. Errors name the file, the row or the column.
    """
    folder, targets = Path(folder), Path(targets)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} not found")
    rows, column = _read_targets(targets, column, metric)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in
                   CHECKPOINT_SUFFIXES and p.resolve() != targets.resolve())
    matched = _match_rows(folder, files, rows, targets)
    models = _Models(like)
    splits: dict[str, list[int]] | None = {"train": [], "val": [], "test": []} \
        if "split" in rows[0]["columns"] else None
    for row, path in tqdm(list(zip(rows, matched)), desc="importing", disable=not progress):
        relative = path.relative_to(folder).as_posix()
        index = models.add(_inside(folder, relative), relative, _state_dict_of(path),
                           {metric: row["target"], "columns": row["columns"]})
        if splits is not None:
            split = row["columns"]["split"]
            if split not in splits:
                raise ValueError(f"{targets}, line {row['line']}: split {split!r} is not "
                                 "train, val or test")
            splits[split].append(index)
    source = {"reader": "checkpoint-folder", "root": str(folder), "targets": str(targets),
              "targets_sha256": sha256(targets), "column": column, "metric": metric,
              "like": None if like is None else getattr(like, "__qualname__",
                                                        type(like).__qualname__),
              "split_file": str(targets)}
    return models.write(out, source, splits)


def _read_targets(path: Path, column: str | None, metric: str) -> tuple[list[dict], str]:
    """Rows ``{"file", "target", "columns", "line"}`` of a targets CSV, and the target column."""
    if not path.is_file():
        raise FileNotFoundError(f"targets file {path} not found")
    try:
        table = list(csv.reader(io.StringIO(path.read_text())))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from error
    header, body = (table[0], table[1:]) if table else ([], [])
    if len(header) < 2 or _number(header[-1]) is not None:
        raise ValueError(f"{path} needs a header line naming its columns (a file column, then "
                         f"the target), e.g. 'file,test_accuracy'; its first line is {header}")
    others = [c for c in header[1:] if c != "split"]
    if column is None and metric in others:
        column = metric
    if column is None:
        if len(others) != 1:
            raise ValueError(f"{path} has columns {others} besides the file: say which is the "
                             "target (column=, or --target-column)")
        column = others[0]
    if column not in others:
        raise ValueError(f"{path} has no column {column!r}; its columns: {header}")
    rows = []
    for line, cells in enumerate(body, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ValueError(f"{path}, line {line}: {len(cells)} cells, the header has "
                             f"{len(header)}")
        record = dict(zip(header, cells))
        target = _number(record[column])
        if target is None or not math.isfinite(target):
            raise ValueError(f"{path}, line {line}: {column} {record[column]!r} is not a finite "
                             "number")
        rows.append({"file": cells[0].strip(), "target": target, "line": line,
                     "columns": {k: v for k, v in record.items() if k not in (header[0], column)}})
    if not rows:
        raise ValueError(f"{path} lists no checkpoints")
    return rows, column


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _match_rows(folder: Path, files: list[Path], rows: list[dict], targets: Path) -> list[Path]:
    """The checkpoint of each row; every file matched by exactly one row."""
    names: dict[str, list[Path]] = {}
    for file in files:
        relative = file.relative_to(folder).as_posix()
        for name in {relative, relative.removesuffix(file.suffix)}:
            names.setdefault(name, []).append(file)
    matched, seen = [], {}
    for row in rows:
        found = names.get(row["file"], [])
        if len(found) != 1:
            raise ValueError(
                f"{targets}, line {row['line']}: {row['file']!r} "
                + ("matches no checkpoint" if not found else
                   f"matches {len(found)} checkpoints ({', '.join(map(str, found))})")
                + f" in {folder} (files ending in {', '.join(CHECKPOINT_SUFFIXES)})")
        if found[0] in seen:
            raise ValueError(f"{targets}: lines {seen[found[0]]} and {row['line']} both name "
                             f"{found[0]}")
        seen[found[0]] = row["line"]
        matched.append(found[0])
    unlisted = [f.relative_to(folder).as_posix() for f in files if f not in seen]
    if unlisted:
        raise ValueError(f"{len(unlisted)} checkpoint(s) in {folder} have no row in {targets}: "
                         f"{', '.join(unlisted[:5])}{' …' if len(unlisted) > 5 else ''}")
    return matched
