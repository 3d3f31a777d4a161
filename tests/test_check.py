"""gmn.check (the user's device check) runs on the CPU (CPU against itself): every check
passes, the JSON holds one entry per check, a crashing check is a FAIL that sets the exit
status, and without CUDA it says so instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import cuda_checks as benchmark_checks
from gmn import check


def test_every_check_passes_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "checks.json"
    checks = benchmark_checks.BENCHMARK_CHECKS  # the library's and the benchmark's
    assert check.main(["--device", "cpu", "--out", str(out)], checks=checks) == 0
    results = json.loads(out.read_text())["checks"]
    assert [r["name"] for r in results] == [name for name, _ in checks]
    assert all(r["passed"] and r["items"] for r in results), [
        r["name"] for r in results if not r["passed"]]
    printed = capsys.readouterr().out.splitlines()
    assert len([line for line in printed if line.startswith("PASS ")]) == len(checks)
    assert f"{len(checks)}/{len(checks)} checks passed on cpu" in printed[-2]
    assert printed[-1] == "works: " + ", ".join(name for name, _ in checks)


def test_a_crashing_check_fails_and_the_others_still_run(tmp_path, capsys):
    def crash(device):
        raise RuntimeError("boom on " + str(device))

    def passing(device):
        report = check.Report()
        report.true("fine", True)
        return report

    out = tmp_path / "checks.json"
    checks = [("crash", crash), ("passing", passing)]
    assert check.main(["--device", "cpu", "--out", str(out)], checks=checks) == 1
    results = {r["name"]: r for r in json.loads(out.read_text())["checks"]}
    assert not results["crash"]["passed"]
    assert results["crash"]["error"] == "RuntimeError: boom on cpu"
    assert results["passing"]["passed"]
    printed = capsys.readouterr().out
    assert "works: passing\n" in printed and "does not work: crash" in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
def test_without_cuda_it_says_so_and_checks_the_cpu(capsys):
    def passing(device):
        report = check.Report()
        report.true(f"ran on {device}", True)
        return report

    assert check.main([], checks=[("passing", passing)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CUDA is not available: ")
    assert "checking the CPU against itself (--device cpu)" in printed
    assert "device=cpu" in printed and "ran on cpu=True" in printed
    assert check.main(["--device", "cuda"], checks=[("passing", passing)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_it_runs_as_a_module_of_the_package():
    done = subprocess.run([sys.executable, "-m", "gmn.check", "--help"], capture_output=True,
                          text=True, check=True)
    assert "usage: python -m gmn.check" in done.stdout and "--device" in done.stdout
