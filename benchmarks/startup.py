"""What the first use of gmn costs: each step timed in fresh Python processes.

    python -m benchmarks.startup [--repeats 5]

A step runs its ``setup`` (untimed inside the process) and then its ``code`` (timed with
``time.perf_counter``); ``process`` is the whole process's wall time, interpreter start
included. Steps build on each other, so ``import torch_geometric`` is measured after
``import torch`` has already run in that process, and ``first use`` (the README tour's first
lines: convert an MLP, build ``gmn.nn.GMN()``, one forward) after every import it needs.
The ``--help`` steps time whole commands. Medians and minima over ``--repeats`` processes;
the load average printed first says how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

FIRST_USE = (
    "model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1)); "
    "graph = gmn.from_state_dict(model); gmn.nn.GMN(out_dim=10)(graph)"
)
STEPS = [  # (name, setup, timed code)
    ("python", "", "pass"),
    ("import torch", "", "import torch"),
    ("import torch._dynamo", "import torch", "import torch._dynamo"),
    ("import torch_geometric", "import torch", "import torch_geometric"),
    ("import gmn.nn", "import torch, torch_geometric", "import gmn.nn"),
    ("first use", "import torch, torch_geometric, gmn, gmn.nn; from torch import nn", FIRST_USE),
    ("import gmn.nn, from nothing", "", "import gmn.nn"),
]
COMMANDS = [
    "benchmarks.inr_classification",
    "benchmarks.generalization",
    "benchmarks.cnn_zoo",
    "gmn.check",
]


def timed(setup: str, code: str) -> tuple[float, float]:
    """(seconds of ``code`` inside a fresh process, seconds of the whole process)."""
    program = (f"{setup}\nimport time\nt = time.perf_counter()\n{code}\n"
               "print(time.perf_counter() - t)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.split()[-1]), time.perf_counter() - start


def command_seconds(module: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import torch
    import torch_geometric

    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torch_geometric "
          f"{torch_geometric.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'step':44s} {'median s':>9s} {'min s':>7s} {'process median s':>17s}")
    for name, setup, code in STEPS:
        runs = [timed(setup, code) for _ in range(args.repeats)]
        inner, whole = [r[0] for r in runs], [r[1] for r in runs]
        print(f"{name:44s} {statistics.median(inner):9.3f} {min(inner):7.3f} "
              f"{statistics.median(whole):17.3f}", flush=True)
    for module in COMMANDS:
        runs = [command_seconds(module) for _ in range(args.repeats)]
        print(f"{'python -m ' + module + ' --help':44s} {statistics.median(runs):9.3f} "
              f"{min(runs):7.3f}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
