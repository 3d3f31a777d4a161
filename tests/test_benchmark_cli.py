"""The benchmark's command line: defaults, parsing, and errors that name the bad option."""

import json
import subprocess
import sys

import pytest

from benchmarks.inr_classification.cli import parse_config
from benchmarks.inr_classification.config import DEFAULT_FAMILIES, FAMILIES


def test_defaults_are_the_quick_offline_run():
    config = parse_config([])
    assert config.dataset == "digits" and config.zoo is None and config.root is None
    assert config.seeds == 3 and config.families == DEFAULT_FAMILIES
    assert "gmn_noaug" in FAMILIES and "gmn_noaug" not in DEFAULT_FAMILIES  # selectable
    assert config.inr_hidden == (16, 16) and config.out == "results/inr-digits"
    assert config.inr_init == "shared" and config.threads is None
    assert config.seed_list == [0, 1, 2]
    assert (config.epochs, config.family_epochs) == (None, {})  # each family's default


def test_options_are_parsed(tmp_path):
    gmn_file = tmp_path / "gmn.json"
    gmn_file.write_text(json.dumps({"hidden_dim": 32, "lr": 0.01}))
    config = parse_config([
        "--dataset", "mnist", "--root", "/data", "--views", "2", "--seeds", "4", "--seed", "5",
        "--families", "gmn,mlp,cnn", "--inr-hidden", "8,8", "--split", "0.8,0.1,0.1",
        "--gmn-config", str(gmn_file), "--no-resume", "--device", "cuda:1",
        "--classes", "3,1", "--threads", "1", "--inr-init", "independent",
    ])  # fmt: skip
    assert config.classes == (1, 3) and config.threads == 1 and config.inr_init == "independent"
    assert config.inr_hidden == (8, 8) and config.split == (0.8, 0.1, 0.1)
    assert config.gmn_config == {"hidden_dim": 32, "lr": 0.01}
    assert config.seed_list == [5, 6, 7, 8] and not config.resume
    assert (config.epochs, config.family_epochs) == (None, {})
    both = parse_config(["--epochs", "16,gmn=60, cnn=3"])
    assert (both.epochs, both.family_epochs) == (16, {"gmn": 60, "cnn": 3})
    assert parse_config(["--epochs", "7"]).epochs == 7
    assert config.out == "results/inr-mnist" and config.device == "cuda:1"
    zoo = parse_config(["--zoo", "dwsnets-mnist", "/zoo"])
    assert (zoo.zoo, zoo.zoo_dir, zoo.out) == ("dwsnets-mnist", "/zoo", "results/inr-dwsnets-mnist")
    assert zoo.key() == parse_config(["--zoo", "dwsnets-mnist", "/elsewhere"]).key()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "1"], "--seeds must be >= 2"),
        (["--families", "gmn,mlp"], "must include"),
        (["--families", "gmn,mlp,cnn,resnet"], "unknown families"),
        (["--split", "0.5,0.5,0.5"], "--split must be"),
        (["--zoo", "other", "/x"], "--zoo must be one of"),
        (["--gmn-config", "[1, 2]"], "must be a JSON object"),
        (["--gmn-config", "{nope"], "not valid JSON"),
        (["--classes", "4"], "at least two classes"),
        (["--zoo", "nfn", "/x", "--limit", "5"], "a --zoo is used whole"),
        (["--cka-permutation-samples", "3"], "--cka-permutation-samples must be >= 4"),
        (["--cka-permutations", "-1"], "--cka-permutations must be >= 0"),
        (["--limit", "-5"], "--limit must be >= 1 (a number of images), got -5"),
        (["--limit", "0"], "--limit must be >= 1 (a number of images), got 0"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--epochs", "3,4"], "two epochs for every family in '3,4'"),
        (["--epochs", "resnet=3"], "--epochs resnet=…: unknown family"),
        (["--epochs", "gmn=x"], "'gmn=x' is not N or FAMILY=N"),
        (["--epochs", "gmn=0"], "--epochs gmn=0: epochs must be an integer >= 1"),
    ],
)
def test_bad_options_name_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_config(argv)
    assert message in capsys.readouterr().err


def test_help_explains_every_option():
    text = subprocess.run(
        [sys.executable, "-m", "benchmarks.inr_classification", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in (
        "--dataset",
        "--root",
        "--zoo",
        "--views",
        "--seeds",
        "--epochs",
        "--families",
        "--out",
        "--device",
        "--resume",
        "--gmn-config",
        "--cka-permutation-samples",
    ):
        assert option in text
