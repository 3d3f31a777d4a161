"""Heatmaps of layer × layer matrices (matplotlib, the optional ``gmn[plot]`` extra)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .matrix import CKAMatrix
from .statistics import METHOD_NAMES, adjust_p_values, warn_if_unreachable

ANNOTATE_UP_TO = 12


def _pyplot_free_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plot_cka needs matplotlib, an optional extra: pip install 'gmn[plot]' "
            "(or pip install matplotlib)"
        ) from error
    return Figure


def plot_cka(
    matrix: CKAMatrix | Tensor,
    path: str | Path | None = None,
    *,
    row_names: list[str] | None = None,
    col_names: list[str] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    annotate: bool | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "magma",
    dpi: int = 150,
    alpha: float = 0.05,
    correction: str | None = "holm",
):
    """Draw a layer × layer matrix as a heatmap and return the matplotlib ``Figure``.

    ``matrix``: a :class:`CKAMatrix` of any measure (names, title, colour-bar label and
    p-values are taken from it) or a ``[A, B]`` tensor. Cells are annotated with their
    values when ``annotate`` is True, or by default when neither side exceeds 12 layers.
    With p-values, a cell gets a ``*`` when its p-value, corrected for testing every cell
    (``correction``: ``"holm"``, ``"bh"``, or None for none), is ≤ ``alpha``; the title says
    which correction, and when the matrix's permutations are too few for any cell to pass
    it, a warning is raised and the title says so. NaN cells are grey. ``path``: save a PNG
    there. Needs matplotlib (``pip install 'gmn[plot]'``).
    """
    Figure = _pyplot_free_figure()
    p_values, note, measure = None, "", "CKA"
    if isinstance(matrix, CKAMatrix):
        measure = "CKA" if matrix.measure == "cka" else matrix.measure
        values = matrix.values
        row_names = row_names or matrix.row_names
        col_names = col_names or matrix.col_names
        title = title or matrix.label
        if matrix.p_values is not None:
            p_values, note = _significance(matrix, alpha, correction)
    else:
        values = torch.as_tensor(matrix)
    if values.dim() != 2:
        raise ValueError(f"plot_cka needs a [rows, cols] matrix, got shape {tuple(values.shape)}")
    values = values.detach().cpu().double().numpy()
    n_rows, n_cols = values.shape
    row_names = row_names or [str(i) for i in range(n_rows)]
    col_names = col_names or [str(j) for j in range(n_cols)]
    if (len(row_names), len(col_names)) != (n_rows, n_cols):
        raise ValueError(
            f"{len(row_names)} row names and {len(col_names)} column names for a "
            f"{n_rows}×{n_cols} matrix"
        )
    if annotate is None:
        annotate = max(n_rows, n_cols) <= ANNOTATE_UP_TO

    figure = Figure(figsize=(2.5 + 0.7 * max(n_cols, 4), 1.5 + 0.5 * max(n_rows, 3)), dpi=dpi)
    axes = figure.add_subplot()
    colour_map = _colour_map(cmap)
    image = axes.imshow(values, cmap=colour_map, vmin=vmin, vmax=vmax, aspect="auto")
    axes.set_xticks(range(n_cols), col_names, rotation=45, ha="right")
    axes.set_yticks(range(n_rows), row_names)
    if annotate and p_values is not None:
        title = f"{title or 'CKA'}\n({note})"
    axes.set_title(title or "CKA")
    if xlabel:
        axes.set_xlabel(xlabel)
    if ylabel:
        axes.set_ylabel(ylabel)
    figure.colorbar(image, ax=axes, label=measure)
    if annotate:
        for i in range(n_rows):
            for j in range(n_cols):
                value = values[i, j]
                text = "nan" if value != value else f"{value:.2f}"
                if p_values is not None and float(p_values[i, j]) <= alpha:
                    text += "*"
                shade = colour_map((value - vmin) / (vmax - vmin)) if value == value else (1, 1, 1)
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure


def _significance(matrix: CKAMatrix, alpha: float, correction: str | None) -> tuple[Tensor, str]:
    """The p-values that decide the stars (corrected over the matrix's cells unless
    ``correction`` is None) and the title's note on them."""
    raw = torch.as_tensor(matrix.p_values, dtype=torch.float64)
    if correction is None:
        return raw, f"* permutation p ≤ {alpha:g}, not corrected for the cells tested"
    adjusted = adjust_p_values(raw, correction)  # refuses an unknown correction
    cells, name = int((~torch.isnan(raw)).sum()), METHOD_NAMES[correction]
    if matrix.permutations is not None and warn_if_unreachable(
        matrix.permutations, cells, correction, alpha
    ):
        return adjusted, (f"no cell can reach p ≤ {alpha:g} after {name} over {cells} cells "
                          f"with {matrix.permutations} permutations")
    return adjusted, f"* p ≤ {alpha:g} after {name}'s correction over {cells} cells"


def _colour_map(name: str):
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="lightgrey")
