"""The benchmark from images to report, stage by stage, each stage cached under ``--out``.

Stages and their files. A killed run resumes at the first stage whose record is missing;
every record holds the sha256 of its own content and of each file it vouches for, and those
files carry the sha256 of their own content too (so a lost record never vouches for damage),
checked before reuse: a damaged file is named (a warning) and its stage computed again.

=========  ======================================  =======================================
stage      files (record in bold)                  reused when
=========  ======================================  =======================================
inrs       ``inrs/shard-*.safetensors``,           same images (content sha256), recipe,
           **``inrs/manifest.json``**,             views, seed, split; a damaged shard is
           ``inrs/build.json``                     refitted
train      ``runs/FAMILY/seedS/``: ``*.pt``,       same data, seed and training options (the
           ``outputs.safetensors``,                run key); an interrupted run resumes from
           **``result.json``**                     its last checkpoint with the same key only
cka        **``cka.json``**                        same runs (keys, ``best.pt`` sha256), CKA
                                                   options; the models are read back from
                                                   their verified ``best.pt``
report     ``results.json``, ``report.md``,        always rewritten (seconds)
           ``*.png``
=========  ======================================  =======================================

``--out`` is locked while a run works in it (``--out/.gmn.lock``, :func:`gmn.files.folder_lock`):
a second run on the same folder stops at once, naming the process that holds it.

``timings.json`` records every invocation's wall time per stage (``timings.py``); the report
gives their sums. The console names each training run as it starts (``[k/K] family seed
S``) and ends it with one line: its test and best validation accuracy, epochs and time.
"""

from __future__ import annotations

import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

from gmn.files import (
    IntegrityError,
    describe_os_error,
    folder_lock,
    read_json,
    remove_stale_temporaries,
    write_json,
)

from .assemble import assemble_results
from .cache import save_text
from .config import BenchmarkConfig
from .data import prepare_data
from .plots import plot_accuracy_overlap, plot_cka_figures
from .procrustes_report import procrustes_study, render_procrustes_section
from .report import render_report
from .similarity import cka_statistics, cka_study
from .timings import InvocationTimes
from .training import BEST, train_family_seed, trained_model

PACKAGES = ("torch", "torch_geometric", "numpy", "scikit-learn", "safetensors", "gmn")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _check_out(config: BenchmarkConfig, out: Path) -> None:
    if config.resume:
        return
    try:
        used = out.exists() and any(out.iterdir())
    except OSError as err:
        raise describe_os_error(err, "read", out) from err
    if used:
        raise FileExistsError(
            f"--out {out} already holds a run and --no-resume forbids reusing it; "
            "choose another --out (nothing is deleted)"
        )


def _cached_cka(path: Path, key: dict, config: BenchmarkConfig) -> dict | None:
    """The CKA study of ``path`` if it was made from these runs' checkpoints (their sha256
    are in ``key``) and its content matches its hash; a damaged file is named and
    recomputed."""
    if not path.exists():
        return None
    try:
        cached = read_json(path)
    except IntegrityError as err:
        if not config.resume:
            raise
        warnings.warn(f"{err}; computing the CKA stage again", stacklevel=2)
        return None
    return cached["cka"] if cached.get("key") == key else None


def run_record(config: BenchmarkConfig, command: str | None, module: str) -> dict:
    """The first entries of ``results.json``: the command (default: ``python -m module``), the
    options, the package versions, the seeds and the families."""
    return {
        "command": command or shlex.join([sys.executable, "-m", module]),
        "config": config.to_dict(),
        "versions": package_versions(),
        "seeds": config.seed_list,
        "families": list(config.families),
    }


def in_locked_out(config: BenchmarkConfig, command: str | None,
                  stages: Callable[[Path, InvocationTimes], dict]) -> dict:
    """``stages(out, clock)`` in ``--out``, created and locked for this run (refused with
    --no-resume when it holds a run), cleared of stale temporary files, timed per stage by
    ``clock``; sets ``--threads``.

    Raises:
        gmn.files.FolderLockedError: another run holds ``--out``, naming it.
        OSError: ``--out`` cannot be written (read-only, full, a name too long …), naming
            the path and what to do.
    """
    out = Path(config.out)
    _check_out(config, out)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    with folder_lock(out, command):
        remove_stale_temporaries(out)
        with InvocationTimes(out) as clock:
            return stages(out, clock)


def _run_line(result: dict) -> str:
    """One classification run's outcome in one line: test and best validation accuracy,
    epochs, time."""
    return (
        f"test {100 * result['test_accuracy']:.1f}%, best val "
        f"{100 * result['best_val_accuracy']:.1f}% at epoch {result['best_epoch']}/"
        f"{result['key']['epochs']}, trained in {result['train_seconds']:.0f} s"
    )


