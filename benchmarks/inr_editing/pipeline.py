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
import shlex
import sys
import time
from pathlib import Path

import torch

from benchmarks.inr_classification.assemble import cka_headlines
from benchmarks.inr_classification.cache import save_json, save_text
from benchmarks.inr_classification.findings import gmn_image_dissimilarity, seed_sensitivity
from benchmarks.inr_classification.pipeline import _cached_cka, _check_out, package_versions
from benchmarks.inr_classification.plots import plot_cka_figures
from benchmarks.inr_classification.similarity import cka_study
from benchmarks.inr_classification.training import BEST
from gmn.files import remove_stale_temporaries

from .analysis import mse_summary, targets
from .config import EditingConfig
from .data import prepare_editing_data
from .plots import plot_picture_grid
from .report import render_report
from .training import SHOWN, no_edit, train_family_seed, trained_model

METANETWORKS = ("gmn", "gmn_probe", "nfn_np")  # the study's claims are tested for each


def run_benchmark(config: EditingConfig, command: str | None = None) -> dict:
    """Run (or resume) the whole benchmark; returns the ``results.json`` dictionary."""
    out = Path(config.out)
    _check_out(config, out)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    load = {"start": os.getloadavg()}
    timings: dict[str, float] = {}
    start = time.perf_counter()

    data = prepare_editing_data(config, out)
    timings["data"] = time.perf_counter() - start

    runs: dict[str, list[dict]] = {}
    outputs: dict[str, list[dict]] = {}
    stage = time.perf_counter()
    for family in config.families:
        for seed in config.seed_list:
            run_start = time.perf_counter()
            if family == "no_edit":
                result, tensors = no_edit(data)
            else:
                run_dir = out / "runs" / family / f"seed{seed}"
                result, tensors = train_family_seed(family, seed, data, config, run_dir)
            runs.setdefault(family, []).append(result)
            outputs.setdefault(family, []).append(tensors)
            timings[f"train/{family}/seed{seed}"] = time.perf_counter() - run_start
    timings["train"] = time.perf_counter() - stage

    stage = time.perf_counter()
    studied = config.trained_families
    cka_key = {
        "runs": {f: [r["key"] for r in runs[f]] for f in studied},
        "checkpoints": {f: [{BEST: r["files"][BEST]} for r in runs[f]] for f in studied},
        **config.key("cka_permutations", "cka_permutation_samples"),
    }
    cka = _cached_cka(out / "cka.json", cka_key, config)
    if cka is None:
        models = {
            family: [trained_model(family, data, config, out / "runs" / family / f"seed{seed}",
                                   result)
                     for seed, result in zip(config.seed_list, runs[family])]
            for family in studied
        }
        cka = cka_study(models, config)
        save_json({"key": cka_key, "cka": cka}, out / "cka.json")
    timings["cka"] = time.perf_counter() - stage

    stage = time.perf_counter()
    within, between = cka_headlines(cka)
    test = data.inrs.split["test"]
    mse = mse_summary(runs)
    results = {
        "command": command or shlex.join([sys.executable, "-m", "benchmarks.inr_editing"]),
        "config": config.to_dict(),
        "versions": package_versions(),
        "seeds": config.seed_list,
        "families": list(config.families),
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
                     for gmn in METANETWORKS if gmn in studied},
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
