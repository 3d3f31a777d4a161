"""The editing benchmark from images to report, each stage cached under ``--out`` with the
classification benchmark's machinery (same files, same checks, same resumption):

=========  =========================================  ====================================
stage      files (record in bold)                     reused when
=========  =========================================  ====================================
inrs       ``inrs/`` (as in the classification         same images, recipe, seed
           benchmark)
train      ``runs/FAMILY/seedS/``: ``*.pt``,           same data, dilation, seed, model and
           ``outputs.safetensors``, **result.json**    training options
cka        **``cka.json``**                            same runs, CKA options
report     ``results.json``, ``report.md``, ``*.png``  always rewritten
=========  =========================================  ====================================
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.inr_classification.assemble import cka_headlines
from benchmarks.inr_classification.cache import save_text
from benchmarks.inr_classification.findings import gmn_image_dissimilarity, seed_sensitivity
from benchmarks.inr_classification.pipeline import (
    cka_stage,
    in_locked_out,
    record_timings,
    run_record,
    train_runs,
)
from benchmarks.inr_classification.plots import plot_cka_figures
from benchmarks.inr_classification.timings import InvocationTimes
from gmn.files import write_json

from .analysis import mse_summary, targets
from .config import EditingConfig
from .data import prepare_editing_data
from .plots import plot_picture_grid
from .report import render_report
from .training import SHOWN, no_edit, train_family_seed, trained_model

METANETWORKS = ("gmn", "gmn_probe", "nfn_np")  # the study's claims are tested for each


def run_benchmark(config: EditingConfig, command: str | None = None) -> dict:
    """Run (or resume) the whole benchmark; returns the ``results.json`` dictionary (raises
    as the classification benchmark's ``in_locked_out``)."""
    return in_locked_out(config, command,
                         lambda out, clock: _run_stages(config, command, out, clock))


def _run_line(result: dict) -> str:
    """One editing run's outcome in one line: test MSE, best validation loss, epochs, time."""
    if result["best_epoch"] is None:  # no_edit: nothing trained
        return f"test MSE {result['test_mse']:.4f}"
    return (f"test MSE {result['test_mse']:.4f}, best val loss {result['best_val_loss']:.4f} at "
            f"epoch {result['best_epoch']}/{result['key']['epochs']}, trained in "
            f"{result['train_seconds']:.0f} s")


def _run_stages(config: EditingConfig, command: str | None, out: Path,
                clock: InvocationTimes) -> dict:
    load = {"start": os.getloadavg()}
    clock.begin("data")
    data = prepare_editing_data(config, out)

    def train(family: str, seed: int, run_dir: Path):
        if family == "no_edit":
            return (*no_edit(data), False)
        return train_family_seed(family, seed, data, config, run_dir)

    runs, outputs = train_runs(config, out, train, clock, _run_line)

    clock.begin("cka")
    cka = cka_stage(config, out, {f: runs[f] for f in config.trained_families},
                    lambda family, run_dir, result: trained_model(family, data, config, run_dir,
                                                                  result),
                    ("cka_permutations", "cka_permutation_samples"),
                    len(data.inrs.split["test"]))

    clock.begin("analysis")
    within, between = cka_headlines(cka)
    test = data.inrs.split["test"]
    mse = mse_summary(runs)
    results = {
        **run_record(config, command, "benchmarks.inr_editing"),
        "data": {
            "name": data.inrs.name,
            "description": data.inrs.description,
            "inr_description": data.inrs.inr_description,
            "setting": data.inrs.setting,
            "task": f"dilation by a {config.dilation}×{config.dilation} square",
            "n_train": len(data.inrs.split["train"]),
            "n_val": len(data.inrs.split["val"]),
            "n_test": len(test),
        },
        "runs": runs,
        "mse": mse,
        "targets": targets(mse),
        "findings": {gmn: [seed_sensitivity(within, gmn), gmn_image_dissimilarity(between, gmn)]
                     for gmn in METANETWORKS if gmn in config.trained_families},
        "cka": cka,
    }
    shown = {"input": data.inputs[test][:SHOWN], "target": data.targets[test][:SHOWN],
             **{family: outputs[family][0]["images"] for family in config.families}}
    results["figures"] = {"pictures": plot_picture_grid(shown, out / "pictures.png").name}
    results["figures"].update(plot_cka_figures(cka, out))
    record_timings(results, clock)
    load["end"] = os.getloadavg()
    results["load_average"] = load
    write_json(results, out / "results.json")
    save_text(render_report(results), out / "report.md")
    return results
