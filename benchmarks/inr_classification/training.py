"""Stage "train": one (family, seed) run trained and tested once at its best-validation
epoch. Its outputs are one cache unit under ``--out/runs/FAMILY/seedS``; the CKA stage
loads the tested model back from its verified checkpoint (:func:`trained_model`).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, TensorDataset

from gmn.files import IntegrityError, clear_folder, read_json, write_json
from gmn.train import TrainConfig, Trainer, load_checkpoint
from gmn.train.config import describe_changes

from .cache import digests, load_tensors, save_tensors, verify_digests
from .config import GMN_FAMILIES, BenchmarkConfig
from .data import BenchmarkData
from .families import FamilyPlan, plan_family
from .gmn_family import split_gmn_config
from .probes import TrainedModel

OUTPUTS = "outputs.safetensors"  # test probabilities and predictions
OUTPUT_NAMES = ["probabilities", "predictions"]
RESULT = "result.json"  # accuracies, epochs, timings, the run's cache key, files' sha256
BEST = "best.pt"  # the best-validation checkpoint: the model tested, then probed for CKA
# Keys of runs cached by earlier versions that no longer decide a run's numbers: ignored
# when a cached run's key is compared (probe_samples: the CKA stage streams every sample;
# gmn_config as typed: a GMN's key holds its resolved options, and it never decided an image
# model's run).
RETIRED_KEYS = ("probe_samples", "gmn_config")


def _datasets(data: BenchmarkData, inputs: str) -> dict[str, Dataset]:
    """Train/val/test ``(inputs, label)`` datasets. Parameter families train on every INR
    view of the training images (``data.train_set``) and are validated and tested on view 0."""
    labels, split = data.labels, data.split
    source = data.images if inputs == "images" else data.params
    sets = {k: TensorDataset(source[idx], labels[idx]) for k, idx in split.items()}
    if inputs == "params" and data.train_set is not None:
        sets["train"] = data.train_set
    return sets


def run_key(family: str, seed: int, config: BenchmarkConfig, data: BenchmarkData,
            plan: FamilyPlan | None = None) -> dict:
    """Everything that decides this run's numbers (a cached run must match it): the model's
    architecture (from ``plan``, made when None) and, for a GMN, its resolved options
    (defaults included), so a run cached before a default changed is not reused, while
    ``--gmn-config`` spelling out a default, or changing for the image models, reuses it."""
    plan = plan or plan_family(family, data, config)
    key = {
        "family": family,
        "seed": seed,
        "data": data.key,
        "epochs": plan.epochs,
        **config.key("batch_size", "lr"),
        "architecture": plan.architecture,
    }
    if family in GMN_FAMILIES:
        model_options, train_options = split_gmn_config(config.gmn_config, family)
        train_options.pop("epochs")  # the run's own epochs are above
        key["gmn_options"] = {**model_options, **train_options}
    if plan.inputs == "params" and config.stream_shards is not None:  # the training order
        key["stream_shards"] = config.stream_shards
    return json.loads(json.dumps(key))


def _upgraded_key(cached: dict) -> dict:
    """A run key in today's form. Keys written before ``--epochs`` reached the GMN families
    held ``--epochs`` at the top and a GMN's own epochs in ``gmn_options`` (``None``: the
    top one); the run trained the latter, which is today's top ``epochs``."""
    options = cached.get("gmn_options")
    if not isinstance(options, dict) or "epochs" not in options:
        return cached
    options = dict(options)
    own = options.pop("epochs")
    return {**cached, "epochs": cached["epochs"] if own is None else own, "gmn_options": options}


def train_family_seed(
    family: str, seed: int, data: BenchmarkData, config: BenchmarkConfig, run_dir: Path
) -> tuple[dict, dict[str, torch.Tensor], bool]:
    """Train and test one run, or load it when ``run_dir`` already holds it.

    Returns:
        (result, outputs, reused): ``result`` has ``test_accuracy``, ``best_val_accuracy``,
        ``best_epoch``, ``epochs_completed``, ``train_seconds``, ``files`` (sha256 of the
        outputs and checkpoints) …; ``outputs`` has ``probabilities`` [n_test, C] and
        ``predictions`` [n_test]; ``reused`` is True when the finished run was read back.
    """
    plan = plan_family(family, data, config)
    key = run_key(family, seed, config, data, plan)
    return cached_or_trained(run_dir, key, config, OUTPUT_NAMES,
                             lambda: _train(family, seed, data, config, run_dir, plan, key))


def cached_or_trained(run_dir: Path, key: dict, config: BenchmarkConfig,
                      output_names: list[str], train: Callable[[], tuple[dict, dict]]
                      ) -> tuple[dict, dict[str, torch.Tensor], bool]:
    """(result, outputs, reused): the run cached in ``run_dir`` under ``key`` (its
    ``result.json`` and the tensors ``output_names`` of its outputs, ``reused`` True), or
    ``train()``'s, trained again from scratch when a checkpoint turns out damaged."""
    cached = _cached_run(run_dir, key, config, output_names)
    if cached is not None:
        return (*cached, True)
    try:
        return (*train(), False)
    except IntegrityError as err:  # a damaged or missing checkpoint: this run is trained again
        _discard(run_dir, err, config)
        return (*train(), False)


