"""Every example runs to the end as a user would run it (a subprocess) and says what it did."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=EXAMPLES.parent,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # test runs share the cores
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_custom_metanetwork_trains_and_reports(tmp_path):
    out = _run("custom_metanetwork.py", "--out", str(tmp_path / "run"))
    accuracy = float(re.search(r"test accuracy of the custom metanetwork: ([\d.]+)", out)[1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and (tmp_path / "run" / "best.pt").exists()
    assert summary["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-3)


def test_compare_representations_writes_a_heatmap(tmp_path):
    png = tmp_path / "cka.png"
    out = _run("compare_representations.py", "--out", str(png))
    assert "debiased linear CKA" in out and png.stat().st_size > 10_000
    values = [
        float(v) for v in re.findall(r"\s(-?\d\.\d{3})", out.split("columns: CNN layers)")[1])
    ]
    assert values and all(-0.2 < v <= 1.0 for v in values)


def test_convert_resnet_runs():
    assert _run("convert_resnet.py").strip()
