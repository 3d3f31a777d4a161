"""A tiny real run of the benchmark (digits 0 vs 1, two seeds): the structure of its outputs,
accuracies above chance, the same numbers from the same seed, and the cache."""

import json

import pytest
import torch

from benchmarks.inr_classification.cli import main

TINY = [
    "--classes", "0,1", "--limit", "80", "--inr-steps", "30", "--epochs", "3,gmn=60",
    "--seeds", "2",
    "--families", "gmn,mlp,cnn,weight_mlp,gmn_probe", "--batch-size", "16",
    "--cka-permutations", "20",
    "--gmn-config", '{"hidden_dim": 16, "num_layers": 2, "batch_size": 16, "lr": 0.005}',
    "--no-progress", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark")
    first = main([*TINY, "--out", str(root / "a")])
    second = main([*TINY, "--out", str(root / "b")])
    return root, first, second


def test_outputs_have_every_part(runs):
    root, results, _ = runs
    out = root / "a"
    stored = json.loads((out / "results.json").read_text())
    assert stored["accuracy"] == results["accuracy"]
    for key in (
        "command",
        "config",
        "versions",
        "seeds",
        "timings",
        "data",
        "runs",
        "accuracy",
        "overlap",
        "ensembles",
        "findings",
        "cka",
        "figures",
    ):
        assert key in stored, key
    assert stored["seeds"] == [0, 1]
    assert stored["families"] == ["gmn", "mlp", "cnn", "weight_mlp", "gmn_probe"]
    assert set(stored["cka"]["within"]) == {"gmn", "mlp", "cnn", "weight_mlp", "gmn_probe"}
    assert {"gmn-mlp", "gmn-cnn", "mlp-cnn", "cnn-weight_mlp"} <= set(stored["cka"]["between"])
    first_pair = stored["cka"]["within"]["gmn"]["pairs"][0]
    n_layers = len(first_pair["rows"])
    assert len(first_pair["debiased"]) == n_layers and len(first_pair["p_values"]) == n_layers
    assert {f["verdict"] for f in stored["findings"]} <= {
        "reproduced",
        "contradicted",
        "inconclusive",
    }
    assert len(stored["findings"]) == 4
    assert len(stored["probe_findings"]) == 4  # the same claims, for gmn_probe
    assert stored["probe_ensembles"]["other"] == "gmn_probe"
    assert {"gmn_probe-mlp", "gmn_probe-cnn"} <= set(stored["overlap"])
    for stage in ("data", "train", "cka", "analysis", "total"):
        assert stored["timings"][stage] >= 0
    for figure in stored["figures"].values():
        assert (out / figure).stat().st_size > 10_000
    n_test = stored["data"]["n_test"]
    for per_seed in stored["overlap"].values():
        for o in per_seed:
            assert o["both_right"] + o["only_a"] + o["only_b"] + o["both_wrong"] == n_test


def test_report_states_every_verdict_and_links_real_figures(runs):
    root, results, _ = runs
    report = (root / "a" / "report.md").read_text()
    for heading in (
        "## Setup",
        "## Test accuracy",
        "## Findings",
        "## CKA",
        "## Prediction overlap",
        "## Ensembles",
    ):
        assert heading in report
    for finding in results["findings"]:
        assert finding["claim"] in report
    assert results["data"]["setting"] == "shared initialisation"
    assert "| test accuracy (%), shared initialisation |" in report
    assert report.count("(INRs of shared initialisation).") == 8, "every finding says its setting"
    assert "accuracy_overlap.png" in report and "cka_gmn.png" in report
    assert "### The same claims for `gmn_probe`" in report
    for name in results["figures"].values():
        assert (root / "a" / name).exists()


def test_accuracies_beat_chance_on_an_easy_split(runs):
    _, results, _ = runs
    for family in ("mlp", "cnn"):
        assert results["accuracy"][family]["mean"] > 0.9, results["accuracy"]
    # metanetworks on the INR parameters (shared initialisation) beat chance (0.5) too; the
    # GMN with function samples reached 100% and 69% (16 test INRs) at this size, 3 epochs.
    assert results["accuracy"]["weight_mlp"]["mean"] > 0.7, results["accuracy"]
    assert results["accuracy"]["gmn_probe"]["mean"] > 0.6, results["accuracy"]
    # The weights-only gmn (60 epochs, gmn=60 above): 87.5% on both seeds (14 of 16 test
    # INRs); 62.5% with 30 epochs and 50% with 20 (measured)
    assert results["accuracy"]["gmn"]["mean"] > 0.75, results["accuracy"]


def test_same_seed_gives_the_same_numbers(runs):
    _, first, second = runs
    for key in ("accuracy", "overlap", "ensembles", "findings", "cka"):
        assert first[key] == second[key], key


def test_second_run_reuses_the_cache_and_refuses_other_settings(runs):
    root, first, _ = runs
    out = root / "a"
    result_file = out / "runs" / "gmn" / "seed0" / "result.json"
    outputs = out / "runs" / "gmn" / "seed0" / "outputs.safetensors"
    stamps = (result_file.stat().st_mtime_ns, outputs.stat().st_mtime_ns)
    again = main([*TINY, "--out", str(out)])
    assert (result_file.stat().st_mtime_ns, outputs.stat().st_mtime_ns) == stamps
    assert again["accuracy"] == first["accuracy"] and again["cka"] == first["cka"]
    # wall times add up over the invocations on one --out; the reusing one was the faster
    assert [i["status"] for i in again["invocations"]] == ["completed", "running"]
    assert again["invocations"][1]["seconds"] < first["invocations"][0]["seconds"]
    assert again["timings"]["train"] > first["timings"]["train"]
    changed = [a if a != "3,gmn=60" else "4,gmn=60" for a in TINY]  # --epochs 3 -> 4
    with pytest.raises(ValueError, match=r"other settings \(epochs: 3 -> 4\)") as refused:
        main([*changed, "--out", str(out)])
    assert len(str(refused.value)) < 300  # the setting that differs, not two whole keys
    with pytest.raises(FileExistsError, match="--no-resume"):
        main([*TINY, "--out", str(out), "--no-resume"])


def test_outputs_are_test_set_rows(runs):
    root, _, _ = runs
    from safetensors.torch import load_file

    outputs = load_file(str(root / "a" / "runs" / "cnn" / "seed1" / "outputs.safetensors"))
    n_test = json.loads((root / "a" / "results.json").read_text())["data"]["n_test"]
    assert outputs["predictions"].shape == (n_test,)
    assert torch.allclose(outputs["probabilities"].sum(1), torch.ones(n_test), atol=1e-5)
    assert set(outputs) == {"probabilities", "predictions"}  # CKA streams, stores no states
