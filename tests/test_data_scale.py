"""benchmarks/data_scale.py: K views taken from one fit of the largest K are the INRs a K-view
fit makes; every family trains on K views per training image, tested on view 0."""

from __future__ import annotations

import json

import torch

from benchmarks.data_scale import main
from gmn.data.fit import FitRecipe, fit_inrs
from gmn.data.images import load_digits
from gmn.models.siren import SirenLayout


def test_the_first_views_of_a_larger_fit_are_the_smaller_fit():
    """The same initialisations exactly; fitted in a batch of another size, the same INRs up
    to float rounding (the batched reductions group their sums differently)."""
    images = load_digits().subset(range(5))
    for steps, tolerance in ((0, 0.0), (5, 1e-6)):
        recipe = FitRecipe(layout=SirenLayout(hidden=(4, 4)), steps=steps, init="independent")
        one, three = (fit_inrs(images, recipe=recipe, views=v, seed=2, progress=False)
                      for v in (1, 3))
        for key, value in one.params.items():
            first = three.params[key].view(5, 3, *value.shape[1:])[:, 0]
            torch.testing.assert_close(first, value, rtol=0, atol=tolerance)
        assert not torch.equal(three.params["seq.0.weight"][0], three.params["seq.0.weight"][1])


def test_a_tiny_curve_writes_its_table(tmp_path):
    cells = main(["--views", "1,2", "--limit", "60", "--seeds", "2", "--epochs", "2",
                  "--scale-families", "weight_mlp,gmn_probe", "--probe-points", "4",
                  "--gmn-config", '{"hidden_dim": 8}', "--min-epochs", "1",
                  "--out", str(tmp_path), "--no-progress"])
    assert [(c["views"], c["family"], c["train_inrs"], c["epochs"]) for c in cells] == [
        (1, "weight_mlp", 42, 2), (1, "gmn_probe", 42, 2),
        (2, "weight_mlp", 84, 1), (2, "gmn_probe", 84, 1)]
    assert all(len(c["test_accuracy"]) == 2 for c in cells)
    table = (tmp_path / "scale.md").read_text()
    assert "| 2 | 84 | `gmn_probe` | 1 |" in table and "independent initialisation" in table
    assert json.loads((tmp_path / "scale.json").read_text())["cells"][0]["family"] == "weight_mlp"
    assert (tmp_path / "scale.png").stat().st_size > 0
    again = main(["--views", "1,2", "--limit", "60", "--seeds", "2", "--epochs", "2",
                  "--scale-families", "weight_mlp,gmn_probe", "--probe-points", "4",
                  "--gmn-config", '{"hidden_dim": 8}', "--min-epochs", "1",
                  "--out", str(tmp_path), "--no-progress"])
    assert [c["test_accuracy"] for c in again] == [c["test_accuracy"] for c in cells]
