"""Figures of the benchmark: accuracies with overlaps, and CKA heatmaps (PNG files)."""

from __future__ import annotations

from pathlib import Path

from gmn.files import write_figure

OVERLAP_PARTS = (
    ("both_right", "both right", "#4c9a2a"),
    ("only_a", "only A right", "#1f77b4"),
    ("only_b", "only B right", "#ff7f0e"),
    ("both_wrong", "both wrong", "#b0b0b0"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_overlap(results: dict, path: str | Path) -> Path:
    """Write :func:`accuracy_overlap_figure` as a PNG at ``path``."""
    plt = _pyplot()
    figure = accuracy_overlap_figure(results)
    path = write_figure(figure, path, dpi=120)
    plt.close(figure)
    return path


def accuracy_overlap_figure(results: dict):
    """Left: test accuracy per family (mean ± std bars, one dot per seed). Right: for each
    model pairing of ``results["overlap"]``, the mean fraction of test samples in each
    overlap category, one horizontal bar per pairing (its name on the y axis, readable
    however many pairings there are). Returns the matplotlib figure."""
    plt = _pyplot()
    figure, (ax_acc, ax_ov) = plt.subplots(1, 2, figsize=(14, 5), width_ratios=(1, 1.1))
    _accuracy_panel(ax_acc, results)
    _overlap_panel(ax_ov, results["overlap"])
    figure.tight_layout()
    return figure


def _accuracy_panel(axes, results: dict) -> None:
    families = results["families"]
    means = [100 * results["accuracy"][f]["mean"] for f in families]
    stds = [100 * results["accuracy"][f]["std"] for f in families]
    axes.bar(families, means, yerr=stds, capsize=4, color="#9ecae1", edgecolor="black")
    for i, family in enumerate(families):
        values = [100 * v for v in results["accuracy"][family]["values"]]
        axes.scatter([i] * len(values), values, color="black", s=14, zorder=3)
        axes.annotate(f"{means[i]:.1f}", (i, means[i] + stds[i]), ha="center", va="bottom",
                      xytext=(0, 6), textcoords="offset points", fontsize=9)
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(0, 105)
    axes.set_title("Test accuracy (bars: mean ± std; dots: seeds)")
    axes.tick_params(axis="x", labelrotation=30)
    for label in axes.get_xticklabels():
        label.set_horizontalalignment("right")


def _overlap_panel(axes, overlap: dict[str, list[dict]]) -> None:
    names = list(overlap)
    rows = range(len(names))
    lefts = [0.0] * len(names)
    for key, label, colour in OVERLAP_PARTS:
        widths = [100 * sum(o[key] / o["n"] for o in overlap[n]) / len(overlap[n]) for n in names]
        axes.barh(rows, widths, left=lefts, label=label, color=colour, edgecolor="black")
        for i, (w, left) in enumerate(zip(widths, lefts)):
            if w >= 6:
                axes.text(left + w / 2, i, f"{w:.1f}", ha="center", va="center", fontsize=8)
        lefts = [left + w for left, w in zip(lefts, widths)]
    axes.set_yticks(list(rows), [n.replace("-", " vs ") for n in names])
    axes.invert_yaxis()  # the first pairing on top
    axes.set_xlabel("test samples (%), mean over seeds")
    axes.set_xlim(0, 100)
    axes.set_title("Prediction overlap (A vs B)")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)


PAPER_COMPARISONS = ("gmn-mlp", "gmn-cnn", "mlp-cnn")


def plot_cka_figures(cka: dict, out: str | Path) -> dict[str, str]:
    """Heatmaps (via ``gmn.cka.plot_cka``) of the debiased CKA matrix of the first pair of
    every comparison; returns figure name → file name (relative to ``out``)."""
    import torch

    from gmn.cka import plot_cka

    figures = {}
    for kind in ("within", "between"):
        for name, group in cka[kind].items():
            pair = group["pairs"][0]
            file_name = f"cka_{name}.png"
            figure = plot_cka(
                torch.tensor(pair["debiased"]),
                row_names=pair["rows"],
                col_names=pair["cols"],
                title=f"debiased linear CKA: {pair['a']} vs {pair['b']}",
                ylabel=pair["a"],
                xlabel=pair["b"],
                vmin=min(0.0, min(min(r) for r in pair["debiased"])),
            )
            write_figure(figure, Path(out) / file_name)
            del figure
            figures[f"cka_{name}"] = file_name
    return figures
