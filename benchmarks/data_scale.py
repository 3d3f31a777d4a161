"""The data-scale curve: test accuracy against the number of training INRs.

    python -m benchmarks.data_scale --views 1,4,16,32 --out results/scale/digits-independent
    python -m benchmarks.data_scale --dataset mnist --root ../shared/data/mnist-test-half \\
        --source-split test --split 0.72,0.08,0.2 --views 1,4,10 \\
        --out results/scale/mnist-independent

INRs are fitted once, with the largest K views per image (independently initialised by
default, ``--inr-init``); a view's initialisation depends only on (seed, image, view), so the
first K views of that dataset are the INRs a K-view fit makes (up to float rounding: they were
fitted in larger batches). For each K, every family
trains on the K views of each training image and is selected on view 0 of the validation
images, then tested once, on view 0 of the test images (the images of the three splits are
the same for every K). Families and their options: ``gmn`` (the weights-only GMN), ``weight_mlp``
and ``gmn_probe`` with function samples at ``--probe-points`` random query points.

Every family sees the same number of training samples at every K: it trains
``max(--min-epochs, round(E / K))`` epochs, E its own epochs at one view as the
classification benchmark resolves them (``gmn``: 60, the others 10; ``--epochs`` sets
them). Each run is cached like the classification benchmark's
(``OUT/runs/views-K/FAMILY/seedS``); the table ``OUT/scale.md``, ``OUT/scale.json`` and
``OUT/scale.png`` are rewritten at the end, with each cell's wall time and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.inr_classification.cache import save_text
from benchmarks.inr_classification.cli import parse_config
from benchmarks.inr_classification.config import BenchmarkConfig
from benchmarks.inr_classification.data import BenchmarkData, prepare_data
from benchmarks.inr_classification.families import plan_family
from benchmarks.inr_classification.training import train_family_seed
from gmn.data.dataset import ParameterRows
from gmn.files import write_json

FAMILIES = ("gmn", "weight_mlp", "gmn_probe")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, BenchmarkConfig]:
    """This script's options; every other option is the classification benchmark's."""
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--views", default="1,4,16,32",
                     help="numbers of views per training image, e.g. 1,4,16,32")
    own.add_argument("--scale-families", default=",".join(FAMILIES),
                     help=f"families of the curve, from {', '.join(FAMILIES)}")
    own.add_argument("--probe-points", type=int, default=16,
                     help="random query points of gmn_probe's function samples")
    own.add_argument("--min-epochs", type=int, default=2)
    args, rest = own.parse_known_args(argv)
    if "--inr-init" not in rest:
        rest = ["--inr-init", "independent", *rest]
    views = sorted({int(v) for v in args.views.split(",") if v})
    if not views or views[0] < 1:
        raise SystemExit(f"--views takes positive numbers, got {args.views!r}")
    args.views = views
    args.scale_families = tuple(f for f in args.scale_families.split(",") if f)
    unknown = sorted(set(args.scale_families) - set(FAMILIES))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {FAMILIES}")
    if "--out" not in rest:
        dataset = rest[rest.index("--dataset") + 1] if "--dataset" in rest else "digits"
        rest = [*rest, "--out", f"results/scale/{dataset}"]
    config = parse_config(["--views", str(views[-1]), *rest])
    if config.zoo is not None:
        raise SystemExit("the data-scale curve fits its own INRs; --zoo is not supported")
    return args, config


def with_views(data: BenchmarkData, views: int, total: int) -> BenchmarkData:
    """``data`` training on the first ``views`` of its ``total`` views per image."""
    rows = data.train_set
    train = data.split["train"]
    keep = (train[:, None] * total + torch.arange(views)).flatten()
    return replace(data, train_set=ParameterRows(rows.dataset, keep),
                   key={**data.key, "train_views": views})


def family_config(family: str, views: int, data: BenchmarkData, config: BenchmarkConfig,
                  args: argparse.Namespace) -> BenchmarkConfig:
    """``config`` for ``family`` at ``views`` views: its epochs at one view (as the
    classification benchmark resolves them) divided by ``views``, at least ``--min-epochs``;
    ``gmn_probe``'s function samples at ``--probe-points`` random points."""
    if family == "gmn_probe":
        config = replace(config, gmn_config={**config.gmn_config,
                                             "query_points": args.probe_points})
    epochs = max(args.min_epochs, round(plan_family(family, data, config).epochs / views))
    return replace(config, family_epochs={**config.family_epochs, family: epochs})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_curve(args: argparse.Namespace, config: BenchmarkConfig) -> list[dict]:
    out = Path(config.out)
    start = time.time()
    data = prepare_data(config, out)
    total = config.views
    print(f"data: {data.description}; {data.inr_description} "
          f"({time.time() - start:.0f} s, peak RSS {peak_rss_mb():.0f} MB)", flush=True)
    cells = []
    for views in args.views:
        subset = with_views(data, views, total)
        for family in args.scale_families:
            cfg = family_config(family, views, subset, config, args)
            epochs = cfg.family_epochs[family]
            accuracies, seconds = [], []
            for seed in range(config.seed, config.seed + config.seeds):
                run_dir = out / "runs" / f"views-{views}" / family / f"seed{seed}"
                began = time.time()
                result, _, _ = train_family_seed(family, seed, subset, cfg, run_dir)
                seconds.append(result.get("train_seconds", time.time() - began))
                accuracies.append(result["test_accuracy"])
            cell = {"views": views, "train_inrs": len(subset.train_set), "family": family,
                    "epochs": epochs, "seeds": config.seeds, "test_accuracy": accuracies,
                    "mean": sum(accuracies) / len(accuracies),
                    "train_seconds": seconds, "peak_rss_mb": round(peak_rss_mb())}
            cells.append(cell)
            print(f"K={views:>2} ({cell['train_inrs']} training INRs) {family:>10}: "
                  f"{100 * cell['mean']:.1f} % ({', '.join(f'{100 * a:.1f}' for a in accuracies)}"
                  f"), {epochs} epochs, {sum(seconds):.0f} s, peak RSS {cell['peak_rss_mb']} MB",
                  flush=True)
    return cells


