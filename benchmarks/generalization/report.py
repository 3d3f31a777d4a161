"""results.json, report.md and the scatter plot of predicted vs true accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gmn.files import write_figure

PUBLISHED = ("Published Kendall τ for reference: CIFAR10-GS NFN-HNP 0.934, NG-GNN 0.930, "
             "NG-T 0.935; CNN Wild Park NG-GNN 0.804, NG-T 0.817 (other zoos, other sizes).")


def aggregate(runs: list[dict]) -> dict:
    """``{split: {method: {metric: {"mean", "std", "values"}}}}`` over seeds."""
    out: dict = {}
    for run in runs:
        for metric, value in run["metrics"].items():
            entry = out.setdefault(run["split"], {}).setdefault(run["method"], {})
            entry.setdefault(metric, []).append(value)
    for methods in out.values():
        for method, metrics in methods.items():
            methods[method] = {m: {"mean": float(np.mean(v)), "std": float(np.std(v)),
                                   "values": v} for m, v in metrics.items()}
    return out


ALPHA = 0.05


def run_notes(run: dict) -> list[str]:
    """What the reader of one run's τ must know: a test set too small for τ to be told from
    chance, and the warnings the method raised (e.g. an MLP stopped before converging)."""
    notes = []
    kendall = run.get("kendall")
    if kendall is not None and kendall["smallest_p"] > ALPHA:
        notes.append(
            f"τ = {run['metrics']['kendall_tau']:.3f} on only n = {kendall['n']} test models "
            f"cannot be told from chance: even a perfect ranking has p = 2/{kendall['n']}! = "
            f"{kendall['smallest_p']:.2f} > {ALPHA} (two-sided)")
    notes += [f"{run['method']} warned: {w}" for w in run.get("warnings", [])]
    return notes


def _cell(metrics: dict, name: str) -> str:
    if name not in metrics:
        return "–"
    return f"{metrics[name]['mean']:.3f} ± {metrics[name]['std']:.3f}"


def write_report(out: Path, summary: dict, runs: list[dict], meta: dict) -> None:
    (out / "results.json").write_text(json.dumps(
        {"summary": summary, "runs": runs, "meta": meta}, indent=1))
    lines = ["# Predicting CNN test accuracy from weights", "",
             f"Zoo: `{meta['zoo']}` — {meta['zoo_summary']['models']} CNNs, "
             f"{meta['zoo_summary']['architectures']} architectures. Seeds: {meta['seeds']}. "
             f"Wall time: {meta['seconds']:.0f} s.", "",
             "| split | method | test models (n) | Kendall τ (test) | two-sided p of τ | "
             "R² (test) | τ held-out architectures |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for split, methods in summary.items():
        for method, metrics in methods.items():
            own = [r for r in runs if r["split"] == split and r["method"] == method]
            sizes = "/".join(sorted({str(r["sizes"]["test"]) for r in own}))
            p_values = ", ".join(f"{r['kendall']['p_value']:.2g}" for r in own)
            cells = [sizes, _cell(metrics, "kendall_tau"), p_values, _cell(metrics, "r2"),
                     _cell(metrics, "kendall_tau_held_out")]
            lines.append(f"| {split} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "mean ± std over seeds (each seed: its own split, held-out architectures "
              "and initialisation); p per seed, Kendall's two-sided test of τ = 0 (exact for "
              "small n without ties). `flat_mlp` needs one architecture (homogeneous only)."]
    notes = [f"- {r['split']} seed {r['seed']} {r['method']}: {note}"
             for r in runs for note in run_notes(r)]
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines += ["", PUBLISHED, "", "![predicted vs true](scatter.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


def scatter(out: Path, runs: list[dict]) -> None:
    """Predicted vs true test accuracy, first seed, one panel per (split, method)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = [r for r in runs if r["seed"] == runs[0]["seed"]]
    fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 3.2), squeeze=False)
    for ax, run in zip(axes[0], first):
        ax.scatter(run["true"], run["predicted"], s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.set_title(f"{run['split']} · {run['method']}\nτ={run['metrics']['kendall_tau']:.3f}",
                     fontsize=9)
        ax.set_xlabel("true accuracy")
        ax.set_ylabel("predicted")
    fig.tight_layout()
    write_figure(fig, out / "scatter.png", dpi=110)
    plt.close(fig)
