"""Kill the reduced benchmark with SIGKILL at stage boundaries and inside stages, resume,
and compare every number and every file with an uninterrupted run.

Run as ``python -m tests.fault_injection OUT`` (``tests/test_benchmark_faults.py`` does):
it prints one JSON report. One uninterrupted run goes to ``OUT/run``, then is moved to
``OUT/reference``. Then, in ``OUT/run`` again (the same paths, which checkpoints record), a
forked child runs the same command and SIGKILLs itself at the first kill
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
import shutil
import signal
import sys
from pathlib import Path

import torch

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
    ("before", "runs/gmn/seed0/outputs.safetensors"),  # trained, outputs not yet stored
    ("after", "runs/gmn/seed0/result.json"),  # boundary between runs: one cached, one fresh
    ("after", "runs/cnn/seed1/result.json"),  # boundary: training -> CKA
    ("before", "cka.json"),  # inside the CKA stage, mid-write
    ("after", "results.json"),  # inside the report stage
]

# What may differ between two correct runs: wall-clock figures (and files made of them), and
# the sha256 of checkpoint files (torch.save stores a random serialization id in each file;
# checkpoints are compared by their loaded content instead).
TIMING_FILES = {"summary.json", "metrics.jsonl", "report.md", "checkpoints.json", "timings.json"}
TIMING_KEYS = {"timings", "invocations", "train_seconds", "samples_per_second", "command",
               "content_sha256"}
CHECKPOINT_HASHES = ("best.pt", "last.pt")


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


def kill_and_record(out: Path, when: str, target: str) -> dict:
    outcome = run_killed(out, when, target)
    return {"when": when, "file": target, "outcome": outcome,
            "temporaries_left": _temporaries(out)}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if k not in TIMING_KEYS and k not in CHECKPOINT_HASHES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _content(value):
    """A checkpoint's content, comparable with ``==`` (tensors as dtype, shape and bytes)."""
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), tuple(value.shape), value.contiguous().numpy().tobytes())
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_content(v) for v in value]
    return value


def snapshot(out: Path) -> dict[str, object]:
    """Every file of a finished run: JSON content without timings, checkpoints' content,
    other files' sha256."""
    from gmn.files import sha256

    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.name in TIMING_FILES or "tensorboard" in path.parts:
            continue
        if path.suffix == ".json":
            files[name] = _strip(json.loads(path.read_text()))
        elif path.suffix == ".pt":
            files[name] = _content(torch.load(path, weights_only=True))
        else:
            files[name] = sha256(path)
    return files


# (file under --out, how it is damaged): every kind of cached file, each detected by name
# on the next run, which computes that stage again.
CORRUPTIONS = [
    ("inrs/shard-00000.safetensors", "flip"),
    ("runs/gmn/seed0/best.pt", "flip"),
    ("runs/mlp/seed1/last.pt", "flip"),
    ("runs/cnn/seed0/outputs.safetensors", "flip"),
    ("runs/gmn/seed1/result.json", "edit"),
    ("runs/mlp/seed0/result.json", "truncate"),
    ("cka.json", "edit"),
]


def corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":  # one byte in the middle: the file still parses
        data[len(data) // 2] ^= 0xFF
    elif how == "truncate":
        data = data[: len(data) // 2]
    else:  # valid JSON with one number changed
        text = data.decode()
        at = next(i for i, c in enumerate(text) if c.isdigit() and text[i - 1] in " [-")
        data = bytearray((text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:]).encode())
    path.write_bytes(bytes(data))


def run_corrupted(out: Path) -> tuple[list[dict], dict]:
    """Damage every kind of cached file of a finished run in ``out``, run again; which
    damaged files the warnings named, and the new results."""
    import warnings

    for name, how in CORRUPTIONS:
        corrupt(out / name, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = _run([*TINY, "--out", str(out)])
    messages = [str(w.message) for w in caught]
    found = [
        {"file": name, "damage": how,
         "named_by": next((m for m in messages if str(out / name) in m), None)}
        for name, how in CORRUPTIONS
    ]
    return found, results


def main(folder: str) -> dict:
    torch.set_num_threads(1)
    root = Path(folder)
    killed = root / "run"  # both runs write here (paths are inside checkpoints and records)
    reference = _run([*TINY, "--out", str(killed)])
    killed.rename(root / "reference")
    outcomes = [kill_and_record(killed, when, target) for when, target in KILL_POINTS]
    resumed = _run([*TINY, "--out", str(killed)])
    want, got = snapshot(root / "reference"), snapshot(killed)
    report = {
        "kills": outcomes,
        "temporaries_after": _temporaries(killed),
        "files_compared": len(want),
        "files_differing": _differing(want, got),
        "numbers_equal": _strip(reference) == _strip(resumed),
    }
    killed.rename(root / "resumed")
    shutil.copytree(root / "reference", killed)
    found, repaired = run_corrupted(killed)
    report["corruptions"] = found
    report["after_corruption_files_differing"] = _differing(want, snapshot(killed))
    report["after_corruption_numbers_equal"] = _strip(reference) == _strip(repaired)
    return report


def _temporaries(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*") if p.is_file())


def _differing(want: dict, got: dict) -> list[str]:
    return sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