def _cached_run(run_dir: Path, key: dict, config: BenchmarkConfig,
                output_names: list[str] = OUTPUT_NAMES):
    """The finished run in ``run_dir`` after checking its record, its key and the sha256 of
    every file it lists; None when there is none or a file is damaged (then discarded)."""
    if not (run_dir / RESULT).exists():
        return None
    try:
        result = read_json(run_dir / RESULT)
        cached = {k: v for k, v in _upgraded_key(result["key"]).items() if k not in RETIRED_KEYS}
        if cached != key:
            raise ValueError(
                f"{run_dir} holds a run with other settings ({describe_changes(cached, key)}"
                "); use another --out, or the settings of that run"
            )
        verify_digests(run_dir, result["files"], run_dir / RESULT)
        outputs = load_tensors(run_dir / OUTPUTS, output_names)
    except (IntegrityError, FileNotFoundError) as err:
        _discard(run_dir, err, config, keep_checkpoints=True)
        return None
    return {**result, "key": key}, outputs


def trained_model(family: str, data: BenchmarkData, config: BenchmarkConfig, run_dir: Path,
                  result: dict) -> TrainedModel:
    """The run's tested model, loaded from ``best.pt`` after checking it against the sha256
    that ``result.json`` lists (and the hash it carries), with its probed layers and its
    test set (raises ``IntegrityError`` naming a changed file)."""
    plan = plan_family(family, data, config)
    inputs = data.images if plan.inputs == "images" else data.params
    test = Subset(TensorDataset(inputs, data.labels), data.split["test"].tolist())
    return tested_model(plan, run_dir, result, config.device, test)


def tested_model(plan: FamilyPlan, run_dir: Path, result: dict, device: str,
                 test) -> TrainedModel:
    """``plan``'s model loaded from the run's ``best.pt`` once its sha256 matches the one
    ``result`` lists, with its probed layers and the ``test`` set it is probed on."""
    verify_digests(run_dir, {BEST: result["files"][BEST]}, run_dir / RESULT)
    model = plan.build().to(device)
    model.load_state_dict(load_checkpoint(run_dir / BEST)["model"])
    return TrainedModel(model.eval(), plan.probe_layers(model), test)


def _discard(run_dir: Path, err: Exception, config: BenchmarkConfig,
             keep_checkpoints: bool = False) -> None:
    """Say which file is bad and delete what must be made again (all of ``run_dir``, or only
    its result and outputs when the checkpoints are to be reused); stop with --no-resume."""
    if not config.resume:
        raise err
    warnings.warn(f"{err}; computing run {run_dir} again", stacklevel=3)
    if keep_checkpoints:
        for name in (RESULT, OUTPUTS):
            (run_dir / name).unlink(missing_ok=True)
    else:
        clear_folder(run_dir)  # a symbolic link to the run folder stays one


def _train(family: str, seed: int, data: BenchmarkData, config: BenchmarkConfig,
           run_dir: Path, plan: FamilyPlan, key: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """Train (or resume) and test one classifier; store its outputs, then its record."""
    options = dict(plan.train_options)
    loss_fn = functools.partial(F.cross_entropy,
                                label_smoothing=options.pop("label_smoothing", 0.0))

    def record(test: dict) -> tuple[dict, dict]:
        outputs = {
            "probabilities": test["probabilities"].float(),
            "predictions": test["predictions"].long(),
        }
        return outputs, {"test_accuracy": test["accuracy"]}

    return fit_and_record(family, seed, config, run_dir, plan, key, _datasets(data, plan.inputs),
                          options, loss_fn, "val_accuracy", record)


def fit_and_record(family: str, seed: int, config: BenchmarkConfig, run_dir: Path,
                   plan: FamilyPlan, key: dict, sets: dict, options: dict,
                   loss_fn: Callable, monitor: str, record: Callable[[dict], tuple[dict, dict]]
                   ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Train (or resume) ``plan``'s model on ``sets`` (train/val/test datasets), keep the
    best checkpoint by ``monitor``, test it once; ``record(test result)`` gives the tensors
    to store (``outputs.safetensors``) and the metrics of the run's record (``result.json``,
    written last, with every file's sha256).

    ``options`` (over ``--batch-size``/``--lr``) are ``TrainConfig`` fields plus
    ``warmup_fraction`` (of all updates); ``plan.epochs`` is how long it trains."""
    options = {"batch_size": config.batch_size, "lr": config.lr, **options}
    epochs = plan.epochs
    if "warmup_fraction" in options:
        steps = epochs * -(-len(sets["train"]) // options["batch_size"])
        options["warmup_steps"] = int(options.pop("warmup_fraction") * steps)
    if plan.inputs == "params" and config.stream_shards is not None:
        options["shuffle_window"] = config.stream_shards
    train_config = TrainConfig(
        run_dir=str(run_dir),
        seed=seed,
        epochs=epochs,
        monitor=monitor,
        resume=config.resume,
        progress=config.progress,
        print_summary=False,  # the pipeline prints one line per run
        device=config.device,
        run_key=key,
        **options,
    )
    trainer = Trainer(
        plan.build,
        sets["train"],
        sets["val"],
        sets["test"],
        config=train_config,
        loss_fn=loss_fn,
        transform=plan.transform,
    )
    summary = trainer.fit()
    outputs, metrics = record(trainer.test_result)
    save_tensors(outputs, run_dir / OUTPUTS)
    result = {
        "key": key,
        "family": family,
        "seed": seed,
        **metrics,
        f"best_{monitor}": summary[f"best_{monitor}"],
        "best_epoch": summary["best_epoch"],
        "epochs_completed": summary["epochs_completed"],
        "train_seconds": summary["train_seconds"],
        "samples_per_second": summary["samples_per_second"],
        "train_options": options,
    }
    checkpoints = sorted(p.name for p in run_dir.glob("*.pt"))
    result["files"] = digests(run_dir, [OUTPUTS, *checkpoints])
    write_json(result, run_dir / RESULT)
    return result, outputs
