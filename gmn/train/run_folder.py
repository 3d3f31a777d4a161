"""What a run leaves in its folder: self-verifying checkpoints and the metric log.

**Checkpoints.** ``save_atomic`` writes with :func:`gmn.files.atomic_write` (a killed write
leaves the previous checkpoint intact) and stores, inside the file, the
:func:`gmn.files.content_digest` of everything saved (``"content_sha256"``).
``load_checkpoint`` loads with ``weights_only=True`` and checks that digest, so a damaged
checkpoint raises :class:`CheckpointError` naming it, whether or not any other record of
the run survives.

**Metrics.** ``MetricLog`` appends to a JSON-lines file in the run folder, mirrored to
TensorBoard when installed.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from pathlib import Path

import torch

from gmn.files import (
    CONTENT_HASH,
    CorruptFileError,
    IntegrityError,
    atomic_write,
    content_digest,
    describe_os_error,
    make_folder,
    write_bytes,
)


class CheckpointError(IntegrityError):
    """A checkpoint cannot be read, or does not match the digest it carries."""


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """Write the dict ``obj`` with ``torch.save`` to ``path`` atomically, with the
    :func:`gmn.files.content_digest` of ``obj`` stored beside it in the file."""
    if not isinstance(obj, dict) or CONTENT_HASH in obj:
        raise TypeError(f"a checkpoint is a dict without a {CONTENT_HASH!r} key")
    buffer = io.BytesIO()  # serialised first: a full disk then raises OSError naming the file
    torch.save({**obj, CONTENT_HASH: content_digest(obj)}, buffer)
    return write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_atomic` with ``weights_only=True`` (no code
    runs from the file), after checking its content against the digest it carries.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: the file cannot be parsed, carries no digest or does not match it,
            naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    recorded = state.pop(CONTENT_HASH, None) if isinstance(state, dict) else None
    if recorded is None:
        raise CheckpointError(f"{path} carries no {CONTENT_HASH}: nothing vouches for its "
                              "content (not written by gmn.train.save_atomic)")
    if content_digest(state) != recorded:
        raise CheckpointError(f"{path}: its content does not match the sha256 it was written "
                              "with; the checkpoint changed or is corrupt")
    return state


class MetricLog:
    """Append-only record of metrics, one JSON object per line (``metrics.jsonl``).

    Every record carries ``"step"``, the number of optimiser updates so far, so a resumed
    run can drop the records written after its checkpoint (:meth:`truncate_after`). A torn
    last line (a run killed or out of disk space mid-append) is dropped with a warning; a
    damaged line before it raises :class:`gmn.files.CorruptFileError` naming the file and line.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool | None = None):
        self.path = make_folder(run_dir) / "metrics.jsonl"
        self._writer = _tensorboard_writer(self.path.parent, required=tensorboard is True)
        if tensorboard is False:
            self._writer = None

    def write(self, record: dict) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            raise describe_os_error(err, "append to", self.path) from err
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