def train_runs(config: BenchmarkConfig, out: Path, train: Callable, clock: InvocationTimes,
               describe: Callable[[dict], str] = _run_line,
               ) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Stage "train": ``train(family, seed, run_dir) -> (result, outputs, reused)`` for every
    family and seed, each named on the console as it starts (``[k/K] family seed S``) and
    ended with ``describe(result)``, each timed by ``clock``. Returns family -> per-seed
    results and outputs."""
    runs: dict[str, list[dict]] = {}
    outputs: dict[str, list[dict]] = {}
    clock.begin("train")
    number, total = 0, len(config.families) * len(config.seed_list)
    for family in config.families:
        for seed in config.seed_list:
            run_start, number = time.perf_counter(), number + 1
            name = f"[{number}/{total}] {family} seed {seed}"
            print(name, flush=True)
            run_dir = out / "runs" / family / f"seed{seed}"
            result, tensors, reused = train(family, seed, run_dir)
            print(f"{name}: {'reused: ' if reused else ''}{describe(result)}", flush=True)
            runs.setdefault(family, []).append(result)
            outputs.setdefault(family, []).append(tensors)
            clock.add(f"train/{family}/seed{seed}", time.perf_counter() - run_start)
    return runs, outputs


def cka_stage(config: BenchmarkConfig, out: Path, runs: dict[str, list[dict]],
              model: Callable, options: tuple[str, ...], n_test: int) -> dict:
    """Stage "cka" on the trained ``runs`` (family -> per-seed results): read from
    ``cka.json`` when it was made from the same runs' checkpoints and CKA ``options`` (names
    of config fields), else computed on ``model(family, run_dir, result)`` (a
    ``TrainedModel``) and stored. ``n_test``: the number of test samples."""
    cka_key = {
        "runs": {f: [r["key"] for r in rs] for f, rs in runs.items()},
        "checkpoints": {f: [{BEST: r["files"][BEST]} for r in rs] for f, rs in runs.items()},
        **config.key(*options),
    }
    cka = _cached_cka(out / "cka.json", cka_key, config)
    if cka is not None:  # its summary statistics as this version computes them
        cka_statistics(cka, config, n_test)
    else:
        models = {
            family: [model(family, out / "runs" / family / f"seed{seed}", r)
                     for seed, r in zip(config.seed_list, rs)]
            for family, rs in runs.items()
        }
        cka = cka_study(models, config)
        write_json({"key": cka_key, "cka": cka}, out / "cka.json")
    return cka


def record_timings(results: dict, clock: InvocationTimes) -> None:
    """Ends the clock; adds to ``results`` the seconds per stage summed over every
    invocation (``timings``) and each invocation's start, status and seconds."""
    clock.end()
    results["timings"] = clock.summed()
    results["invocations"] = [
        {"started": i["started"], "status": i["status"], "seconds": i["seconds"]["total"]}
        for i in clock.invocations
    ]


def run_benchmark(config: BenchmarkConfig, command: str | None = None) -> dict:
    """Run (or resume) the whole benchmark; returns the ``results.json`` dictionary
    (raises as :func:`in_locked_out`)."""
    return in_locked_out(config, command,
                         lambda out, clock: _run_stages(config, command, out, clock))


def _run_stages(config: BenchmarkConfig, command: str | None, out: Path,
                clock: InvocationTimes) -> dict:
    clock.begin("data")
    data = prepare_data(config, out)

    runs, outputs = train_runs(
        config, out, lambda family, seed, run_dir: train_family_seed(
            family, seed, data, config, run_dir), clock)

    clock.begin("cka")
    cka = cka_stage(config, out, runs,
                    lambda family, run_dir, result: trained_model(family, data, config, run_dir,
                                                                  result),
                    ("cka_permutations", "cka_permutation_samples", "procrustes"),
                    len(data.split["test"]))
    if config.procrustes:
        procrustes = procrustes_study(cka)

    clock.begin("analysis")
    test_labels = data.labels[data.split["test"]]
    results = {
        **run_record(config, command, "benchmarks.inr_classification"),
        "data": {
            "name": data.name,
            "setting": data.setting,
            "description": data.description,
            "inr_description": data.inr_description,
            "n_train": len(data.split["train"]),
            "n_val": len(data.split["val"]),
            "n_test": len(data.split["test"]),
            "num_classes": data.num_classes,
            "psnr_db": None
            if data.psnr.isnan().all()
            else {"mean": float(data.psnr.mean()), "min": float(data.psnr.min())},
        },
        "runs": runs,
        **assemble_results(runs, outputs, test_labels, cka),
        "cka": cka,
    }
    if config.procrustes:
        results["procrustes"] = procrustes
    results["figures"] = {
        "accuracy": plot_accuracy_overlap(results, out / "accuracy_overlap.png").name
    }
    results["figures"].update(plot_cka_figures(cka, out))
    record_timings(results, clock)
    write_json(results, out / "results.json")
    section = render_procrustes_section(cka, procrustes) if config.procrustes else ""
    save_text(render_report(results) + section, out / "report.md")
    return results
