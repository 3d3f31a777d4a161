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
             "| split | method | Kendall τ (test) | R² (test) | τ held-out architectures |",
             "| --- | --- | --- | --- | --- |"]
    for split, methods in summary.items():
        for method, metrics in methods.items():
            cells = [_cell(metrics, m) for m in ("kendall_tau", "r2", "kendall_tau_held_out")]
            lines.append(f"| {split} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "mean ± std over seeds (each seed: its own split, held-out architectures "
              "and initialisation). `flat_mlp` needs one architecture (homogeneous only).", "",
              PUBLISHED, "", "![predicted vs true](scatter.png)", ""]
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
