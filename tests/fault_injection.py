"""Kill the reduced benchmark with SIGKILL at stage boundaries and inside stages, resume,
and compare every number and every file with an uninterrupted run.

Run as ``python -m tests.fault_injection OUT`` (``tests/test_benchmark_faults.py`` does):
it prints one JSON report. One uninterrupted run goes to ``OUT/reference``. Then, in
``OUT/killed``, a forked child runs the same command and SIGKILLs itself at the first kill
point (just before or just after a file named there is renamed into place, i.e. inside a
stage or at its boundary); the next child resumes that folder and dies at the next point,
and so on; a last run resumes to the end. Forking keeps the imports of this process, so
nine kills cost little more than one run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from pathlib import Path

TINY = [
    "--classes", "0,1", "--limit", "48", "--inr-steps", "20", "--epochs", "2", "--seeds", "2",
    "--families", "gmn,mlp,cnn", "--batch-size", "16", "--cka-permutations", "5",
    "--gmn-config", '{"hidden_dim": 8, "num_layers": 1, "batch_size": 16, "lr": 0.005}',
    "--no-progress", "--threads", "1",
]  # fmt: skip

# (when, file under --out): the child dies just before or just after this file is renamed
# into place (the n-th time in that child: every child resumes where the last one died).
KILL_POINTS = [
    ("before", "inrs/shard-00000.safetensors"),  # inside the INR stage, mid-write
    ("after", "inrs/manifest.json"),  # boundary: INRs -> training
    ("after", "runs/gmn/seed0/last.pt"),  # inside training, after epoch 1's checkpoint
    ("before", "runs/gmn/seed0/last.pt"),  # inside training, mid-checkpoint (epoch 2)
    ("before", "runs/gmn/seed0/outputs.safetensors"),  # trained, probes not yet stored
    ("after", "runs/gmn/seed0/result.json"),  # boundary between runs: the probe-order case
    ("after", "runs/cnn/seed1/result.json"),  # boundary: training -> CKA
    ("before", "cka.json"),  # inside the CKA stage, mid-write
    ("after", "results.json"),  # inside the report stage
]

# What may differ between two correct runs: wall-clock figures (and files made of them).
TIMING_FILES = {"summary.json", "metrics.jsonl", "report.md"}
TIMING_KEYS = {"timings", "train_seconds", "samples_per_second", "command", "content_sha256"}


def _kill_on_rename(out: Path, when: str, target: str) -> None:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        hit = Path(dst).resolve() == (out / target).resolve()
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst, *args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def _run(argv: list[str]) -> dict:
    from benchmarks.inr_classification.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv)


def run_killed(out: Path, when: str, target: str) -> str:
    """Run the benchmark in a forked child that dies at the kill point; how it ended."""
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            _kill_on_rename(out, when, target)
            _run([*TINY, "--out", str(out)])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed" if os.WTERMSIG(status) == signal.SIGKILL else f"signal {status}"
    return "finished without reaching the kill point" if status == 0 else "failed"


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def snapshot(out: Path) -> dict[str, object]:
    """Every file of a finished run: JSON content without timings, other files' sha256."""
    from gmn.files import sha256

    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.name in TIMING_FILES or "tensorboard" in path.parts:
            continue
        if path.suffix == ".json":
            files[name] = _strip(json.loads(path.read_text()))
        else:
            files[name] = sha256(path)
    return files


def main(folder: str) -> dict:
    import torch

    torch.set_num_threads(1)
    root = Path(folder)
    reference = _run([*TINY, "--out", str(root / "reference")])
    killed = root / "killed"
    outcomes = [
        {"when": when, "file": target, "outcome": run_killed(killed, when, target)}
        for when, target in KILL_POINTS
    ]
    leftovers = sorted(str(p.relative_to(killed)) for p in killed.rglob(".*") if p.is_file())
    resumed = _run([*TINY, "--out", str(killed)])
    want, got = snapshot(root / "reference"), snapshot(killed)
    differing = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    return {
        "kills": outcomes,
        "temporaries_before_last_resume": leftovers,
        "temporaries_after": sorted(
            str(p.relative_to(killed)) for p in killed.rglob(".*") if p.is_file()
        ),
        "files_compared": len(want),
        "files_differing": differing,
        "numbers_equal": _strip(reference) == _strip(resumed),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
