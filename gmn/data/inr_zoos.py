"""Readers for the public INR zoos, used as they are on disk.

* DWSNets MNIST-INR: ``mnist_png_{training|testing}_{label}_{id}/checkpoints/model_final.pth``
  (keys ``seq.{0,1,2}.{weight,bias}``) and a splits JSON
  ``{"train": {"path": [...], "label": [...]}, "test": ..., "val": ...}``. DWSNets' split
  script writes absolute paths of the machine that ran it and labels as strings cut from the
  folder name (``"3"``); neural-graphs' writes paths relative to its ``dataset`` folder.
* DWSNets Fashion-MNIST: each ``.pth`` also holds its ``label`` (a Python int);
  ``splits.json`` maps each split to its paths (a list, or ``{"path": [...]}``; neural-graphs'
  ``fmnist_splits.json`` adds a ``label`` list, which must agree with the files).
* NFN SIREN: ``{prefix}_{label}s/net{idx}.pth`` (keys ``net.{i}.linear.{weight,bias}``, last
  layer ``net.{L}.{weight,bias}``), ``idx`` global; split by index ranges (NFN: train
  idx < 45,000 ≤ val < 50,000 ≤ test).

A path from a splits file is looked for as given, then under ``root`` by its tails: the
longest tail that still tells the file's entry apart from every other entry (for DWSNets:
``mnist_png_…/checkpoints/model_final.pth``), never a shorter one, which would be another
network's file. Two different files matching one entry are refused as ambiguous.

Every file goes through ``torch.load(..., weights_only=True)``: a pickle that tries to run code
is refused with an error naming the file. Labels must be classes in [0, 10) (an int, or its
decimal string), weights finite and below ``MAX_ABS_WEIGHT`` in magnitude, and every split
(train, val, test) non-empty. Each reader returns an ``INRDataset``.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gmn import GMNError
from gmn.data.dataset import INRDataset
from gmn.data.split import SPLITS
from gmn.files import require_type
from gmn.models.siren import SirenLayout

_DWSNETS_MNIST_DIR = re.compile(r"mnist_png_(training|testing)_(\d+)_(\d+)$")
_NFN_NET = re.compile(r"net(\d+)\.pth$")


class UnsafeFileError(GMNError, pickle.UnpicklingError):
    """A model file that ``torch.load(weights_only=True)`` refused to load."""


class ZooFileError(GMNError, ValueError):
    """A zoo file or split entry that cannot be used (unreadable, outside the zoo, bad
    values); the message names the file and the value."""


NUM_CLASSES = 10  # every public zoo here: MNIST, Fashion-MNIST, CIFAR-10
# Trained INR weights are O(1) (DWSNets MNIST: per-layer std 0.02-0.12); a larger magnitude is
# a damaged or foreign file, and near 1e19 its square overflows float32 statistics.
MAX_ABS_WEIGHT = 1e4


def load_weights(path) -> dict:
    """A ``.pth`` file loaded with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(
            f"{path}: refused to load (it holds more than weights; "
            f"weights_only=True): {str(error).splitlines()[0]}"
        ) from error
    except Exception as error:  # noqa: BLE001 - EOFError, RuntimeError …: name the file
        raise ZooFileError(
            f"cannot read {path} ({type(error).__name__}: {error}); the file is empty, "
            "truncated or not a PyTorch file: download or copy it again"
        ) from error
    return require_type(loaded, dict, path, "a state_dict")


