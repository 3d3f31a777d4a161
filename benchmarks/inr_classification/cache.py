"""Atomic files under ``--out``: a stage's output either exists complete or not at all.

A file is written to a temporary name in the same folder and renamed into place, so a run
killed at any moment leaves no partial file for the next run to read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON, atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    return _atomic_write(Path(path), write)


def load_json(path: str | Path):
    with open(path) as f:
        return json.load(f)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write named tensors as safetensors, atomically (contiguous CPU copies)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return _atomic_write(Path(path), lambda tmp: save_file(tensors, tmp))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def save_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    return _atomic_write(Path(path), write)
