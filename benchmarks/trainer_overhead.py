"""GMN training throughput through `gmn.train.Trainer` vs a plain PyTorch loop, and the
data-loading time per batch when batches are built with `GraphTemplate`.

    python -m benchmarks.trainer_overhead [--device cpu|cuda] [--batch-size 32] ...

Both runs train the same GMN (same seed) on the same SIREN parameter graphs for the same
number of steps, with the same optimiser, schedule and gradient clipping; the trainer's
time includes everything ``fit()`` adds (seeded sampler, per-step loss reduction and NaN
check, JSON-lines log, an atomic checkpoint per epoch, the summary). Wall-clock and
process CPU time are both reported: on a machine shared with other jobs the CPU time is
the steadier of the two. Runs alternate (raw first, then trainer first, ...)
and the fastest of ``--repeats`` is kept, to damp noise from other processes. The goal is
an overhead < 10%. For reference it also prints the raw step of ``benchmarks/throughput.py``
(one pre-built batch, no loader, no schedule, no clipping) at the same size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.throughput import measure, siren_batch
from gmn import GraphTemplate
from gmn.models.siren import Siren
from gmn.nn import GMN
from gmn.train import TrainConfig, Trainer, move_to, warmup_cosine


class TemplateCollate:
    """``[(params [P], label)]`` -> ``Batch`` of parameter graphs with ``y`` (one gather)."""

    def __init__(self, template: GraphTemplate):
        self.template = template

    def __call__(self, items):
        params = torch.stack([p for p, _ in items])
        return self.template.batch(params, y=torch.stack([y for _, y in items]))


def siren_dataset(num_models: int, hidden: tuple[int, ...]) -> tuple[GraphTemplate, TensorDataset]:
    """``num_models`` independently initialised SIRENs 2 -> hidden -> 1, 10 random classes."""
    torch.manual_seed(0)
    sirens = [Siren(2, hidden, 1) for _ in range(num_models)]
    template = GraphTemplate.from_module(sirens[0])
    params = torch.stack([template.flatten(s.state_dict()) for s in sirens])
    labels = torch.randint(0, 10, (num_models,))
    return template, TensorDataset(params, labels)


def make_gmn(args) -> GMN:
    torch.manual_seed(0)
    return GMN(out_dim=10, hidden_dim=args.hidden_dim, num_layers=args.layers)


class Timer:
    """Wall-clock and process CPU seconds of a ``with`` block (``.wall``, ``.cpu``)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def raw_loop(args, loader: DataLoader, device: torch.device) -> Timer:
    """Time of ``args.epochs`` epochs of a minimal training loop."""
    model = make_gmn(args).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = warmup_cosine(optimizer, args.epochs * len(loader), warmup_steps=1)
    with Timer(device) as timer:
        for _ in range(args.epochs):
            for batch in loader:
                batch = move_to(batch, device)
                loss = F.cross_entropy(model(batch), batch.y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
    return timer


def trainer_run(args, loader: DataLoader, device: torch.device) -> Timer:
    """Time of ``Trainer.fit()`` for the same training."""
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(
            run_dir=run_dir, epochs=args.epochs, lr=1e-3, warmup_steps=1,
            progress=False, device=str(device),
        )
        trainer = Trainer(lambda: make_gmn(args), loader, config=config)
        with contextlib.redirect_stdout(io.StringIO()), Timer(device) as timer:  # no summary
            trainer.fit()
        return timer


def loading_seconds_per_batch(loader: DataLoader) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in loader)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-models", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-dim", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)

    template, data = siren_dataset(args.num_models, (32, 32))
    loader = DataLoader(data, args.batch_size, shuffle=True, collate_fn=TemplateCollate(template))
    samples = args.epochs * args.num_models
    raw_loop(args, loader, device)  # warm-up (allocator, kernels)
    raw, trained = [], []
    for repeat in range(args.repeats):
        order = (raw_loop, trainer_run) if repeat % 2 == 0 else (trainer_run, raw_loop)
        for run in order:
            (raw if run is raw_loop else trained).append(run(args, loader, device))
    load = min(loading_seconds_per_batch(loader) for _ in range(args.repeats))
    best_raw, best_trained = (min(t.wall for t in runs) for runs in (raw, trained))
    cpu_raw, cpu_trained = (min(t.cpu for t in runs) for runs in (raw, trained))
    step = best_raw / (args.epochs * len(loader))
    reference = measure(
        args.hidden_dim, args.layers, siren_batch(args.batch_size, device), device,
        steps=args.epochs * len(loader), warmup=1, compile_model=False, bf16=False,
    )

    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"GMN d={args.hidden_dim} x{args.layers} layers on SIREN 2-32-32-1 "
          f"graphs ({template.num_nodes} nodes, {template.num_edges} edges), "
          f"batch {args.batch_size}, {args.epochs} epochs of {args.num_models}")
    for name, runs, best in (("raw loop", raw, best_raw), ("Trainer", trained, best_trained)):
        print(f"{name + ':':9} {samples / best:8.1f} graphs/s  (wall/cpu s per run: "
              + ", ".join(f"{t.wall:.2f}/{t.cpu:.2f}" for t in runs) + ")")
    print(f"throughput.py step (one pre-built batch): {reference['graphs_per_s']:8.1f} graphs/s")
    print(f"trainer overhead: wall {100 * (best_trained / best_raw - 1):+.1f}%, "
          f"cpu {100 * (cpu_trained / cpu_raw - 1):+.1f}% (fastest runs; goal < 10%)")
    print(f"data loading (GraphTemplate collate): {1e3 * load:.2f} ms/batch "
          f"= {100 * load / step:.1f}% of a {1e3 * step:.1f} ms training step")


if __name__ == "__main__":
    main()
