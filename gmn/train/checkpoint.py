"""Atomic checkpoint files: a reader never sees a half-written file.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then
moved over the old one with ``os.replace`` (atomic on POSIX and Windows). A process
killed mid-write leaves the previous checkpoint intact and at worst a stray
``.*.tmp`` file, which the next write removes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):  # persist the rename itself
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no code runs from the file).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file cannot be parsed, naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