def render_table(cells: list[dict], config: BenchmarkConfig, command: str) -> str:
    lines = [
        f"# Data-scale curve: {config.dataset}, {config.inr_init} initialisation",
        "",
        f"Command: `{command}`",
        "",
        "Test accuracy (%) at the best validation epoch, mean of the seeds (each seed's "
        "value in brackets); training on K views per training image, validation and test "
        "on view 0 of their own images.",
        "",
        "| K | training INRs | family | epochs | test accuracy (%) | train seconds (sum) | "
        "peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        each = ", ".join(f"{100 * a:.1f}" for a in c["test_accuracy"])
        lines.append(f"| {c['views']} | {c['train_inrs']} | `{c['family']}` | {c['epochs']} | "
                     f"{100 * c['mean']:.1f} ({each}) | {sum(c['train_seconds']):.0f} | "
                     f"{c['peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


def plot_curve(cells: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gmn.files import atomic_write

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for family in dict.fromkeys(c["family"] for c in cells):
        rows = [c for c in cells if c["family"] == family]
        x = [c["train_inrs"] for c in rows]
        y = [100 * c["mean"] for c in rows]
        spread = [100 * torch.tensor(c["test_accuracy"]).std().item()
                  if len(c["test_accuracy"]) > 1 else 0.0 for c in rows]
        ax.errorbar(x, y, yerr=spread, marker="o", capsize=3, label=family)
    ax.set_xscale("log")
    ax.set_xlabel("training INRs")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    args, config = parse_args(argv)
    if config.threads:
        torch.set_num_threads(config.threads)
    cells = run_curve(args, config)
    out = Path(config.out)
    command = shlex.join(["python", "-m", "benchmarks.data_scale", *argv])
    write_json({"command": command, "cells": cells}, out / "scale.json")
    save_text(render_table(cells, config, command), out / "scale.md")
    plot_curve(cells, out / "scale.png", f"{config.dataset}, {config.inr_init} initialisation")
    print(f"table: {out / 'scale.md'}")
    return cells


if __name__ == "__main__":
    main()
