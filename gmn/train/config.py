"""`TrainConfig`: every setting of a training run, saved with its checkpoints, and
`warmup_cosine`, the learning-rate schedule it configures (linear warmup, cosine decay)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

PRECISIONS = ("fp32", "bf16", "fp16")

# Settings that may change between a run and its resumption without changing results.
RUNTIME_ONLY = (
    "resume",
    "progress",
    "print_summary",
    "tensorboard",
    "num_workers",
    "log_every_steps",
    "checkpoint_every_steps",
    "device",
    "run_dir",
    "find_unused_parameters",
)


@dataclass
class TrainConfig:
    """Settings of :class:`gmn.train.Trainer`.

    ``batch_size`` is per process and is used only for datasets; a ``DataLoader`` brings
    its own. Give ``epochs``, ``max_steps`` or both (training stops at whichever comes
    first). ``monitor`` picks the best checkpoint: ``"val_loss"`` (lower is better) or
    ``"val_accuracy"`` (higher is better). ``patience`` epochs without improvement stop
    the run early. ``print_summary`` prints the run's summary (always saved to
    ``summary.json``) when ``fit`` ends. ``find_unused_parameters`` is passed to
    ``DistributedDataParallel`` (needed when some parameters get no gradient in a step).
    ``shuffle_window``: shuffle the training set within windows of that many of its blocks
    (a dataset with ``shuffle_blocks()``, e.g. :class:`gmn.data.dataset.ParameterRows`
    streaming from shards) instead of over the whole set (None).

    ``run_key`` holds, as JSON data, whatever else decides the run's numbers: the model's
    and the loss's options, the data (e.g. its split and content hash). It is saved in every
    checkpoint, and resuming with a different one is refused, naming what changed, like any
    other setting outside ``RUNTIME_ONLY``.
    """

    run_dir: str = "runs/default"
    seed: int = 0
    epochs: int | None = 10
    max_steps: int | None = None
    batch_size: int | None = 32
    eval_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    precision: str = "fp32"
    compile: bool = False
    find_unused_parameters: bool = False
    monitor: str = "val_loss"
    patience: int | None = None
    checkpoint_every_steps: int | None = None
    log_every_steps: int = 50
    resume: bool = False
    progress: bool = True
    print_summary: bool = True
    tensorboard: bool | None = None
    num_workers: int = 0
    device: str | None = None
    shuffle_window: int | None = None
    run_key: dict | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs, max_steps or both")
        for name in ("epochs", "max_steps", "patience", "checkpoint_every_steps",
                     "shuffle_window"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_accuracy', got {self.monitor!r}")

    @property
    def monitor_mode(self) -> str:
        return "max" if self.monitor == "val_accuracy" else "min"


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Multiply the base rate by ``(s+1)/warmup_steps`` for the first ``warmup_steps``
    updates, then follow a cosine from 1 down to ``min_lr_ratio`` at ``total_steps``.

    Step the scheduler once per optimiser update.
    """
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} must lie in [0, total_steps={total_steps}]")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def describe_changes(old: dict, new: dict, prefix: str = "") -> str:
    """The entries that differ between two nested dicts: ``"epochs: 3 -> 4, data.split: …"``
    (values as JSON, cut at 60 characters)."""
    changes = []
    for name in sorted(set(old) | set(new), key=str):
        before, after = old.get(name, "(unset)"), new.get(name, "(unset)")
        if isinstance(before, dict) and isinstance(after, dict):
            inner = describe_changes(before, after, f"{prefix}{name}.")
            changes += [inner] if inner else []
        elif before != after:
            changes.append(f"{prefix}{name}: {json.dumps(before, default=str)[:60]} -> "
                           f"{json.dumps(after, default=str)[:60]}")
    return ", ".join(changes)
