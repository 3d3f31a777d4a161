"""The one on-disk store of stacked networks, for INR datasets and CNN zoos alike: a folder of
safetensors shards plus a JSON manifest.

``shard-00000.safetensors`` … hold stacked parameters ``{state_dict key: Tensor[n, *shape]}``
of consecutive networks, with JSON metadata about them under one header key of the
safetensors metadata (the :class:`StoreFormat` says which), and the sha256 of that content
(:func:`gmn.files.write_safetensors`): a shard vouches for itself when no manifest does. Every
file is written to a temporary name and renamed, so a file with its final name is complete.
``manifest.json`` (written last by :func:`gmn.files.write_json`, with the sha256 of its content)
names its format and version and lists the shards with their sha256; :class:`ShardStore`
checks each shard's hash the first time it is read. ``build.json`` records the settings of
the build, which a resumed build must match (:func:`check_build_record`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gmn import files
from gmn.files import (
    CorruptFileError,
    IntegrityError,
    read_safetensors,
    read_safetensors_metadata,
    sha256,
    verify_sha256,
    write_safetensors,
)

MANIFEST = "manifest.json"
BUILD_RECORD = "build.json"
__all__ = ["BUILD_RECORD", "INR_DATASET", "MANIFEST", "CorruptFileError", "IntegrityError",
           "ShardStore", "StoreFormat", "check_build_record", "read_manifest",
           "read_shard_metadata", "sha256", "shard_name", "verify_shard", "write_shard"]


@dataclass(frozen=True)
class StoreFormat:
    """What a store holds: the manifest's ``format`` name and newest ``version``, the header
    key of the shards' metadata, the fields that metadata must have, and the word for a
    folder of it (in error messages)."""

    name: str
    version: int
    metadata_key: str
    metadata_fields: tuple[str, ...]
    folder: str


INR_DATASET = StoreFormat("gmn.inr-dataset", 1, "gmn", ("psnr", "steps"), "dataset")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def write_shard(path, params: dict[str, Tensor], metadata: dict, form: StoreFormat) -> None:
    """Write one shard (``params`` ``{key: Tensor[n, *shape]}``, JSON ``metadata``) atomically."""
    write_safetensors(path, params, {form.metadata_key: json.dumps(metadata)})


def verify_shard(path) -> None:
    """Check a shard against the sha256 of its content that it carries (no manifest needed).

    Raises:
        CorruptFileError, IntegrityError: naming the file (damaged, or carrying no hash).
    """
    read_safetensors(path)


def read_shard_metadata(path, form: StoreFormat) -> dict:
    """The JSON metadata of a shard of ``form``, from its header only.

    Raises:
        CorruptFileError: the file is not a readable shard of ``form`` (truncated, damaged, or
        its metadata is missing a field), naming it.
    """
    metadata = read_safetensors_metadata(path)
    try:
        content = json.loads(metadata[form.metadata_key])
        missing = [name for name in form.metadata_fields if name not in content]
    except (KeyError, ValueError, TypeError) as err:
        raise CorruptFileError(f"{path} is not a {form.name} shard (its {form.metadata_key!r} "
                               f"metadata is missing or damaged: {err})") from err
    if missing:
        raise CorruptFileError(f"{path} is not a {form.name} shard (its {form.metadata_key!r} "
                               f"metadata has no {missing})")
    return content


def check_build_record(folder, config: dict, ignored=(), write: bool = True) -> None:
    """Refuse to build into ``folder`` with settings other than those its ``build.json``
    records (keys in ``ignored`` aside), or, with no record yet, write ``config`` as it
    (``write=False``: another process writes it).

    Raises:
        ValueError: naming the record and each differing setting, its value on disk and
        asked.
    """
    path = Path(folder) / BUILD_RECORD
    config = json.loads(json.dumps(config))  # tuples → lists, as stored
    if path.exists():
        stored = files.read_json(path)
        differ = sorted(k for k in set(config) | set(stored)
                        if k not in ignored and config.get(k) != stored.get(k))
        if differ:
            raise ValueError(f"{path} was built with different settings ({', '.join(differ)}: "
                             f"{[stored.get(k) for k in differ]} on disk, "
                             f"{[config.get(k) for k in differ]} asked); use a new folder (or "
                             "delete it) to build with these")
    elif write:
        files.write_json(config, path, indent=1)


def read_manifest(folder, form: StoreFormat) -> dict:
    """The manifest of a folder of ``form``, checked against the sha256 of its content.

    Raises:
        FileNotFoundError: no manifest. CorruptFileError, IntegrityError: a damaged or edited
        manifest, naming it. ValueError: another format or a newer version.
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{Path(folder).resolve()} has no {MANIFEST}: not a built "
                                f"{form.folder}")
    manifest = files.read_json(path)
    if manifest.get("format") != form.name:
        raise ValueError(f"{path} is not a {form.name} manifest "
                         f"(format={manifest.get('format')!r})")
    if manifest.get("format_version", 0) > form.version:
        raise ValueError(f"{path} has format_version {manifest['format_version']}; this gmn "
                         f"reads up to {form.version}")
    return manifest


