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
import time
from pathlib import Path

from benchmarks.inr_classification.assemble import cka_headlines
from benchmarks.inr_classification.cache import save_json, save_text
from benchmarks.inr_classification.findings import gmn_image_dissimilarity, seed_sensitivity
from benchmarks.inr_classification.pipeline import (
    cka_stage,
    open_out,
    run_record,
    train_runs,
)
from benchmarks.inr_classification.plots import plot_cka_figures

from .analysis import mse_summary, targets
from .config import EditingConfig
from .data import prepare_editing_data
from .plots import plot_picture_grid
from .report import render_report
from .training import SHOWN, no_edit, train_family_seed, trained_model

METANETWORKS = ("gmn", "gmn_probe", "nfn_np")  # the study's claims are tested for each


def run_benchmark(config: EditingConfig, command: str | None = None) -> dict:
    """Run (or resume) the whole benchmark; returns the ``results.json`` dictionary."""
    out = open_out(config)
    load = {"start": os.getloadavg()}
    timings: dict[str, float] = {}
    start = time.perf_counter()

    data = prepare_editing_data(config, out)
    timings["data"] = time.perf_counter() - start

    def train(family: str, seed: int, run_dir: Path):
        if family == "no_edit":
            return no_edit(data)
        return train_family_seed(family, seed, data, config, run_dir)

    runs, outputs = train_runs(config, out, train, timings)

    stage = time.perf_counter()
    cka = cka_stage(config, out, {f: runs[f] for f in config.trained_families},
                    lambda family, run_dir, result: trained_model(family, data, config, run_dir,
                                                                  result),
                    ("cka_permutations", "cka_permutation_samples"))
    timings["cka"] = time.perf_counter() - stage

    stage = time.perf_counter()
    within, between = cka_headlines(cka)
    test = data.inrs.split["test"]
    mse = mse_summary(runs)
    results = {
        **run_record(config, command, "benchmarks.inr_editing"),
        "data": {
            "name": data.inrs.name,
            "description": data.inrs.description,
            "inr_description": data.inrs.inr_description,
            "inr_init": config.inr_init,
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
    timings["analysis"] = time.perf_counter() - stage
    timings["total"] = time.perf_counter() - start
    load["end"] = os.getloadavg()
    results["timings"] = timings
    results["load_average"] = load
    save_json(results, out / "results.json")
    save_text(render_report(results), out / "report.md")
    return results
