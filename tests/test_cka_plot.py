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
    figure = plot_cka(result, path, xlabel="MLP layer", ylabel="GMN layer")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    heatmap, colour_bar = figure.axes
    assert [t.get_text() for t in heatmap.get_yticklabels()] == result.row_names
    assert [t.get_text() for t in heatmap.get_xticklabels()] == result.col_names
    assert heatmap.get_title().startswith("debiased linear CKA")
    assert colour_bar.get_ylabel() == "CKA"
    expected = [
        f"{float(result.values[i, j]):.2f}" + ("*" if result.p_values[i, j] < 0.05 else "")
        for i in range(3)
        for j in range(4)
    ]
    assert texts(figure) == expected


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