def read_dwsnets_mnist(root, splits_file="mnist_splits.json", progress: bool = True):
    """The DWSNets MNIST-INR zoo under ``root`` with its splits JSON (relative to ``root``)."""
    root = Path(root)
    source = root / splits_file
    splits = _read_json(source)
    entries = {}
    for name in SPLITS:
        entry = splits.get(name)
        if not isinstance(entry, dict) or "path" not in entry or "label" not in entry:
            raise ValueError(f"{source}: split {name!r} needs 'path' and 'label' lists")
        if len(entry["path"]) != len(entry["label"]):
            raise ValueError(f"{source}: split {name!r} has "
                             f"{len(entry['path'])} paths but {len(entry['label'])} labels")
        entries[name] = entry
    resolve = _resolver(root, source, [p for e in entries.values() for p in e["path"]])
    paths, labels, split_index = [], [], {}
    for name, entry in entries.items():
        split_index[name] = torch.arange(len(paths), len(paths) + len(entry["path"]))
        for path, label in zip(entry["path"], entry["label"]):
            resolved = resolve(path)
            label = _check_label(label, f"{source}: split {name!r} entry {path}")
            _check_dir_label(resolved, label)
            paths.append(resolved)
            labels.append(label)
    _check_nonempty(split_index, str(source))
    state_dicts = [load_weights(p) for p in tqdm(paths, desc="reading zoo", disable=not progress)]
    return _dataset(paths, state_dicts, labels, split_index, style="dwsnets", zoo="dwsnets-mnist")


def read_dwsnets_fmnist(root, splits_file="splits.json", progress: bool = True):
    """The DWSNets Fashion-MNIST INR zoo: the label is read from each ``.pth``."""
    root = Path(root)
    source = root / splits_file
    splits = _read_json(source)
    lists, listed_labels = {}, {}
    for name in SPLITS:
        entry = splits.get(name)
        if isinstance(entry, dict):
            listed_labels[name] = entry.get("label")
            entry = entry.get("path")
        if not isinstance(entry, list):
            raise ValueError(f"{source}: split {name!r} must list paths")
        lists[name] = entry
    resolve = _resolver(root, source, [p for paths in lists.values() for p in paths])
    paths, split_of, split_index = [], [], {}
    for name, entry in lists.items():
        split_index[name] = torch.arange(len(paths), len(paths) + len(entry))
        paths += [resolve(p) for p in entry]
        split_of += [(name, i) for i in range(len(entry))]
    _check_nonempty(split_index, str(source))
    state_dicts, labels = [], []
    for path, (name, i) in zip(tqdm(paths, desc="reading zoo", disable=not progress), split_of):
        state = load_weights(path)
        if "label" not in state:
            raise ValueError(f"{path} has no 'label' entry (keys {sorted(state)})")
        label = torch.as_tensor(state.pop("label"))
        if label.numel() != 1 or label.is_floating_point() or label.is_complex():
            raise ZooFileError(f"{path}: 'label' must be one integer, got {label.tolist()!r}")
        label = _check_label(int(label), str(path))
        listed = listed_labels.get(name)
        if listed is not None and (len(listed) != len(lists[name]) or listed[i] != label):
            raise ZooFileError(f"{source}: split {name!r} lists label "
                               f"{listed[i] if i < len(listed) else None!r} for {path}, whose "
                               f"file says {label}")
        labels.append(label)
        state_dicts.append(state)
    return _dataset(paths, state_dicts, labels, split_index, style="dwsnets", zoo="dwsnets-fmnist")


def read_nfn_siren(root, prefix: str = "randinit_smaller", split_points=(45_000, 50_000),
                   progress: bool = True):
    """The NFN SIREN zoo: ``{prefix}_{label}s/net{idx}.pth``; train idx < split_points[0] ≤
    val < split_points[1] ≤ test. Keys are renamed to ``seq.{i}.{weight,bias}``."""
    root = Path(root)
    label_dir = re.compile(re.escape(prefix) + r"_(\d+)s$")
    records = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        match = label_dir.match(folder.name)
        if match is None:
            continue
        for file in folder.iterdir():
            net = _NFN_NET.match(file.name)
            if net is not None:
                _inside(root, file, file.name)
                label = _check_label(int(match.group(1)), str(folder))
                records.append((int(net.group(1)), file, label))
    if not records:
        raise FileNotFoundError(f"no {prefix}_<label>s/net<idx>.pth files under {root}")
    records.sort()
    indices = [r[0] for r in records]
    if len(set(indices)) != len(indices):
        raise ValueError(f"{root}: a net index appears in two label folders")
    paths, labels = [r[1] for r in records], [r[2] for r in records]
    idx = torch.tensor(indices)
    low, high = split_points
    split_index = {
        "train": (idx < low).nonzero().squeeze(1),
        "val": ((idx >= low) & (idx < high)).nonzero().squeeze(1),
        "test": (idx >= high).nonzero().squeeze(1),
    }
    _check_nonempty(split_index, f"{root}: split_points={tuple(split_points)} (train idx < "
                                 f"{low} <= val < {high} <= test; the net indices run "
                                 f"{indices[0]}..{indices[-1]}, pass split_points= inside "
                                 "that range)")
    state_dicts = [_from_nfn_keys(load_weights(p), p)
                   for p in tqdm(paths, desc="reading zoo", disable=not progress)]
    return _dataset(paths, state_dicts, labels, split_index, style="standard", zoo="nfn-siren")


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"splits file {path} not found")
    return json.loads(path.read_text())


