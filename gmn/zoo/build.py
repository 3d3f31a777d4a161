"""Build a :class:`~gmn.zoo.store.ModelZoo` of small CNNs trained on an image set.

Sampling follows Unterthiner et al. 2020 (Small CNN Zoo): every model draws its training
hyper-parameters (Adam learning rate and L2 weight decay log-uniform, initial weight scale
log-uniform, dropout, fraction of the training set, epochs); unlike their one-architecture zoo,
models are spread over ``architectures`` sampled architectures (depth 2–4, width, kernel,
activation, BatchNorm, residual connections), the first one being a fixed reference
architecture that holds ``reference_share`` of the models (the homogeneous family).

The plan (architectures, hyper-parameters, jobs) depends only on the config. Job k trains up
to ``group_size`` models of one architecture at once (:mod:`gmn.zoo.grouped_cnn`) and writes
``shard-k``; a shard on disk is complete (written under a temporary name, then renamed), so a
killed build resumes at the next missing shard, and the same config gives the same zoo bit for
bit on the CPU. The manifest is written last, from the shards' headers.
"""

from __future__ import annotations

import math
import random
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gmn.data.storage import (
    IntegrityError,
    check_build_record,
    read_shard_metadata,
    shard_name,
    verify_shard,
    write_shard,
)
from gmn.files import remove_stale_temporaries
from gmn.seeding import derive_seed
from gmn.zoo.grouped_cnn import Hyper, train_group
from gmn.zoo.specs import architecture_id
from gmn.zoo.store import MODEL_ZOO, ModelZoo, write_zoo_manifest

REFERENCE = {"channels": [8, 8, 8], "kernel": 3, "activation": "relu", "batchnorm": False,
             "residual": False}
SPACE = {"depth": (2, 3, 4), "width": (4, 6, 8, 12), "kernel": (3, 5),
         "activation": ("relu", "tanh", "gelu", "silu"), "batchnorm": (False, True),
         "residual": (False, True)}


@dataclass
class ZooConfig:
    """What to build. ``dataset``: ``"digits"`` or ``"mnist"`` (with ``root``); ``size``
    resizes the images; the first ``train_images`` of a seeded shuffle train, the rest test."""

    dataset: str = "digits"
    root: str | None = None
    size: int | None = None
    models: int = 1200
    architectures: int = 16
    reference_share: float = 0.4
    group_size: int = 50
    train_images: int = 1000
    batch_size: int = 64
    max_epochs: int = 8
    stride: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.architectures < 1 or self.models < self.architectures:
            raise ValueError(f"need 1 <= architectures <= models, got {self.architectures} "
                             f"architectures for {self.models} models")
        if not 0 < self.reference_share <= 1:
            raise ValueError(f"reference_share must be in (0, 1], got {self.reference_share}")


def sample_architectures(config: ZooConfig) -> list[dict]:
    """The reference architecture, then ``architectures - 1`` distinct sampled ones."""
    rng = random.Random(config.seed)
    base = {"family": "zoo_cnn", "stride": config.stride}
    specs = [dict(base, **REFERENCE)]
    seen = {architecture_id(specs[0])}
    while len(specs) < config.architectures:
        width = rng.choice(SPACE["width"])
        spec = dict(base, channels=[width] * rng.choice(SPACE["depth"]),
                    kernel=rng.choice(SPACE["kernel"]),
                    activation=rng.choice(SPACE["activation"]),
                    batchnorm=rng.choice(SPACE["batchnorm"]),
                    residual=rng.choice(SPACE["residual"]))
        if architecture_id(spec) not in seen:
            seen.add(architecture_id(spec))
            specs.append(spec)
    return specs


def sample_hyper(rng: random.Random, max_epochs: int) -> Hyper:
    """One model's hyper-parameters (ranges after Unterthiner et al., adapted to Adam)."""
    log_uniform = lambda low, high: math.exp(rng.uniform(math.log(low), math.log(high)))  # noqa: E731
    return Hyper(lr=log_uniform(3e-4, 3e-2), weight_decay=log_uniform(1e-6, 1e-2),
                 init_scale=log_uniform(0.2, 3.0), dropout=rng.uniform(0.0, 0.5),
                 train_fraction=rng.uniform(0.1, 1.0), epochs=rng.randint(2, max_epochs))


