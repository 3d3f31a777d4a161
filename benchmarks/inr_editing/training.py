"""Stage "train" of the editing benchmark: one (family, seed) run, trained with the
classification benchmark's machinery (``fit_and_record``: the trainer, atomic checkpoints,
best-validation reload, a record with every file's sha256, reuse when its key matches).

Every model outputs images; the loss is their mean squared error against the dilated
images, and the best checkpoint is the one of lowest validation loss. A run stores each test
image's MSE and its first ``SHOWN`` edited test images (the report's picture grid).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

from benchmarks.inr_classification.probes import TrainedModel
from benchmarks.inr_classification.training import (
    cached_or_trained,
    fit_and_record,
    tested_model,
)

from .config import EditingConfig
from .data import EditingData
from .families import plan_family

OUTPUT_NAMES = ["mse", "images"]
SHOWN = 10  # edited test images kept per run


def per_image_mse(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] twice -> [N], each image's mean squared error."""
    return (images.float() - targets.float()).square().flatten(1).mean(1)


def _inputs(data: EditingData, kind: str) -> torch.Tensor:
    return data.inputs if kind == "images" else data.inrs.params


def datasets(data: EditingData, kind: str) -> dict[str, TensorDataset]:
    """Train/val/test ``(input, target image)`` datasets; ``kind`` is ``"images"`` (the
    rendered INR) or ``"params"`` (its standardised parameters)."""
    inputs = _inputs(data, kind)
    return {k: TensorDataset(inputs[idx], data.targets[idx]) for k, idx in
            data.inrs.split.items()}


def run_key(family: str, seed: int, config: EditingConfig, data: EditingData, plan) -> dict:
    """Everything that decides a run's numbers (a cached run must match it)."""
    key = {"task": "dilation", "family": family, "seed": seed, "data": data.key,
           "epochs": plan.epochs, **config.key("batch_size", "lr"),
           "architecture": plan.architecture}
    return json.loads(json.dumps(key))


def no_edit(data: EditingData) -> tuple[dict, dict[str, torch.Tensor]]:
    """The baseline that changes nothing: the input INR's rendering against the target."""
    test = data.inrs.split["test"]
    mse = per_image_mse(data.inputs[test], data.targets[test])
    return ({"family": "no_edit", "test_mse": float(mse.mean()), "best_epoch": None},
            {"mse": mse, "images": data.inputs[test][:SHOWN]})


def train_family_seed(family: str, seed: int, data: EditingData, config: EditingConfig,
                      run_dir: Path) -> tuple[dict, dict[str, torch.Tensor], bool]:
    """Train and test one run, or load it when ``run_dir`` already holds it. Returns
    (result with ``test_mse``, ``best_val_loss``, ``best_epoch``…, outputs ``mse`` [n_test]
    and ``images`` [SHOWN, C, H, W], reused)."""
    plan = plan_family(family, data, config)
    key = run_key(family, seed, config, data, plan)
    sets = datasets(data, plan.inputs)
    targets = sets["test"].tensors[1]

    def record(test: dict) -> tuple[dict, dict]:
        mse = per_image_mse(test["outputs"], targets)
        return ({"mse": mse, "images": test["outputs"][:SHOWN].float()},
                {"test_mse": float(mse.mean())})

    return cached_or_trained(run_dir, key, config, OUTPUT_NAMES, lambda: fit_and_record(
        family, seed, config, run_dir, plan, key, sets, plan.train_options, F.mse_loss,
        "val_loss", record))


def trained_model(family: str, data: EditingData, config: EditingConfig, run_dir: Path,
                  result: dict) -> TrainedModel:
    """The run's tested model (checked against its record), its probed layers, its test set."""
    plan = plan_family(family, data, config)
    test = Subset(TensorDataset(_inputs(data, plan.inputs), data.targets),
                  data.inrs.split["test"].tolist())
    return tested_model(plan, run_dir, result, config.device, test)
