"""The benchmark's console: each run named as it starts and summed up in one line, a resumed
run says where it resumes, and Ctrl-C ends with how to resume (exit status 130), after which
the same command finishes with the numbers of an uninterrupted run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_injection import TINY  # 48 digits, gmn/mlp/cnn × 2 seeds, 2 epochs

# Runs the benchmark's __main__ and presses Ctrl-C (SIGINT to itself) right after the first
# epoch's checkpoint of gmn seed 0 is in place, in the middle of that run's training. Python's
# own SIGINT handler is installed first, as in a terminal: a process started in the
# background by a shell (``cmd &``) inherits SIGINT ignored, and Ctrl-C never reaches it.
INTERRUPT_AFTER_FIRST_CHECKPOINT = """
import os, runpy, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
target = Path(sys.argv[1]).resolve()
real = os.replace
def replace(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if Path(dst).resolve() == target:
        os.replace = real
        os.kill(os.getpid(), signal.SIGINT)
os.replace = replace
sys.argv = ["benchmarks.inr_classification", *sys.argv[2:]]
runpy.run_module("benchmarks.inr_classification", run_name="__main__")
"""


def run(args: list[str], *prefix: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *prefix, *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=Path(__file__).parent.parent)


def numbers(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {k: results[k] for k in ("accuracy", "overlap", "ensembles", "findings", "cka")}


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_the_resumed_run_has_the_same_numbers(tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    whole = run([*TINY, "--out", str(reference)], "-m", "benchmarks.inr_classification")
    assert whole.returncode == 0, whole.stderr[-2000:]
    lines = whole.stdout.splitlines()
    for number, (family, seed) in enumerate(
            [(f, s) for f in ("gmn", "mlp", "cnn") for s in (0, 1)], 1):
        assert f"[{number}/6] {family} seed {seed}" in lines
        done = next(x for x in lines if x.startswith(f"[{number}/6] {family} seed {seed}: "))
        assert "test " in done and "best val " in done and "/2, trained in " in done
    assert "training summary" not in whole.stdout  # one line per run, not the JSON summary

    checkpoint = interrupted / "runs" / "gmn" / "seed0" / "last.pt"
    stopped = run([str(checkpoint), *TINY, "--out", str(interrupted)],
                  "-c", INTERRUPT_AFTER_FIRST_CHECKPOINT)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert stopped.stderr.strip().endswith("interrupted; run the same command to resume")
    assert "Traceback" not in stopped.stderr
    assert not (interrupted / "results.json").exists()

    resumed = run([*TINY, "--out", str(interrupted)], "-m", "benchmarks.inr_classification")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from epoch 1/2 (step" in resumed.stdout
    assert numbers(interrupted) == numbers(reference)
    timings = json.loads((interrupted / "results.json").read_text())["invocations"]
    assert [t["status"] for t in timings] == ["interrupted", "running"]  # this one: running
    report = (interrupted / "report.md").read_text()
    assert "summed over 2 invocations" in report and "1 interrupted" in report
