"""The benchmark on a public INR zoo read from disk (a tiny DWSNets MNIST-INR layout)."""

import json

import pytest
import torch

from benchmarks.inr_classification.cli import main
from gmn.models.siren import Siren


def make_tiny_dwsnets_zoo(root, per_split=(16, 6, 6), first_seed=0):
    """SIRENs whose output offset encodes the label (0 or 1), in the DWSNets folder layout
    (initialised from seeds ``first_seed``, ``first_seed + 1``, …), listed as neural-graphs'
    split script lists them (relative paths, labels as strings)."""
    splits, index = {}, 0
    for split, count in zip(("train", "val", "test"), per_split):
        paths, labels = [], []
        for i in range(count):
            label = i % 2
            torch.manual_seed(first_seed + index)
            siren = Siren()
            with torch.no_grad():
                siren.seq[-1].bias.fill_(2.0 * label - 1.0)
            mode = "testing" if split == "test" else "training"
            relative = f"mnist_png_{mode}_{label}_{index}/checkpoints/model_final.pth"
            (root / relative).parent.mkdir(parents=True)
            torch.save(siren.state_dict(), root / relative)
            paths.append(relative)
            labels.append(str(label))
            index += 1
        splits[split] = {"path": paths, "label": labels}
    (root / "mnist_splits.json").write_text(json.dumps(splits))


OPTIONS = [
    "--epochs", "2", "--seeds", "2",
    "--families", "gmn,mlp,cnn", "--batch-size", "8", "--cka-permutations", "10",
    "--gmn-config", '{"hidden_dim": 16, "num_layers": 1, "batch_size": 8}',
    "--no-progress", "--threads", "1",
]  # fmt: skip


def test_zoo_run_uses_the_zoo_split_and_writes_a_report(tmp_path):
    zoo = tmp_path / "zoo"
    make_tiny_dwsnets_zoo(zoo)
    out = tmp_path / "out"
    results = main(["--zoo", "dwsnets-mnist", str(zoo), *OPTIONS, "--out", str(out)])
    stored = json.loads((out / "results.json").read_text())
    assert stored["accuracy"] == results["accuracy"]
    assert set(stored["accuracy"]) == {"gmn", "mlp", "cnn"}
    data = stored["data"]
    assert data["name"] == "dwsnets-mnist" and data["num_classes"] == 2
    assert (data["n_train"], data["n_val"], data["n_test"]) == (16, 6, 6)  # the zoo's own split
    for family in ("gmn", "mlp", "cnn"):
        assert stored["accuracy"][family]["n"] == 2
    assert (out / "report.md").read_text().startswith("# INR classification benchmark")

    # another zoo folder with the same counts and split but other weights is not the same input
    other = tmp_path / "other-zoo"
    make_tiny_dwsnets_zoo(other, first_seed=100)
    with pytest.raises(ValueError, match=r"other settings \(data\.content_sha256: "):
        main(["--zoo", "dwsnets-mnist", str(other), *OPTIONS, "--out", str(out)])