def plan_jobs(config: ZooConfig) -> tuple[dict[str, dict], list[dict]]:
    """(``{architecture name: spec}``, jobs ``[{"shard", "architecture", "models",
    "hypers", "seed"}]``), a function of ``config`` only."""
    specs = sample_architectures(config)
    names = {f"arch{i:02d}": spec for i, spec in enumerate(specs)}
    reference = round(config.reference_share * config.models) if len(specs) > 1 else config.models
    rest, others = config.models - reference, len(specs) - 1
    counts = [reference] + [rest // others + (i < rest % others) for i in range(others)]
    rng = random.Random(config.seed + 1)
    jobs, next_id = [], 0
    for name, count in zip(names, counts):
        ids = list(range(next_id, next_id + count))
        next_id += count
        for start in range(0, count, config.group_size):
            members = ids[start:start + config.group_size]
            jobs.append({"shard": shard_name(len(jobs)), "architecture": name, "models": members,
                         "hypers": [asdict(sample_hyper(rng, config.max_epochs))
                                    for _ in members],
                         "seed": derive_seed(config.seed, len(jobs))})
    return names, jobs


def load_split_images(config: ZooConfig):
    """((train images, labels), (test images, labels)), standardised with train statistics."""
    from gmn.data.sources import load_images

    images = load_images(config.dataset, config.root, size=config.size, download=False)
    if config.train_images >= len(images):
        raise ValueError(f"train_images={config.train_images} leaves no test images "
                         f"({len(images)} in {config.dataset})")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
    x, y = images.images[order], images.labels[order]
    train, test = slice(0, config.train_images), slice(config.train_images, None)
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return (x[train], y[train]), (x[test], y[test])


def _run_job(job: dict, spec: dict, config: ZooConfig, data, threads: int) -> tuple[dict, list]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        hypers = [Hyper(**h) for h in job["hypers"]]
        params, history = train_group(spec, hypers, *data, seed=job["seed"],
                                      batch_size=config.batch_size)
    finally:
        torch.set_num_threads(previous)
    records = []
    for row, (model_id, hyper) in enumerate(zip(job["models"], hypers)):
        accuracy = history[row, :hyper.epochs].tolist()
        finite = all(bool(torch.isfinite(v[row]).all()) for v in params.values()
                     if v.is_floating_point())
        records.append({"id": model_id, "architecture": job["architecture"],
                        "shard": job["shard"], "row": row, "hyper": asdict(hyper),
                        "accuracy": accuracy, "test_accuracy": accuracy[-1],
                        "epochs": hyper.epochs, "finite": finite})
    return params, records


def _write_job(folder: Path, job: dict, params: dict, records: list) -> None:
    write_shard(folder / job["shard"], params, {"job": job, "models": records}, MODEL_ZOO)


def build_zoo(folder, config: ZooConfig, workers: int = 1, threads: int = 1,
              progress: bool = True) -> ModelZoo:
    """Build (or finish building) the zoo of ``config`` in ``folder``; returns it, verified.

    ``workers`` processes train jobs in parallel, each with ``threads`` torch threads (the
    result does not depend on either).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_build_record(folder, asdict(config))
    remove_stale_temporaries(folder)  # of shards a killed build was writing
    names, jobs = plan_jobs(config)
    for job in jobs:
        _check_existing_shard(folder / job["shard"], job)
    todo = [job for job in jobs if not (folder / job["shard"]).exists()]
    data = load_split_images(config) if todo else None
    bar = tqdm(total=config.models, initial=config.models - sum(len(j["models"]) for j in todo),
               desc="training CNNs", unit="cnn", disable=not progress)
    if workers <= 1:
        for job in todo:
            _write_job(folder, job, *_run_job(job, names[job["architecture"]], config, data,
                                              threads))
            bar.update(len(job["models"]))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_job, job, names[job["architecture"]], config, data,
                                   threads): job for job in todo}
            for future in as_completed(futures):
                job = futures[future]
                _write_job(folder, job, *future.result())
                bar.update(len(job["models"]))
    bar.close()
    _write_manifest(folder, config, names, jobs)
    return ModelZoo(folder)


def _check_existing_shard(path: Path, job: dict) -> None:
    """Keep a shard of an earlier build only when its content matches the hash it carries
    (else it is named and deleted, to be trained again); one of another plan is refused."""
    if not path.exists():
        return
    try:
        verify_shard(path)
    except IntegrityError as err:
        warnings.warn(f"{err}; training {path.name} again", stacklevel=3)
        path.unlink()
        return
    if read_shard_metadata(path, MODEL_ZOO).get("job") != job:
        raise IntegrityError(f"{path} holds another job than this config's plan")


def _write_manifest(folder: Path, config: ZooConfig, names: dict, jobs: list[dict]) -> None:
    write_zoo_manifest(folder, names, [{"file": j["shard"], "architecture": j["architecture"]}
                                       for j in jobs],
                       {"builder": "gmn.zoo.build", "config": asdict(config)})

