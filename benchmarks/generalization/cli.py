"""``python -m benchmarks.generalization``: build (or reuse) a zoo, then predict each CNN's test
accuracy from its weights with every method, on both splits, over seeds."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.cnn_zoo import add_config_arguments, config_of, summarize
from benchmarks.generalization.methods import METHODS
from benchmarks.generalization.report import aggregate, run_notes, scatter, write_report
from benchmarks.generalization.splits import SPLITS
from gmn.zoo.build import ZooConfig, build_zoo
from gmn.zoo.readers import import_checkpoints
from gmn.zoo.store import ModelZoo

# the benchmark's own zoo: small enough to build and evaluate in ≤ 10 min on 2 CPU cores
DEFAULT_ZOO = ZooConfig(models=600, architectures=12, max_epochs=6)


def metrics(true: np.ndarray, predicted: np.ndarray) -> dict:
    from scipy.stats import kendalltau
    from sklearn.metrics import r2_score

    tau = float(kendalltau(true, predicted).statistic)
    # a constant prediction ranks nothing: τ is undefined (NaN); count it as no agreement
    return {"kendall_tau": 0.0 if np.isnan(tau) else tau, "r2": float(r2_score(true, predicted))}


def kendall_significance(true: np.ndarray, predicted: np.ndarray) -> dict:
    """Kendall τ's two-sided p-value on these n test models and the smallest p any ranking of
    n models can reach, 2/n! (a perfect ranking, no ties): with n ≤ 4 even τ = ±1 is not
    significant at 0.05."""
    from scipy.stats import kendalltau

    p_value = float(kendalltau(true, predicted).pvalue)
    return {"n": len(true), "p_value": 1.0 if np.isnan(p_value) else p_value,
            "smallest_p": min(1.0, 2 / math.factorial(len(true)))}


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generalization")
    parser.add_argument("--out", default="results/generalization")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--zoo", default=None,
                        help="a built zoo folder (default: build one under --out)")
    source.add_argument("--import-checkpoints", nargs=2, metavar=("FOLDER", "TARGETS_CSV"),
                        help="a folder of checkpoints (torch.save'd state_dicts or safetensors "
                        "files) and a CSV of their test accuracies (a header line; first "
                        "column the file, an optional split column): imported into OUT/zoo "
                        "(gmn.zoo.import_checkpoints), then used")
    parser.add_argument("--target-column", default=None,
                        help="with --import-checkpoints: the CSV column to predict (default: "
                        "test_accuracy, else the one column besides the file and split)")
    parser.add_argument("--like", default=None, metavar="MODULE:NAME",
                        help="with --import-checkpoints: the checkpoints' architecture when "
                        "their keys cannot tell it (activations, pooling, skips): a class or "
                        "function importable as MODULE:NAME that, called with no arguments, "
                        "returns an nn.Module of it")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=30, help="GMN epochs")
    parser.add_argument("--hidden", type=int, default=32, help="GMN width")
    parser.add_argument("--layers", type=int, default=2, help="GMN layers")
    parser.add_argument("--lr", type=float, default=3e-3, help="GMN learning rate")
    parser.add_argument("--gmn-config", type=json.loads, default={},
                        help="JSON: gmn.nn.GMNConfig fields over the zoo GMN preset "
                        "(gmn.nn.ZOO_GMN), e.g. "
                        "'{\"edge_message\": \"gated\"}'")
    parser.add_argument("--device", default=None)
    parser.add_argument("--workers", type=int, default=2, help="zoo-building processes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and OpenMP threads (1 is fastest on a shared machine)")
    parser.add_argument("--no-progress", action="store_true")
    add_config_arguments(parser, DEFAULT_ZOO)
    args = parser.parse_args(argv)
    if args.import_checkpoints is None and (args.like or args.target_column):
        parser.error("--like and --target-column go with --import-checkpoints")
    return args


def like_module(text: str) -> nn.Module:
    """The module ``MODULE:NAME`` names (a class or function called with no arguments)."""
    module_name, _, name = text.partition(":")
    if not module_name or not name:
        raise ValueError(f"--like {text!r}: expected MODULE:NAME, e.g. mypackage.models:SmallCNN")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"--like {text!r}: cannot import it ({error})") from error
    module = factory()
    if not isinstance(module, nn.Module):
        raise ValueError(f"--like {text!r} returned a {type(module).__name__}, not an nn.Module")
    return module


def import_zoo(args: argparse.Namespace, out: Path) -> ModelZoo:
    """``--import-checkpoints`` into ``out/zoo``, replacing an earlier import whole."""
    folder, targets = args.import_checkpoints
    like = like_module(args.like) if args.like else None
    staging, final = out / "zoo.importing", out / "zoo"
    shutil.rmtree(staging, ignore_errors=True)
    import_checkpoints(folder, targets, staging, like=like, column=args.target_column,
                       progress=not args.no_progress)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return ModelZoo(final)


def main(argv=None) -> dict:
    """Run the benchmark from the command line ``argv``; on Ctrl-C, say what is kept and exit
    with status 130."""
    args = parse(argv)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    try:
        with threadpool_limits(args.threads):
            return _run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command to resume (the zoo built so far is kept, "
              "the predictors are trained again)", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def _run(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.zoo is not None:
        zoo = ModelZoo(args.zoo)
    elif args.import_checkpoints is not None:
        zoo = import_zoo(args, out)
    else:
        config = config_of(args)
        zoo = build_zoo(out / f"zoo-{config.dataset}-seed{config.seed}", config,
                        workers=args.workers, progress=not args.no_progress)
    built = time.perf_counter() - start
    targets = zoo.targets()
    options = {"hidden": args.hidden, "layers": args.layers, "epochs": args.epochs,
               "lr": args.lr, "device": args.device, "run_dir": str(out / "runs"),
               "gmn_config": args.gmn_config}
    runs = []
    for split_name in args.splits:
        for seed in args.seeds:
            made = SPLITS[split_name](zoo, seed)
            split = made["split"]
            if len(split["test"]) < 2 or len(split["train"]) < 2:
                print(f"{split_name}: skipped, {len(split['train'])} train and "
                      f"{len(split['test'])} test models")
                break
            true = targets[split["test"]].numpy()
            held = np.array([zoo.architecture_of[i] in made["held_out"]
                             for i in split["test"].tolist()])
            for method in args.methods:
                torch.manual_seed(seed)
                tick = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:  # kept in the report
                    warnings.simplefilter("always")
                    predicted = METHODS[method](zoo, split, targets, seed, options)
                if predicted is None:
                    continue
                result = metrics(true, predicted)
                if held.sum() > 1:
                    result["kendall_tau_held_out"] = metrics(true[held], predicted[held])[
                        "kendall_tau"]
                runs.append({"split": split_name, "method": method, "seed": seed,
                             "metrics": result, "kendall": kendall_significance(true, predicted),
                             "warnings": sorted({_warning(w) for w in caught}),
                             "seconds": round(time.perf_counter() - tick, 1),
                             "held_out": made["held_out"],
                             "sizes": {k: len(v) for k, v in split.items()},
                             "true": true.tolist(), "predicted": predicted.tolist()})
                print(f"{split_name:12s} seed {seed} {method:15s} "
                      + " ".join(f"{k}={v:.3f}" for k, v in result.items())
                      + f" ({runs[-1]['seconds']} s)", flush=True)
                for note in run_notes(runs[-1]):
                    print(f"  note: {note}", flush=True)
    summary = aggregate(runs)
    meta = {"zoo": str(zoo.folder), "zoo_summary": summarize(zoo), "seeds": args.seeds,
            "zoo_seconds": round(built, 1), "seconds": time.perf_counter() - start,
            "options": {k: v for k, v in vars(args).items()}}
    write_report(out, summary, runs, meta)
    scatter(out, runs)
    for line in summary_lines(summary):
        print(line)
    print(f"wrote {out / 'report.md'} ({meta['seconds']:.0f} s, zoo {built:.0f} s)")
    return summary


def _warning(caught: warnings.WarningMessage) -> str:
    return f"{caught.category.__name__}: {str(caught.message).strip()}"


def summary_lines(summary: dict) -> list[str]:
    """One line per (split, method): each metric's mean ± std over seeds."""
    return [f"{split}/{method}: " + ", ".join(
                f"{k} {v['mean']:.3f} ± {v['std']:.3f}" for k, v in m.items())
            for split, methods in summary.items() for method, m in methods.items()]
