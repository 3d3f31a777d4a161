"""The on-disk INR dataset: a folder of safetensors shards plus a JSON manifest.

``shard-00000.safetensors`` … hold stacked parameters ``{state_dict key: Tensor[n, *shape]}``
of consecutive INRs, with their PSNRs and step counts in the safetensors metadata. Every file
is written to a temporary name and renamed, so a file with its final name is complete.
``manifest.json`` (written last) lists the shards with their sha256; loading checks each
shard's hash the first time it is read and memory-maps it (``safetensors.safe_open``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

MANIFEST = "manifest.json"
FORMAT = "gmn.inr-dataset"
FORMAT_VERSION = 1


class IntegrityError(RuntimeError):
    """A stored file does not match the hash its manifest records."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace_atomically(temporary: Path, path: Path) -> None:
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_shard(path, params: dict[str, Tensor], psnr: Tensor, steps: Tensor) -> None:
    """Write one shard (params [n, *shape] per key; psnr, steps [n]) via a temporary file."""
    path = Path(path)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    # one metadata entry: safetensors writes its metadata map in a random order per process
    metadata = {"gmn": json.dumps({"psnr": psnr.tolist(), "steps": steps.tolist()})}
    save_file({k: v.contiguous() for k, v in params.items()}, str(temporary), metadata)
    _replace_atomically(temporary, path)


def read_shard_metadata(path) -> tuple[list[float], list[int], int]:
    """(psnr, steps, number of INRs) of a shard, from its header only."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        count = handle.get_slice(next(iter(handle.keys()))).get_shape()[0]
    if "gmn" not in metadata:
        raise IntegrityError(f"{path} is not a gmn shard (no gmn metadata)")
    fitted = json.loads(metadata["gmn"])
    return fitted["psnr"], fitted["steps"], count


def write_json(path, content: dict) -> None:
    path = Path(path)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(content, indent=1))
    _replace_atomically(temporary, path)


def read_manifest(folder) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{Path(folder).resolve()} has no {MANIFEST}: not a built dataset")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} manifest (format={manifest.get('format')!r})")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {manifest['format_version']}; this gmn reads up to "
            f"{FORMAT_VERSION}"
        )
    return manifest


class ShardStore:
    """Stacked parameters kept in shards; a shard is hash-checked and loaded on first use."""

    def __init__(self, folder, shards: list[dict], keys: list[str], verify: bool = True):
        self.folder = Path(folder)
        self.shards = shards
        self.keys = keys
        self.verify = verify
        self.starts = torch.tensor([s["start"] for s in shards] + [shards[-1]["stop"]])
        self._loaded: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _shard(self, index: int) -> dict[str, Tensor]:
        if index not in self._loaded:
            entry = self.shards[index]
            path = self.folder / entry["file"]
            if not path.exists():
                raise FileNotFoundError(f"shard {path} listed in the manifest is missing")
            if self.verify and sha256(path) != entry["sha256"]:
                raise IntegrityError(
                    f"{path}: sha256 does not match the manifest (file changed or corrupt)"
                )
            with safe_open(str(path), framework="pt") as handle:
                self._loaded[index] = {k: handle.get_tensor(k) for k in self.keys}
        return self._loaded[index]

    def gather(self, indices: Tensor) -> dict[str, Tensor]:
        """``{key: Tensor[len(indices), *shape]}`` for INR indices (any order)."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if indices.numel() and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"INR index out of range [0, {len(self)})")
        shard_of = torch.searchsorted(self.starts, indices, right=True) - 1
        out = {k: v.new_empty(len(indices), *v.shape[1:]) for k, v in self._shard(0).items()}
        for shard in shard_of.unique().tolist():
            rows = (shard_of == shard).nonzero().squeeze(1)
            tensors = self._shard(shard)
            local = indices[rows] - self.starts[shard]
            for key, value in tensors.items():
                out[key][rows] = value[local]
        return out
