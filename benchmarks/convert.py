"""Conversion speed: single-model ``gmn.from_state_dict`` and batched ``GraphTemplate.batch``.

Run from the repository root::

    OMP_NUM_THREADS=2 python -m benchmarks.convert [--device cpu] [--seconds 2]

Prints models/s for SIREN 2→32→32→1, the small CNN (2 conv + BN, 2 fc, width 32) and the
small ResNet (width 32), each converted one at a time with a warm template cache, and for
``GraphTemplate.batch`` on SIREN parameter matrices, in two patterns: each batch released
before the next is made, and the previous batch still alive while the next is made (a
training loop: ``batch = template.batch(params)`` rebinds only after the call). Anchors
measured on 2 CPU cores with the Lim et al. converter: SIREN 1,540/s, CNN 480/s, ResNet 170/s.
The load average is printed first: on a shared machine the wall-clock figures depend on it,
the per-CPU-second figures much less.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import gmn
from gmn.graph.convert import from_state_dict  # imported before timing: PyG takes seconds
from gmn.graph.weights import Weights
from gmn.testing import make_cnn, make_resnet, make_siren

ANCHORS = {"siren": 1540, "cnn": 480, "resnet": 170}


def rate(fn, seconds: float, device: torch.device, warmup: int = 1) -> tuple[float, float]:
    """Calls per second of ``fn`` over at least ``seconds`` after ``warmup`` calls: by wall
    clock, and by the CPU time this process used (closer to an idle machine's figure when other
    processes share the cores; meaningful for CPU runs)."""
    for _ in range(warmup):
        fn()
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return calls / wall, calls / max(cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024, 4096, 20000],
                        help="models per template.batch call (several sizes allowed)")
    parser.add_argument("--loop", nargs="+", choices=["released", "kept"],
                        default=["released", "kept"],
                        help="batch patterns: each batch released before the next is made, or "
                             "kept alive meanwhile (a training loop)")
    parser.add_argument("--skip-single", action="store_true",
                        help="measure only GraphTemplate.batch")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {
        "siren": make_siren(hidden=(32, 32)),
        "cnn": make_cnn(width=32),
        "resnet": make_resnet(width=32),
    }
    print(f"device={device} threads={torch.get_num_threads()} load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs) "
          f"gmn={os.path.dirname(gmn.__file__)}")
    probe = torch.randn(1, 80_000, device=device)
    probe_ms = 1e3 / rate(lambda: torch.cat([probe, probe], dim=1), 0.5, device)[0]
    print(f"machine check: torch.cat of 2 x 80k floats {probe_ms:.3f} ms (tens of ms means the "
          "OpenMP threads wait for busy cores; rerun with OMP_NUM_THREADS=1 or on an idle machine)")
    for name, model in ({} if args.skip_single else models).items():
        model = model.to(device)
        start = time.perf_counter()
        graph = from_state_dict(model)  # traces and caches the template
        first_ms = 1e3 * (time.perf_counter() - start)
        per_second, per_cpu_second = rate(lambda m=model: from_state_dict(m), args.seconds,
                                          device)
        print(f"from_state_dict {name:7s} nodes={graph.num_nodes:4d} edges={graph.num_edges:6d} "
              f"first call {first_ms:6.1f} ms, then {per_second:7,.0f} models/s "
              f"({1e3 / per_second:.3f} ms; per CPU second {per_cpu_second:7,.0f}; "
              f"Lim et al. {ANCHORS[name]:,}/s)")
    template = gmn.GraphTemplate.from_module(models["siren"])
    for n in args.batch:
        matrix = torch.randn(n, template.num_params, device=device)
        stacked = Weights(template, matrix).stacked()
        forms = {f"[{n}, {template.num_params}] matrix": (Weights, matrix),
                 f"{n} stacked state_dicts": (Weights.from_stacked, stacked)}
        for form, (make, params) in forms.items():
            for loop in args.loop:
                held: dict = {}

                def step(m=make, p=params, keep=loop == "kept", held=held):
                    batch = m(template, p).graphs()
                    if keep:  # alive while the next one is made, as in a training loop
                        held["batch"] = batch

                # the steady state of a loop: the first calls build the structure tensors for
                # this batch size and the buffers recycled from then on
                wall, cpu = rate(step, args.seconds, device, warmup=3)
                held.clear()
                print(f"GraphTemplate.batch siren, {form:24s}, previous batch {loop:8s}: "
                      f"{n * wall:9,.0f} models/s (per CPU second {n * cpu:9,.0f}; "
                      "goal 200,000)")


if __name__ == "__main__":
    main()
