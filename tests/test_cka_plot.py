"""plot_cka: a legible heatmap PNG, and a clear error without matplotlib."""

import sys

import matplotlib.image
import pytest
import torch

from gmn.cka import cka_matrix, plot_cka


def small_matrix():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(50, 4, generator=g, dtype=torch.float64)
    reps_a = {f"gmn.layer{i}": base + i * torch.randn(50, 4, generator=g) for i in range(3)}
    reps_b = {f"mlp.fc{i}": base * (i + 1) + torch.randn(50, 4, generator=g) for i in range(4)}
    return cka_matrix(reps_a, reps_b, debiased=True, permutations=9)


def texts(figure):
    return [t.get_text() for t in figure.axes[0].texts]


def test_png_has_names_title_colour_bar_and_annotations(tmp_path):
    result = small_matrix()
    path = tmp_path / "cka.png"
    with pytest.warns(UserWarning, match="9 permutations cannot give any of 12 cells"):
        figure = plot_cka(result, path, xlabel="MLP layer", ylabel="GMN layer")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    heatmap, colour_bar = figure.axes
    assert [t.get_text() for t in heatmap.get_yticklabels()] == result.row_names
    assert [t.get_text() for t in heatmap.get_xticklabels()] == result.col_names
    assert heatmap.get_title().startswith("debiased linear CKA")
    assert colour_bar.get_ylabel() == "CKA"
    expected = [f"{float(result.values[i, j]):.2f}" for i in range(3) for j in range(4)]
    assert texts(figure) == expected


def related(layers: int):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(60, 3, generator=g, dtype=torch.float64)
    return {f"l{i}": base + 0.1 * torch.randn(60, 3, generator=g, dtype=torch.float64)
            for i in range(layers)}


def test_stars_mark_cells_after_holm_and_too_few_permutations_are_named():
    # 36 cells, 199 permutations: every raw p is 1/200 = 0.005, Holm's adjusted p 36/200
    few = cka_matrix(related(6), related(6), debiased=True, permutations=199)
    assert float(few.p_values.max()) == pytest.approx(1 / 200)
    with pytest.warns(UserWarning, match="199 permutations cannot give any of 36 cells"):
        figure = plot_cka(few)
    assert not any(t.endswith("*") for t in texts(figure))
    assert "no cell can reach p ≤ 0.05 after Holm over 36 cells" in figure.axes[0].get_title()
    with pytest.warns(UserWarning, match="draw at least 719 permutations"):
        adjusted = few.adjusted_p_values()
    assert float(adjusted.min()) == pytest.approx(36 / 200)
    raw = plot_cka(few, correction=None)  # uncorrected stars only when asked, and labelled
    assert all(t.endswith("*") for t in texts(raw))
    assert "not corrected" in raw.axes[0].get_title()
    # 9 cells: Holm's smallest adjusted p is 9/200 = 0.045, so related layers pass it
    enough = cka_matrix(related(3), related(3), debiased=True, permutations=199)
    figure = plot_cka(enough)
    holm = enough.adjusted_p_values()
    assert texts(figure) == [f"{float(enough.values[i, j]):.2f}"
                             + ("*" if holm[i, j] <= 0.05 else "")
                             for i in range(3) for j in range(3)]
    assert all(t.endswith("*") for t in texts(figure))
    assert "after Holm's correction over 9 cells" in figure.axes[0].get_title()


def test_large_matrices_are_not_annotated_and_nan_cells_are_labelled():
    values = torch.rand(13, 13, generator=torch.Generator().manual_seed(1))
    assert texts(plot_cka(values)) == []
    values = torch.tensor([[0.5, float("nan")]])
    assert texts(plot_cka(values, title="with a constant layer")) == ["0.50", "nan"]


def test_bad_shapes_and_names_are_rejected():
    with pytest.raises(ValueError, match=r"\[rows, cols\] matrix, got shape \(4,\)"):
        plot_cka(torch.rand(4))
    with pytest.raises(ValueError, match="1 row names and 2 column names for a 2×2 matrix"):
        plot_cka(torch.rand(2, 2), row_names=["a"], col_names=["x", "y"])


def test_missing_matplotlib_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'gmn\[plot\]'"):
        plot_cka(torch.rand(2, 2))
