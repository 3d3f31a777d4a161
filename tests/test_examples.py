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
    # 1.000 measured on its 55 test INRs (docstring); chance is 0.5
    assert accuracy >= 0.9, out


def test_compare_representations_writes_a_heatmap(tmp_path):
    png = tmp_path / "cka.png"
    out = _run("compare_representations.py", "--out", str(png))
    assert "debiased linear CKA" in out and png.stat().st_size > 10_000
    values = [
        float(v) for v in re.findall(r"\s(-?\d\.\d{3})", out.split("columns: CNN layers)")[1])
    ]
    assert values and all(-0.2 < v <= 1.0 for v in values)


def test_convert_resnet_prints_the_graph_the_architecture_implies():
    out = _run("convert_resnet.py")
    # ResNet(width 16, 10 classes) on 3 channels: a 3x3 stem conv with bias, two residual
    # blocks of two bias-free 3x3 conv+BN, a linear head; counted from the architecture
    width, kernel, classes, inputs, convs = 16, 9, 10, 3, 4
    nodes = {"input": inputs, "linear": classes, "conv": width, "conv+batchnorm": convs * width}
    edges = {"linear": width * classes,
             "conv": inputs * width * kernel + convs * width * width * kernel,
             "residual": 2 * width}  # one identity edge per channel and block
    n, e = sum(nodes.values()), sum(edges.values())
    assert f"{n} nodes, {e} edges, edge features [{e}, 3]" in out
    for kind, count in nodes.items():
        assert re.search(rf"node type {re.escape(kind)}\s+{count}\n", out), kind
    for kind, count in edges.items():
        assert re.search(rf"edge type {kind}\s+{count}\n", out), kind
    assert len(re.findall(r"(node|edge) type ", out)) == len(nodes) + len(edges)
    assert "inverse is exact: True" in out
    assert f"batch: 8 graphs, x [{8 * n}, 5], edge_attr [{8 * e}, 3]" in out
    change = float(re.search(r"max output change: (\S+)", out)[1])
    assert change < 1e-5  # float32 sums in another order; a wrong permutation moves it by ~1
