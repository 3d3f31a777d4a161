"""Files under ``--out``, written atomically and verified before reuse.

Every write goes through :func:`gmn.files.atomic_write`: a stage's output either exists
complete or not at all. JSON records and tensor files carry the sha256 of their own content
(:func:`gmn.files.write_json`, :func:`gmn.files.write_safetensors`; checkpoints too,
:func:`gmn.train.save_atomic`), so losing a record never makes a damaged file look valid; a
stage that writes other files also lists their sha256 in its record (:func:`digests`), and
:func:`verify_digests` checks them before they are reused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gmn.files import (
    atomic_write,
    read_safetensors,
    sha256,
    verify_sha256,
    write_safetensors,
)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write named tensors as safetensors with the sha256 of their content, atomically."""
    return write_safetensors(path, tensors)


def load_tensors(path: str | Path, names: list[str]) -> dict[str, torch.Tensor]:
    """The tensors ``names`` of a file :func:`save_tensors` wrote, checked against the hash
    it carries (``CorruptFileError``/``IntegrityError`` naming the file)."""
    return read_safetensors(path, names)[0]


def save_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically, as UTF-8 (a path that is not, e.g. in the command, is
    written with backslash escapes)."""
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(
        text, encoding="utf-8", errors="backslashreplace"))


def digests(folder: Path, names: list[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` in ``folder``, for a stage's record."""
    return {name: sha256(folder / name) for name in names}


def verify_digests(folder: Path, recorded: dict[str, str], record: Path) -> None:
    """Raise ``IntegrityError``/``FileNotFoundError`` naming the first file of ``folder``
    whose sha256 is not the one ``record`` lists."""
    for name, expected in recorded.items():
        verify_sha256(folder / name, expected, str(record))