def _resolver(root: Path, source: Path, given: list):
    """``resolve(path)``: a splits-file path on this machine (see the module docstring).

    A tail must keep enough trailing parts to tell its entry apart from every other entry
    (other than the same path written with another prefix); a shorter tail names a file that
    other entries share (``checkpoints/model_final.pth``). A path that resolves outside
    ``root`` (``..``, an absolute path elsewhere, a symlink out) is refused."""
    for path in given:
        if not isinstance(path, str):
            raise ZooFileError(f"{source}: path {path!r} is not a string")
    unique = sorted(set(given))
    keep = dict(zip(unique, _tail_lengths([Path(p).parts for p in unique])))

    def resolve(path: str) -> Path:
        stated = Path(path)
        if stated.is_absolute() and stated.exists():
            return _inside(root, stated, path)
        parts = stated.parts[1:] if stated.is_absolute() else stated.parts
        tails = [root.joinpath(*parts[start:]) for start in range(len(parts))]
        found = [t for t in tails[:max(1, len(parts) - keep[path] + 1)] if t.exists()]
        if not found:
            stray = [t for t in tails if t.exists()]
            raise FileNotFoundError(
                f"{path} (from {source}) not found, nor any tail of it under {root}"
                + (f"; {stray[0]} is a shorter tail that other entries share, so another "
                   "network's file: not read" if stray else ""))
        if len({t.resolve() for t in found}) > 1:
            raise ZooFileError(f"{path} (from {source}) is ambiguous: "
                               f"{' and '.join(map(str, found))} both match it; keep one")
        return _inside(root, found[0], path)

    return resolve


def _tail_lengths(paths: list[tuple[str, ...]]) -> list[int]:
    """For each path (a tuple of parts): 1 + its longest common suffix with another path,
    ignoring paths that end with the whole of it or that it ends with (the same file under
    another prefix). Sorted by reversed parts, the longest common suffix is with the nearest
    such neighbour on either side."""
    order = sorted(range(len(paths)), key=lambda i: paths[i][::-1])
    need = [1] * len(paths)
    for position, i in enumerate(order):
        for step in (-1, 1):
            j = position + step
            while 0 <= j < len(order):
                a, b = paths[i], paths[order[j]]
                common = next((k for k in range(min(len(a), len(b))) if a[-1 - k] != b[-1 - k]),
                              min(len(a), len(b)))
                if common < min(len(a), len(b)):
                    need[i] = max(need[i], common + 1)
                    break
                j += step
    return need


def _inside(root: Path, candidate: Path, given) -> Path:
    real, real_root = candidate.resolve(), root.resolve()
    if not real.is_relative_to(real_root):
        raise ZooFileError(f"{given} resolves to {real}, outside the zoo root {real_root}; "
                           "refusing to read it")
    return candidate


def _check_label(label, where: str) -> int:
    """A class in [0, NUM_CLASSES): an int, or its decimal string (DWSNets' and neural-graphs'
    split scripts cut labels from folder names: ``"3"``)."""
    value = int(label) if isinstance(label, str) and re.fullmatch(r"[0-9]+", label) else label
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NUM_CLASSES:
        raise ZooFileError(f"{where}: label {label!r} is not an integer class in "
                           f"[0, {NUM_CLASSES})")
    return value


