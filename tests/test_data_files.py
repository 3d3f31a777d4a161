"""gmn.files: atomic writes (mode, leftovers), self-hashing JSON, named errors."""

import json
import os
import stat
from pathlib import Path

import pytest

from gmn.files import (
    CorruptFileError,
    IntegrityError,
    atomic_write,
    read_json,
    remove_stale_temporaries,
    verify_sha256,
    write_figure,
    write_json,
)


def test_atomic_write_creates_0644_and_leaves_no_temporary(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = write_json({"a": 1}, tmp_path / "r.json")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, fail)
    assert read_json(path) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_leftover_temporaries_are_removed(tmp_path):
    for name in (".summary.json.123.tmp", ".tmpab12cd", ".r.json.9.tmp"):
        (tmp_path / name).write_text("x")
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".hidden").write_text("not ours")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".r.json.9.tmp", ".summary.json.123.tmp",
                                                 ".tmpab12cd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.json"]


def test_json_round_trip_and_damage_named(tmp_path):
    path = write_json({"key": {"epochs": 3}, "x": [1.5, 2]}, tmp_path / "cka.json")
    assert read_json(path) == {"key": {"epochs": 3}, "x": [1.5, 2]}
    text = path.read_text()
    path.write_text(text[:-20])
    with pytest.raises(CorruptFileError, match="cka.json is not valid JSON"):
        read_json(path)
    edited = json.loads(text)
    edited["x"][0] = 1.25  # still valid JSON: only the recorded hash shows the change
    path.write_text(json.dumps(edited))
    with pytest.raises(IntegrityError, match="cka.json: its content does not match"):
        read_json(path)


def test_verify_sha256_names_the_file(tmp_path):
    path = tmp_path / "outputs.safetensors"
    path.write_bytes(b"abc")
    verify_sha256(path, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    with pytest.raises(IntegrityError, match="outputs.safetensors: sha256"):
        verify_sha256(path, "0" * 64, "result.json")


def test_a_figure_killed_mid_save_leaves_the_old_file_never_a_torn_one(tmp_path, monkeypatch):
    """The benchmark's figures go through gmn.files.write_figure: whole or not at all."""
    from matplotlib.figure import Figure

    from benchmarks.inr_classification.plots import plot_cka_figures

    pair = {"debiased": [[1.0, 0.2], [0.3, 0.9]], "rows": ["a", "b"], "cols": ["a", "b"],
            "a": "gmn seed 0", "b": "gmn seed 1"}
    cka = {"within": {"gmn": {"pairs": [pair]}}, "between": {}}
    path = tmp_path / plot_cka_figures(cka, tmp_path)["cka_gmn"]
    whole = path.read_bytes()
    assert whole.startswith(b"\x89PNG")

    def killed_mid_write(self, target, *args, **kwargs):
        Path(target).write_bytes(b"")  # what a kill during savefig leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        plot_cka_figures({"within": {"gmn": {"pairs": [dict(pair, debiased=[[1, 0], [0, 1]])]}},
                          "between": {}}, tmp_path)
    assert path.read_bytes() == whole and [p.name for p in tmp_path.iterdir()] == [path.name]
    monkeypatch.undo()
    figure = Figure()
    figure.add_subplot().plot([0, 1])
    write_figure(figure, tmp_path / "new.pdf")  # the format follows the suffix
    assert (tmp_path / "new.pdf").read_bytes().startswith(b"%PDF")


def test_a_file_holding_the_wrong_kind_of_value_is_refused_naming_it(tmp_path):
    """``require_type``: the JSON, checkpoint and CIFAR readers name the file, what it holds
    and what they expected."""
    import pickle

    import torch

    from gmn.data.cifar import read_batch
    from gmn.data.inr_zoos import load_weights
    from gmn.files import CorruptFileError, read_json

    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match=r"list\.json holds a list, expected a JSON object"):
        read_json(listed)
    saved = tmp_path / "net.pth"
    torch.save([torch.zeros(2)], saved)
    with pytest.raises(ValueError, match=r"net\.pth holds a list, expected a state_dict"):
        load_weights(saved)
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"data_batch_1 holds a list, expected a CIFAR-10 batch"):
        read_batch(batch)
