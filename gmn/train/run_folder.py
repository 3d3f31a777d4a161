"""What a run leaves in its folder: verified checkpoints and the metric log.

**Checkpoints.** ``save_atomic`` writes with :func:`gmn.files.atomic_write` (a killed write
leaves the previous checkpoint intact) and records the file's sha256 in ``checkpoints.json``
beside it; ``load_checkpoint`` checks the file against that record before loading it with
``weights_only=True``. The record is updated in two steps around the rename (first "old or
new", then "new"), so a kill at any moment leaves a checkpoint that matches its record,
while a changed or damaged file raises :class:`CheckpointError` naming it.

**Metrics.** ``MetricLog`` appends to a JSON-lines file in the run folder, mirrored to
TensorBoard when installed.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import torch

from gmn.files import (
    CorruptFileError,
    IntegrityError,
    atomic_write,
    read_json,
    sha256,
    write_json,
)

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


def write_json_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON atomically (``gmn.files.atomic_write``)."""
    text = json.dumps(obj, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


class MetricLog:
    """Append-only record of metrics, one JSON object per line (``metrics.jsonl``).

    Every record carries ``"step"``, the number of optimiser updates so far, so a resumed
    run can drop the records written after its checkpoint (:meth:`truncate_after`). A torn
    last line (a run killed or out of disk space mid-append) is dropped with a warning; a
    damaged line before it raises :class:`gmn.files.CorruptFileError` naming the file and line.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _tensorboard_writer(self.path.parent, required=tensorboard is True)
        if tensorboard is False:
            self._writer = None

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, record["step"])

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(errors="replace").split("\n")
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if any(rest.strip() for rest in lines[number:]):
                    raise CorruptFileError(
                        f"{self.path} line {number} is not JSON ({err}); the log is damaged: "
                        "delete the line (or the file) to resume"
                    ) from err
                warnings.warn(f"{self.path}: dropped a torn last line ({line[:40]!r}…)",
                              stacklevel=2)
        return records

    def truncate_after(self, step: int) -> None:
        """Drop records with ``record["step"] > step`` (written after a checkpoint)."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _tensorboard_writer(run_dir: Path, required: bool):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        if required:
            raise ImportError("tensorboard=True needs `pip install tensorboard`") from err
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
