"""Metrics: a JSON-lines file in the run folder, mirrored to TensorBoard when installed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def write_json_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON via a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


class MetricLog:
    """Append-only record of metrics, one JSON object per line (``metrics.jsonl``).

    Every record carries ``"step"``, the number of optimiser updates so far, so a resumed
    run can drop the records written after its checkpoint (:meth:`truncate_after`).
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
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drop records with ``record["step"] > step`` (written after a checkpoint)."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.path)

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
