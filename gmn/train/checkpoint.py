"""Checkpoint files that are complete, recorded and verified.

``save_atomic`` writes with :func:`gmn.files.atomic_write` (a killed write leaves the previous
checkpoint intact) and records the file's sha256 in ``checkpoints.json`` beside it;
``load_checkpoint`` checks the file against that record before loading it with
``weights_only=True``. The record is updated in two steps around the rename (first "old or
new", then "new"), so a kill at any moment leaves a checkpoint that matches its record,
while a changed or damaged file raises :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gmn.files import IntegrityError, atomic_write, read_json, sha256, write_json

RECORD = "checkpoints.json"


class CheckpointError(IntegrityError):
    """A checkpoint file exists but cannot be read or does not match its record."""


def _record(folder: Path) -> dict | None:
    path = folder / RECORD
    if not path.exists():
        return None
    try:
        return read_json(path)
    except IntegrityError as err:
        raise CheckpointError(str(err)) from err


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` to ``path`` atomically and record its sha256."""
    path = Path(path)
    record_path = path.parent / RECORD

    def write(tmp):
        torch.save(obj, tmp)
        record = _record(path.parent) or {}
        new = sha256(tmp)
        current = sha256(path) if path.exists() else None
        keep = [current] if current in record.get(path.name, []) else []
        record[path.name] = [*keep, new]  # until the rename: the (verified) old file or the new
        write_json(record, record_path)
        write.digest = new

    atomic_write(path, write)
    record = _record(path.parent) or {}
    record[path.name] = [write.digest]
    write_json(record, record_path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no code runs from the file), after
    checking it against ``checkpoints.json`` when the folder has one.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file does not match its record or cannot be parsed,
            naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    record = _record(path.parent)
    if record is not None:
        accepted = record.get(path.name)
        if not accepted:
            raise CheckpointError(f"{path} is not listed in {path.parent / RECORD}")
        actual = sha256(path)
        if actual not in accepted:
            raise CheckpointError(
                f"{path}: sha256 {actual[:12]}… does not match {path.parent / RECORD} "
                f"({accepted[-1][:12]}…): the checkpoint changed or is corrupt"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