class ShardStore:
    """Stacked parameters kept in shards; a shard is hash-checked and loaded on first use.

    ``max_loaded`` bounds the shards held in memory at once (the least recently used one is
    dropped first; None: every shard read stays), so a dataset larger than memory streams
    through a bounded window."""

    def __init__(self, folder, shards: list[dict], keys: list[str], verify: bool = True,
                 max_loaded: int | None = None):
        if max_loaded is not None and max_loaded < 1:
            raise ValueError(f"max_loaded must be >= 1 or None, got {max_loaded}")
        self.folder = Path(folder)
        self.shards = shards
        self.keys = keys
        self.verify = verify
        self.max_loaded = max_loaded
        self.starts = torch.tensor([s["start"] for s in shards] + [shards[-1]["stop"]])
        self._loaded: dict[int, dict[str, Tensor]] = {}  # in order of last use

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _shard(self, index: int) -> dict[str, Tensor]:
        if index in self._loaded:
            self._loaded[index] = self._loaded.pop(index)  # most recently used last
        else:
            if self.max_loaded is not None and len(self._loaded) >= self.max_loaded:
                self._loaded.pop(next(iter(self._loaded)))
            entry = self.shards[index]
            path = self.folder / entry["file"]
            if not path.exists():
                raise FileNotFoundError(f"shard {path} listed in the manifest is missing")
            data = path.read_bytes()
            if self.verify:
                verify_sha256(path, entry["sha256"], f"the manifest {self.folder / MANIFEST}",
                              digest=hashlib.sha256(data).hexdigest())
            # the manifest's hash vouches for the bytes (shards of older builds carry no own)
            self._loaded[index], _ = read_safetensors(path, self.keys, data=data, verify=False)
        return self._loaded[index]

    def gather(self, indices: Tensor) -> dict[str, Tensor]:
        """``{key: Tensor[len(indices), *shape]}`` for INR indices (any order)."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if indices.numel() and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"INR index out of range [0, {len(self)})")
        shard_of = self.shard_of(indices)
        out = None
        for shard in shard_of.unique().tolist():
            rows = (shard_of == shard).nonzero().squeeze(1)
            tensors = self._shard(shard)
            if out is None:
                out = {k: v.new_empty(len(indices), *v.shape[1:]) for k, v in tensors.items()}
            local = indices[rows] - self.starts[shard]
            for key, value in tensors.items():
                out[key][rows] = value[local]
        if out is None:  # no index: empty tensors shaped like the first shard's
            out = {k: v[:0].clone() for k, v in self._shard(0).items()}
        return out

    def shard_of(self, indices: Tensor) -> Tensor:
        """[n] long: the shard holding each INR index."""
        return torch.searchsorted(self.starts, indices, right=True) - 1
