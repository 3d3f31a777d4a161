"""`Trainer`: one training loop for every model family (GMNs on graphs, MLPs/CNNs on images).

Seeded, resumable from atomic checkpoints, mixed precision, and the same code under
``python`` (one process) and ``torchrun`` (DistributedDataParallel).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import get_total_norm
from tqdm.auto import tqdm

from gmn import GMNError
from gmn.batches import move_to, split_batch
from gmn.files import folder_lock, remove_stale_temporaries, write_json
from gmn.seeding import capture_rng_state, derive_seed, restore_rng_state, seed_everything
from gmn.train.config import RUNTIME_ONLY, TrainConfig, describe_changes, warmup_cosine
from gmn.train.distributed import (
    all_reduce_sum,
    broadcast_module,
    broadcast_object,
    gather_objects,
    init_distributed,
)
from gmn.train.evaluation import evaluate
from gmn.train.loaders import EpochSampler, LoaderSpec, shard_indices
from gmn.train.run_folder import (
    CheckpointError,
    MetricLog,
    load_checkpoint,
    save_atomic,
)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(GMNError, FloatingPointError):
    """The training loss, a gradient or a parameter became NaN or infinite; the run stopped
    without saving that step."""


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint (plain values only)."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    step: int = 0  # optimiser updates so far
    loss_sum: float = 0.0  # sum of loss·samples over the current epoch, all ranks
    sample_count: float = 0.0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    finished: bool = False


class Trainer:
    """Train, validate each epoch, keep the best checkpoint, test once.

    Args:
        model: an ``nn.Module``, or a function returning one (it is then built after
            seeding, so ``config.seed`` fixes the initialisation).
        train, val, test: datasets or ``DataLoader``s (the trainer keeps their batch size,
            collate function and workers but imposes its own seeded order).
        loss_fn: ``loss_fn(outputs, targets) -> scalar``, mean over the batch.
        config: a :class:`TrainConfig`.
        optimizer: defaults to AdamW(``config.lr``, ``config.weight_decay``).
        scheduler: ``scheduler(optimizer, total_steps) -> LRScheduler`` stepped per
            update; defaults to linear warmup + cosine (:func:`warmup_cosine`).
        split_batch: ``batch -> (inputs, targets)``; the default handles ``(x, y)`` pairs
            and PyG batches (``targets = batch.y``). The model is called as ``model(inputs)``.
        transform: ``transform(batch, generator) -> batch`` applied to each training batch
            on the device (e.g. weight-space augmentation); ``generator`` is a
            ``torch.Generator`` on the device seeded by (seed, rank, step), so a resumed
            run draws the same augmentations.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module],
        train,
        val=None,
        test=None,
        *,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        config: TrainConfig | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Callable | None = None,
        split_batch: Callable = split_batch,
        transform: Callable | None = None,
    ):
        self.config = c = config or TrainConfig()
        self.dist, self.device = init_distributed(c.device)
        seed_everything(c.seed)
        self.model = model() if not isinstance(model, nn.Module) else model
        self.model.to(self.device)
        broadcast_module(self.model)

        self.loss_fn, self.split_batch, self.transform = loss_fn, split_batch, transform
        self.train_spec = LoaderSpec.of(train, c.batch_size, c.num_workers)
        self.eval_specs = {
            name: LoaderSpec.of(data, c.eval_batch_size or c.batch_size, c.num_workers)
            for name, data in (("val", val), ("test", test))
            if data is not None
        }
        for name, spec in self.eval_specs.items():
            if len(spec) < self.dist.world_size:
                raise ValueError(f"{name} set has {len(spec)} samples, fewer than the ranks")
        blocks = None
        if c.shuffle_window is not None:
            if not hasattr(self.train_spec.dataset, "shuffle_blocks"):
                raise ValueError(
                    "shuffle_window needs a training dataset with shuffle_blocks() (e.g. "
                    "gmn.data.dataset.ParameterRows); this one has none")
            blocks = self.train_spec.dataset.shuffle_blocks()
        self.sampler = EpochSampler(
            len(self.train_spec),
            self.train_spec.batch_size,
            c.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            blocks=blocks,
            window=c.shuffle_window or 1,
        )
        per_rank, batch = self.sampler.per_rank(), self.train_spec.batch_size
        full_batches, remainder = divmod(per_rank, batch)
        self.steps_per_epoch = full_batches + (remainder > 0 and not self.train_spec.drop_last)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{per_rank} samples per rank make no batch of {batch} (drop_last)")
        if c.max_steps is not None:
            epochs_needed = -(-c.max_steps // self.steps_per_epoch)
            self.epochs = min(c.epochs, epochs_needed) if c.epochs else epochs_needed
        else:
            self.epochs = c.epochs
        self.total_steps = min(self.epochs * self.steps_per_epoch, c.max_steps or math.inf)

        self.optimizer = optimizer or torch.optim.AdamW(
            self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay
        )
        make_scheduler = scheduler or (
            lambda opt, total: warmup_cosine(opt, total, c.warmup_steps, c.min_lr_ratio)
        )
        self.scheduler = make_scheduler(self.optimizer, self.total_steps)
        use_scaler = c.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

        forward = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=c.find_unused_parameters
            )
        self._train_forward = torch.compile(forward) if c.compile else forward
        if c.compile and self.dist.enabled:
            self._eval_forward = torch.compile(self.model)
        else:
            self._eval_forward = self._train_forward if c.compile else self.model

        self.run_dir = Path(c.run_dir)
        self.last_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        self.log = MetricLog(self.run_dir, c.tensorboard) if self.dist.is_main else None
        self.progress = Progress()
        self.resumed_from: dict | None = None
        self.test_result: dict | None = None
        self.summary: dict | None = None
        self._samples_trained = 0.0  # in this process's fit(), over all ranks

    # ------------------------------------------------------------------ public API
    def fit(self) -> dict:
        """Train to the end (resuming first when ``config.resume``), reload the best
        checkpoint, evaluate the test set once. Returns the summary, which is also
        printed and saved to ``run_dir/summary.json``, even when training fails.

        The run folder is locked meanwhile (:func:`gmn.files.folder_lock`): a second
        trainer on it raises :class:`gmn.files.FolderLockedError` naming this process."""
        lock = folder_lock(self.run_dir) if self.dist.is_main else nullcontext()
        with lock:
            if self.dist.is_main:  # files a killed run left half-written
                remove_stale_temporaries(self.run_dir)
            return self._fit()

    def _fit(self) -> dict:
        start, status = time.perf_counter(), "failed"
        try:
            if self.config.resume:
                self._resume()
            if self.progress == Progress():  # a fresh run: seed this rank's dropout etc.
                seed_everything(derive_seed(self.config.seed, self.dist.rank, 1))
                if self.log is not None:
                    self.log.truncate_after(0)  # records of an earlier run in this folder
            if self.dist.is_main:
                write_json(asdict(self.config), self.run_dir / "config.json")
            while not self.progress.finished:
                self._train_epoch()
                self._end_epoch()
            self._test()
            status = "completed"
        except BaseException as err:
            status = f"failed: {type(err).__name__}: {err}"
            raise
        finally:
            seconds = time.perf_counter() - start
            self._finish(status, seconds, self._samples_trained)
            if self.dist.enabled:
                # DistributedDataParallel holds the process group; freed later (after
                # destroy_process_group, at exit) its gloo threads can hang the process.
                self._train_forward = None
        return self.summary

    def evaluate(self, data, return_outputs: bool = False) -> dict:
        """Metrics of the current model on a dataset or loader, each sample counted once
        across ranks; with ``return_outputs`` also per-sample outputs (and class
        probabilities/predictions) in input order. See :func:`gmn.train.evaluation.evaluate`."""
        spec = (
            data
            if isinstance(data, LoaderSpec)
            else LoaderSpec.of(
                data, self.config.eval_batch_size or self.config.batch_size, self.config.num_workers
            )
        )
        indices = shard_indices(len(spec), self.dist.rank, self.dist.world_size)
        loader = spec.loader(indices, seed=self.config.seed, drop_last=False)
        return evaluate(
            self._eval_forward,
            loader,
            indices,
            len(spec),
            self.loss_fn,
            self.device,
            self.split_batch,
            self._autocast,
            return_outputs,
        )

    # ------------------------------------------------------------------ training
    def _autocast(self):
        if self.config.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.config.precision])

    def _train_epoch(self) -> None:
        p, c = self.progress, self.config
        self.model.train()  # a model handed over in eval mode would otherwise train without
        # dropout until the first validation switches it, and a resumed run would not match
        self.sampler.set_epoch(p.epoch, skip_batches=p.batch_in_epoch)
        loader = self.train_spec.loader(
            self.sampler, seed=derive_seed(c.seed, p.epoch, self.dist.rank)
        )
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=p.batch_in_epoch,
            desc=f"epoch {p.epoch + 1}/{self.epochs}",
            disable=not (c.progress and self.dist.is_main),
            leave=False,
        )
        window_start, data_seconds, window_samples = time.perf_counter(), 0.0, 0.0
        fetch_start = time.perf_counter()
        for batch in loader:
            data_seconds += time.perf_counter() - fetch_start
            loss, samples = self._train_step(batch)
            window_samples += samples
            bar.update(1)
            if p.step % c.log_every_steps == 0 or p.batch_in_epoch == self.steps_per_epoch:
                elapsed = time.perf_counter() - window_start
                speed = window_samples / max(elapsed, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{speed:.0f}")
                self._log(
                    event="train",
                    loss=loss,
                    lr=self.scheduler.get_last_lr()[0],
                    samples_per_second=speed,
                    data_fraction=data_seconds / max(elapsed, 1e-9),
                )
                window_start, data_seconds, window_samples = time.perf_counter(), 0.0, 0.0
            reached_max = c.max_steps is not None and p.step >= c.max_steps
            if reached_max:
                break
            every = c.checkpoint_every_steps
            if every and p.step % every == 0 and p.batch_in_epoch < self.steps_per_epoch:
                self._save_last()
            fetch_start = time.perf_counter()
        bar.close()

    def _train_step(self, batch) -> tuple[float, float]:
        """One optimiser update; returns (loss averaged over all ranks, samples on all ranks)."""
        p, c = self.progress, self.config
        batch = move_to(batch, self.device)
        if self.transform is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(derive_seed(c.seed, self.dist.rank, p.step, 2))
            batch = self.transform(batch, generator)
        inputs, targets = self.split_batch(batch)
        with self._autocast():
            outputs = self._train_forward(inputs)
            loss = self.loss_fn(outputs, targets)
        n = targets.shape[0]
        stats = torch.stack([loss.detach().double() * n, loss.new_tensor(n, dtype=torch.float64)])
        loss_sum, samples = all_reduce_sum(stats).tolist()
        mean_loss = loss_sum / samples
        if not math.isfinite(mean_loss):
            kept = self.last_path if self.last_path.exists() else "none written yet"
            raise NonFiniteLossError(
                f"loss is {mean_loss} at step {p.step + 1} (epoch {p.epoch + 1}, batch "
                f"{p.batch_in_epoch + 1}); stopped before updating the weights. "
                f"Last good checkpoint: {kept}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if not self.scaler.is_enabled():  # a GradScaler skips steps with inf gradients itself
            self._check_finite("gradient", mean_loss)
        if c.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._check_finite("parameter", mean_loss)
        self.scheduler.step()
        p.step += 1
        p.batch_in_epoch += 1
        p.loss_sum += loss_sum
        p.sample_count += samples
        self._samples_trained += samples
        return mean_loss, samples

    def _check_finite(self, kind: str, loss: float) -> None:
        """Raise :class:`NonFiniteLossError` naming the first parameter whose ``kind``
        ("gradient" or "parameter") holds a NaN or an infinity; the step is then not
        committed (not counted, never checkpointed)."""
        named = [
            (name, param.grad if kind == "gradient" else param)
            for name, param in self.model.named_parameters()
        ]
        named = [(name, value.detach()) for name, value in named if value is not None]
        # the max-abs norm is NaN or inf exactly when some element is (foreach kernels: cheap)
        if not named or bool(get_total_norm([v for _, v in named], math.inf).isfinite()):
            return
        bad = next(name for name, value in named if not bool(value.isfinite().all()))
        p = self.progress
        kept = self.last_path if self.last_path.exists() else "none written yet"
        when = "before updating the weights" if kind == "gradient" else "after the update"
        raise NonFiniteLossError(
            f"{kind} of {bad!r} is not finite at step {p.step + 1} (epoch {p.epoch + 1}, "
            f"batch {p.batch_in_epoch + 1}; loss {loss:.4g}); stopped {when}, nothing of this "
            f"step was saved. Last good checkpoint: {kept}"
        )

    def _end_epoch(self) -> None:
        p, c = self.progress, self.config
        record = {"event": "epoch", "epoch": p.epoch + 1, "train_loss": p.loss_sum / p.sample_count}
        p.epoch, p.batch_in_epoch, p.loss_sum, p.sample_count = p.epoch + 1, 0, 0.0, 0.0
        if "val" in self.eval_specs:
            val = self.evaluate(self.eval_specs["val"])
            record.update({f"val_{k}": v for k, v in val.items()})
            if c.monitor not in record:
                raise KeyError(f"monitor {c.monitor!r} not among the metrics {sorted(record)}")
            metric, best = record[c.monitor], p.best_metric
            sign = 1 if c.monitor_mode == "max" else -1
            if best is None or sign * (metric - best) > 0:
                p.best_metric, p.best_epoch, p.bad_epochs = metric, p.epoch, 0
                if self.dist.is_main:
                    best_state = {"model": self.model.state_dict(), "epoch": p.epoch}
                    save_atomic(best_state, self.best_path)
            else:
                p.bad_epochs += 1
            if c.patience is not None and p.bad_epochs >= c.patience:
                p.stopped_early = True
        p.finished = (
            p.stopped_early
            or p.epoch >= self.epochs
            or (c.max_steps is not None and p.step >= c.max_steps)
        )
        self._log(**record)
        if c.progress and self.dist.is_main:
            tqdm.write(
                f"epoch {p.epoch}/{self.epochs}: "
                + ", ".join(
                    f"{k} {v:.4g}" for k, v in record.items() if k not in ("event", "epoch")
                )
            )
        self._save_last()

    def _test(self) -> None:
        if self.progress.best_epoch is not None:
            if self.dist.is_main:
                self.model.load_state_dict(load_checkpoint(self.best_path)["model"])
            broadcast_module(self.model)
        if "test" in self.eval_specs:
            self.test_result = self.evaluate(self.eval_specs["test"], return_outputs=True)
            scalars = {k: v for k, v in self.test_result.items() if isinstance(v, float)}
            self._log(event="test", **{f"test_{k}": v for k, v in scalars.items()})

    # ------------------------------------------------------------------ state
    def _log(self, **record) -> None:
        if self.log is not None:
            self.log.write({"step": self.progress.step, **record})

    def _save_last(self) -> None:
        """Checkpoint everything needed to continue bit-for-bit (all ranks must call)."""
        rng = gather_objects(capture_rng_state(self.device))
        if not self.dist.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "progress": asdict(self.progress),
            "config": asdict(self.config),
            "world_size": self.dist.world_size,
        }
        save_atomic(state, self.last_path)

    def _resume(self) -> None:
        state = None
        if self.dist.is_main and self.last_path.exists():
            state = load_checkpoint(self.last_path)
        state = broadcast_object(state)
        if state is None:
            return
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{self.last_path} was written by {state['world_size']} processes; "
                f"resume it with the same number, not {self.dist.world_size}"
            )
        self._check_resumable(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"][self.dist.rank], self.device)
        self.progress = Progress(**state["progress"])
        self.resumed_from = {
            "epoch": self.progress.epoch,
            "batch_in_epoch": self.progress.batch_in_epoch,
            "step": self.progress.step,
        }
        if self.log is not None:
            self.log.truncate_after(self.progress.step)
        if self.dist.is_main:
            p = self.progress
            batch = f", batch {p.batch_in_epoch}" if p.batch_in_epoch else ""
            print(f"resuming from epoch {p.epoch}/{self.epochs}{batch} (step {p.step}) of "
                  f"{self.last_path}", flush=True)

    def _check_resumable(self, state: dict) -> None:
        """Refuse a checkpoint of other settings (the run key first: the cause, where the
        config's differences may only follow from it), or one whose best checkpoint is gone."""
        saved = {k: v for k, v in state["config"].items() if k not in RUNTIME_ONLY}
        current = {k: v for k, v in asdict(self.config).items() if k not in RUNTIME_ONLY}
        key = describe_changes({"run_key": saved.pop("run_key", None)},
                               {"run_key": current.pop("run_key")})
        changed = key or describe_changes(saved, current)
        if changed:
            raise ValueError(
                f"cannot resume {self.last_path}: it was written with other settings "
                f"({changed}); resume with that run's settings, or use another run folder"
            )
        best_epoch = state["progress"]["best_epoch"]
        if best_epoch is not None and self.dist.is_main:
            if not self.best_path.exists():
                raise CheckpointError(
                    f"{self.last_path} records a best checkpoint (epoch {best_epoch}) but "
                    f"{self.best_path} is missing: the run cannot be resumed or tested"
                )
            load_checkpoint(self.best_path)  # a damaged one is named now, not after training

    def _finish(self, status: str, seconds: float, samples: float) -> None:
        p, c = self.progress, self.config
        self.summary = {
            "status": status,
            "run_dir": str(self.run_dir),
            "seed": c.seed,
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "precision": c.precision,
            "epochs_completed": p.epoch,
            "steps": p.step,
            "stopped_early": p.stopped_early,
            "best_epoch": p.best_epoch,
            f"best_{c.monitor}": p.best_metric,
            "test": {k: v for k, v in (self.test_result or {}).items() if isinstance(v, float)},
            "resumed_from": self.resumed_from,
            "train_seconds": seconds,
            "samples_per_second": samples / seconds if seconds > 0 else None,
        }
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.summary, self.run_dir / "summary.json")
            if c.print_summary:
                print("training summary:", json.dumps(self.summary, indent=2, default=str),
                      flush=True)
            self.log.close()
