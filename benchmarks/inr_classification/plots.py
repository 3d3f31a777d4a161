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
    """Left: test accuracy per family (mean ± std bars, one dot per seed). Right: for each
    model pairing of ``results["overlap"]``, the mean fraction of test samples in each
    overlap category."""
    plt = _pyplot()
    families = results["families"]
    fig, (ax_acc, ax_ov) = plt.subplots(1, 2, figsize=(13, 4.5), width_ratios=(1.1, 1))
    means = [100 * results["accuracy"][f]["mean"] for f in families]
    stds = [100 * results["accuracy"][f]["std"] for f in families]
    ax_acc.bar(families, means, yerr=stds, capsize=4, color="#9ecae1", edgecolor="black")
    for i, family in enumerate(families):
        values = [100 * v for v in results["accuracy"][family]["values"]]
        ax_acc.scatter([i] * len(values), values, color="black", s=14, zorder=3)
        ax_acc.annotate(
            f"{means[i]:.1f}",
            (i, means[i] + stds[i]),
            ha="center",
            va="bottom",
            xytext=(0, 6),
            textcoords="offset points",
            fontsize=9,
        )
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_ylim(0, 105)
    ax_acc.set_title("Test accuracy (bars: mean ± std; dots: seeds)")
    ax_acc.tick_params(axis="x", labelrotation=20)

    names = list(results["overlap"])
    bottoms = [0.0] * len(names)
    for key, label, colour in OVERLAP_PARTS:
        heights = [
            100 * sum(o[key] / o["n"] for o in results["overlap"][n]) / len(results["overlap"][n])
            for n in names
        ]
        ax_ov.bar(
            [n.replace("-", " vs ") for n in names],
            heights,
            bottom=bottoms,
            label=label,
            color=colour,
            edgecolor="black",
        )
        for i, (h, b) in enumerate(zip(heights, bottoms)):
            if h >= 3:
                ax_ov.text(i, b + h / 2, f"{h:.1f}", ha="center", va="center", fontsize=9)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax_ov.set_ylabel("test samples (%), mean over seeds")
    ax_ov.set_ylim(0, 100)
    ax_ov.set_title("Prediction overlap (A vs B)")
    ax_ov.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    path = write_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


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
