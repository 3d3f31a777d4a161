"""Wall time per stage, summed over every invocation of the benchmark on one ``--out``.

A run may take several invocations (interrupted, killed, resumed); each stage's time is the
sum over all of them. ``--out/timings.json`` keeps one record per invocation (when it
started, how it ended, seconds per stage) and is saved after every stage and every training
run and when an invocation stops (an interrupt or an error writes its own status; a SIGKILL
loses the time since the last save and leaves the status ``"running"``).
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime
from pathlib import Path

from gmn.files import IntegrityError, read_json, write_json

TIMINGS = "timings.json"


class InvocationTimes:
    """This invocation's seconds per stage, saved beside the earlier invocations' records.

    Use as a context manager around the whole invocation; :meth:`begin` starts a stage (and
    ends the one before), :meth:`add` counts seconds under a name (a training run);
    :meth:`summed` adds every invocation's seconds per name."""

    def __init__(self, out: Path):
        self.path = Path(out) / TIMINGS
        self.earlier = self._earlier()
        self.now = {
            "started": datetime.now().isoformat(timespec="seconds"),
            "status": "running",
            "seconds": {"total": 0.0},
        }
        self.start = time.perf_counter()
        self.stage: tuple[str, float] | None = None  # (name, start) of the stage under way

    def _earlier(self) -> list[dict]:
        if not self.path.exists():
            return []
        try:
            return list(read_json(self.path)["invocations"])
        except (IntegrityError, OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"{err}; the wall times of earlier invocations are lost, counting "
                          "from this one", stacklevel=3)
            return []

    def __enter__(self) -> InvocationTimes:
        self.save()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.end()  # a stage stopped by Ctrl-C or an error counts up to there
        if kind is None:
            self.save("completed")
        elif issubclass(kind, KeyboardInterrupt):
            self.save("interrupted")
        else:
            self.save(f"failed: {kind.__name__}")

    def begin(self, name: str) -> None:
        """End the stage under way (if any) and start ``name``."""
        self.end()
        self.stage = (name, time.perf_counter())

    def end(self) -> None:
        """Count the stage under way up to now (nothing when none is)."""
        if self.stage is not None:
            name, start = self.stage
            self.stage = None
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` under ``name`` and save."""
        counted = self.now["seconds"]
        counted[name] = counted.get(name, 0.0) + seconds
        self.save()

    def save(self, status: str | None = None) -> None:
        if status is not None:
            self.now["status"] = status
        self.now["seconds"]["total"] = time.perf_counter() - self.start
        write_json({"invocations": self.invocations}, self.path)

    @property
    def invocations(self) -> list[dict]:
        """Every invocation's record, this one last."""
        return [*self.earlier, self.now]

    def summed(self) -> dict[str, float]:
        """Seconds per stage (and per training run, ``train/FAMILY/seedS``) over every
        invocation, ``total`` included, up to now."""
        self.now["seconds"]["total"] = time.perf_counter() - self.start
        summed: dict[str, float] = {}
        for invocation in self.invocations:
            for name, seconds in invocation["seconds"].items():
                summed[name] = summed.get(name, 0.0) + seconds
        return summed
