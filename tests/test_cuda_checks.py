"""tests.cuda_checks runs on the CPU (CPU against itself): every check passes, the JSON
holds one entry per check, and a crashing check is a FAIL that sets the exit status."""

from __future__ import annotations

import json

from tests import cuda_checks


def test_every_check_passes_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "checks.json"
    assert cuda_checks.main(["--device", "cpu", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["checks"]
    assert [r["name"] for r in results] == [name for name, _ in cuda_checks.CHECKS]
    assert all(r["passed"] and r["items"] for r in results), [
        r["name"] for r in results if not r["passed"]]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PASS ")]
    assert len(lines) == len(cuda_checks.CHECKS)


def test_a_crashing_check_fails_and_the_others_still_run(tmp_path):
    def crash(device):
        raise RuntimeError("boom on " + str(device))

    def passing(device):
        report = cuda_checks.Report()
        report.true("fine", True)
        return report

    out = tmp_path / "checks.json"
    checks = [("crash", crash), ("passing", passing)]
    assert cuda_checks.main(["--device", "cpu", "--out", str(out)], checks=checks) == 1
    results = {r["name"]: r for r in json.loads(out.read_text())["checks"]}
    assert not results["crash"]["passed"]
    assert results["crash"]["error"] == "RuntimeError: boom on cpu"
    assert results["passing"]["passed"]
