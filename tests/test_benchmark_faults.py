"""Fault injection: SIGKILLs at every stage boundary and inside every stage, every kind of
cached file damaged, representative double faults (a damaged file whose record is lost),
changed settings against finished and interrupted runs, and bad ``--out`` folders (two runs
at once, read-only, full, a name too long); each time the benchmark must end with the numbers
and files of an uninterrupted run or in a refusal naming the cause. ``--quick`` cases of
``tests/fault_injection.py`` (which runs them all without it)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.inr_classification.config import BenchmarkConfig
from benchmarks.inr_classification.similarity import cka_study
from tests.benchmark_models import LAYERS, trained
from tests.fault_injection import CORRUPTIONS, KILL_POINTS


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    done = subprocess.run([sys.executable, "-m", "tests.fault_injection", str(folder), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_kill_is_survived_with_identical_numbers_and_files(report):
    assert [k["outcome"] for k in report["kills"]] == ["killed"] * len(KILL_POINTS)
    for kill in report["kills"]:  # a kill mid-write leaves its temporary; the next run clears it
        assert bool(kill["temporaries_left"]) == (kill["when"] == "before"), kill
    assert report["temporaries_after"] == []
    assert report["files_compared"] > 30
    assert report["files_differing"] == []
    assert report["numbers_equal"]


@pytest.mark.slow
def test_every_damaged_file_is_named_and_its_stage_recomputed(report):
    assert len(report["corruptions"]) == len(CORRUPTIONS)
    for found in report["corruptions"]:
        assert found["named_by"] is not None, found
    assert report["after_corruption_files_differing"] == []
    assert report["after_corruption_numbers_equal"]


@pytest.mark.slow
def test_no_fault_is_used_silently_and_every_refusal_names_its_cause(report):
    kinds = {row["kind"] for row in report["cases"]}
    assert kinds == {"kill (SIGKILL), then resume", "single corruption", "double corruption",
                     "changed setting, finished run", "changed setting, interrupted run",
                     "bad input"}
    for row in report["cases"]:
        assert not row["used_silently"], row
        assert row["outcome"].endswith("reference numbers") or row["outcome"].startswith(
            "refused, naming"), row
    assert report["used_silently"] == 0


def test_an_unusable_out_ends_in_one_line_naming_it_not_a_traceback(tmp_path):
    out = tmp_path / ("x" * 263)
    done = subprocess.run([sys.executable, "-m", "benchmarks.inr_classification", "--out",
                           str(out), "--no-progress"], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "cannot create the folder" in done.stderr and "has 263 characters" in done.stderr


def test_cka_pairs_layers_by_name_whatever_order_they_come_in():
    config = dataclasses.replace(BenchmarkConfig(), cka_permutations=0, progress=False)
    in_order = trained(0, 40)
    other_order = trained(0, 40, layers=list(reversed(LAYERS)))
    second = trained(1, 40)
    with torch.no_grad():  # the heads of both seeds agree closely, the other layers do not
        second.model[4].weight.copy_(in_order.model[4].weight + 0.01)
    fresh = cka_study({"gmn": [in_order, second]}, config)["within"]["gmn"]
    mixed = cka_study({"gmn": [other_order, second]}, config)["within"]["gmn"]
    assert mixed["pairs"][0]["rows"] == list(reversed(LAYERS))
    assert mixed["headline_debiased"]["values"] == pytest.approx(
        fresh["headline_debiased"]["values"], abs=1e-12)
    pair = fresh["pairs"][0]
    same = [pair["debiased"][i][pair["cols"].index(n)] for i, n in enumerate(pair["rows"])]
    assert fresh["headline_debiased"]["values"][0] == pytest.approx(sum(same) / 3, abs=1e-12)
