"""End to end: a tiny zoo, every predictor, both splits; the predictions rank the CNNs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from benchmarks.generalization.cli import kendall_significance, main
from benchmarks.generalization.methods import METHODS
from benchmarks.generalization.report import run_notes

# easy: 60 models of the reference architecture, 20 of another (held out in the mixed split),
# accuracies spread by 2 to 5 epochs of training
TINY = ["--models", "80", "--architectures", "2", "--reference-share", "0.75", "--group-size",
        "40", "--train-images", "300", "--max-epochs", "5", "--seeds", "0", "--epochs", "8",
        "--hidden", "32", "--layers", "2", "--workers", "1", "--no-progress"]


def test_tiny_run_ranks_cnns_and_reuses_its_zoo(tmp_path, monkeypatch, capsys):
    from sklearn.exceptions import ConvergenceWarning

    flat_mlp = METHODS["flat_mlp"]

    def unconverged(*args):  # as MLPRegressor warns when it stops at max_iter
        warnings.warn("Stochastic Optimizer: Maximum iterations (500) reached and the "
                      "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=2)
        return flat_mlp(*args)

    monkeypatch.setitem(METHODS, "flat_mlp", unconverged)
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        summary = main(["--out", str(tmp_path)] + TINY)
    assert not [w for w in leaked if issubclass(w.category, ConvergenceWarning)]
    printed = capsys.readouterr().out
    assert "\\u00b1" not in printed and "training summary" not in printed
    tau = summary["homogeneous"]["gmn"]["kendall_tau"]["mean"]
    assert f"homogeneous/gmn: kendall_tau {tau:.3f} ± " in printed
    assert "note: flat_mlp warned: ConvergenceWarning: Stochastic Optimizer" in printed
    report = (tmp_path / "report.md").read_text()
    assert "- homogeneous seed 0 flat_mlp: flat_mlp warned: ConvergenceWarning" in report
    results = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "report.md").exists() and (tmp_path / "scatter.png").exists()
    methods = {(r["split"], r["method"]) for r in results["runs"]}
    assert methods == {("homogeneous", "gmn"), ("homogeneous", "statistics_gbt"),
                       ("homogeneous", "flat_mlp"), ("mixed", "gmn"),
                       ("mixed", "statistics_gbt")}
    for run in results["runs"]:  # test models only, and none of them seen in training
        assert len(run["true"]) == len(run["predicted"]) == run["sizes"]["test"]
    assert results["runs"][-1]["held_out"], "the mixed split holds out an architecture"
    for split in ("homogeneous", "mixed"):
        assert summary[split]["gmn"]["kendall_tau"]["mean"] > 0, split
    zoo = next(tmp_path.glob("zoo-*"))
    shards = {p: p.stat().st_mtime_ns for p in zoo.glob("shard-*")}
    main(["--out", str(tmp_path), "--methods", "statistics_gbt"] + TINY)
    assert {p: p.stat().st_mtime_ns for p in zoo.glob("shard-*")} == shards
    with pytest.raises(TypeError, match="unknown GMN option.*'bogus'"):  # --gmn-config reaches it
        main(["--out", str(tmp_path), "--methods", "gmn", "--splits", "mixed",
              "--gmn-config", '{"bogus": 1}'] + TINY)


def test_a_zoo_with_its_own_split_is_scored_on_it(tmp_path):
    from benchmarks.generalization.splits import homogeneous_split, mixed_split
    from gmn.zoo.readers import read_cnn_wild_park
    from tests.test_zoo_readers import park_like, write_park

    _, configs, split = write_park(tmp_path)
    zoo = read_cnn_wild_park(tmp_path, tmp_path / "zoo", like=park_like(configs, split),
                             progress=False)
    mixed = mixed_split(zoo, seed=5)["split"]
    assert {k: v.tolist() for k, v in mixed.items()} == {"train": [0, 1, 2], "val": [3],
                                                          "test": [4]}
    homogeneous = homogeneous_split(zoo, seed=5)["split"]  # the most common architecture only
    shared = [i for i, model in enumerate(split["train"]["_models"]) if model in (0, 2)]
    assert homogeneous["train"].tolist() == shared and homogeneous["test"].tolist() == []


def test_a_folder_of_checkpoints_is_imported_and_scored(tmp_path, capsys):
    import torch

    from gmn.zoo.store import ModelZoo
    from tests.test_zoo_checkpoint_import import SkipCNN, write_folder

    torch.manual_seed(0)
    write_folder(tmp_path / "mine", [SkipCNN() for _ in range(20)],
                 [round(0.05 * i, 2) for i in range(20)])
    argv = ["--import-checkpoints", str(tmp_path / "mine" / "checkpoints"),
            str(tmp_path / "mine" / "accuracy.csv"),
            "--like", "tests.test_zoo_checkpoint_import:SkipCNN", "--out", str(tmp_path / "out"),
            "--methods", "statistics_gbt", "--splits", "homogeneous", "--seeds", "0",
            "--no-progress"]
    main(argv)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (run,) = results["runs"]
    assert sum(run["sizes"].values()) == 20 and run["method"] == "statistics_gbt"
    zoo = ModelZoo(tmp_path / "out" / "zoo")
    assert zoo.manifest["source"]["reader"] == "checkpoint-folder"
    assert zoo.targets().tolist() == [round(0.05 * i, 2) for i in range(20)]
    main(argv)  # a second import replaces the first whole
    assert not (tmp_path / "out" / "zoo.importing").exists()
    assert ModelZoo(tmp_path / "out" / "zoo").manifest == zoo.manifest
    with pytest.raises(SystemExit):
        main(["--like", "tests.test_zoo_checkpoint_import:SkipCNN", "--out", str(tmp_path / "x")])
    assert "--like and --target-column go with --import-checkpoints" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--like 'tests.nowhere:Net': cannot import it"):
        main([*argv[:3], "--like", "tests.nowhere:Net", *argv[5:]])



def test_tau_on_a_handful_of_test_models_is_flagged_as_indistinguishable_from_chance():
    from scipy.stats import kendalltau

    true = np.array([0.5, 0.6, 0.7])
    backwards = kendall_significance(true, true[::-1])
    assert backwards == {"n": 3, "p_value": pytest.approx(kendalltau(true, true[::-1]).pvalue),
                         "smallest_p": pytest.approx(1 / 3)}  # 2/3!: τ = -1 is p = 0.33
    run = {"metrics": {"kendall_tau": -1.0}, "kendall": backwards, "method": "gmn"}
    assert run_notes(run) == ["τ = -1.000 on only n = 3 test models cannot be told from chance: "
                              "even a perfect ranking has p = 2/3! = 0.33 > 0.05 (two-sided)"]
    ten = np.linspace(0.1, 0.9, 10)
    large = kendall_significance(ten, ten)
    assert large["smallest_p"] == pytest.approx(2 / 3628800) and large["p_value"] < 1e-5
    assert run_notes({"metrics": {"kendall_tau": 1.0}, "kendall": large, "method": "gmn"}) == []


def test_ctrl_c_says_what_is_kept_and_exits_130(monkeypatch, capsys):
    import benchmarks.generalization.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--out", "unused"])
    assert stopped.value.code == 130
    assert "interrupted; run the same command to resume" in capsys.readouterr().err