def _check_dir_label(path: Path, label: int) -> None:
    for part in path.parts:
        match = _DWSNETS_MNIST_DIR.match(part)
        if match is not None and int(match.group(2)) != label:
            raise ValueError(f"{path}: folder says label {match.group(2)}, splits file {label}")


def _from_nfn_keys(state: dict, path: Path) -> dict:
    hidden = sorted(int(m.group(1)) for k in state
                    if (m := re.match(r"net\.(\d+)\.linear\.weight$", k)))
    last = len(hidden)
    expected = [f"net.{i}.linear.{p}" for i in hidden for p in ("weight", "bias")]
    expected += [f"net.{last}.weight", f"net.{last}.bias"]
    if hidden != list(range(last)) or set(expected) != set(state):
        raise ValueError(f"{path}: keys {sorted(state)} are not an NFN SIREN's "
                         "(net.{i}.linear.weight/bias, then net.{L}.weight/bias)")
    out = {}
    for i in hidden:
        out[f"seq.{i}.weight"] = state[f"net.{i}.linear.weight"]
        out[f"seq.{i}.bias"] = state[f"net.{i}.linear.bias"]
    out[f"seq.{last}.weight"], out[f"seq.{last}.bias"] = state[f"net.{last}.weight"], state[
        f"net.{last}.bias"]
    return out


def _layout_of(state: dict, path: Path, style: str) -> SirenLayout:
    weights = [state.get(f"seq.{i}.weight") for i in range(len(state) // 2)]
    if any(w is None or w.dim() != 2 for w in weights) or len(state) != 2 * len(weights):
        raise ValueError(f"{path}: keys {sorted(state)} are not seq.{{i}}.weight/bias of a SIREN")
    return SirenLayout(weights[0].shape[1], tuple(w.shape[0] for w in weights[:-1]),
                       weights[-1].shape[0], style=style)


def _check_nonempty(split_index: dict[str, Tensor], source: str) -> None:
    empty = [name for name in SPLITS if len(split_index[name]) == 0]
    if empty:
        raise ZooFileError(f"{source}: split(s) {empty} are empty; every split (train, val, "
                           "test) needs networks (val selects the model, test scores it)")


def _dataset(paths, state_dicts, labels, split_index, *, style: str, zoo: str) -> INRDataset:
    seen = {}
    for split, indices in split_index.items():
        for i in indices.tolist():
            real = Path(paths[i]).resolve()
            if real in seen:
                raise ZooFileError(f"{paths[i]} is listed twice (in {seen[real]!r} and "
                                   f"{split!r}); a network must belong to one split only")
            seen[real] = split
    layout = _layout_of(state_dicts[0], paths[0], style)
    shapes = layout.shapes()
    for path, state in zip(paths, state_dicts):
        wrong = {k: tuple(v.shape) for k, v in state.items() if tuple(v.shape) != shapes.get(k)}
        if wrong or set(state) != set(shapes):
            raise ValueError(f"{path}: entries {wrong or sorted(state)} do not match the zoo's "
                             f"layout {shapes} (from {paths[0]})")
        for key, value in state.items():
            if not value.is_floating_point():
                raise ZooFileError(f"{path}: {key!r} holds {value.dtype} values, expected "
                                   "floating-point weights")
            if not bool(value.isfinite().all()):
                raise ZooFileError(f"{path}: {key!r} holds NaN or infinite values")
            largest = value.abs().max().item()
            if largest > MAX_ABS_WEIGHT:
                raise ZooFileError(f"{path}: {key!r} holds a weight of magnitude {largest:.3g}, "
                                   f"beyond any trained INR's (> {MAX_ABS_WEIGHT:g}); the file "
                                   "is damaged or not an INR")
    params: dict[str, Tensor] = {
        k: torch.stack([s[k].float() for s in state_dicts]) for k in shapes
    }
    return INRDataset(params, torch.tensor(labels), layout, split_index,
                      info={"zoo": zoo, "paths": [str(p) for p in paths]})
