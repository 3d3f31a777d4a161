"""Training throughput of `gmn.nn.GMN` on SIREN 2→32→32→1 parameter graphs.

One step = forward + cross-entropy + backward + AdamW step on a batch built once with
``GraphTemplate.batch``. Prints graphs/s and peak memory per hidden width:

    OMP_NUM_THREADS=2 python benchmarks/throughput.py --device cpu --batch 128 --width 32 64 128
    python benchmarks/throughput.py --device cuda --batch 128 1024

Peak memory: CUDA ``torch.cuda.max_memory_allocated``; CPU the process's peak resident set
(Linux ``VmHWM``, reset before each width), which includes the Python interpreter and torch.
Public anchors on the same 2-core CPU (design notes): NG-GNN (d=32, 4 layers) 21 graphs/s,
NG-T 5, ScaleGMN 4. ``reference_add_ms`` (one memory-bound add of an edge-state-sized tensor)
shows how loaded the machine was: compare figures only between runs with similar values.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren
from gmn.nn import GMN


def siren_batch(batch_size: int, device: torch.device):
    """A ``Batch`` of ``batch_size`` seeded SIREN 2→32→32→1 graphs, with labels."""
    template = GraphTemplate.from_module(Siren(2, (32, 32), 1))
    state_dicts = []
    for seed in range(batch_size):
        torch.manual_seed(seed)
        state_dicts.append(Siren(2, (32, 32), 1).state_dict())
    labels = torch.arange(batch_size) % 10
    return Weights.from_state_dicts(template, state_dicts).graphs(y=labels).to(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: reset the peak resident set size
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_add_ms(device: torch.device) -> float:
    """Wall time of one fp32 add of two [143360, 64] tensors (an edge-state pass at batch 128,
    width 64): a memory-bandwidth yardstick that shows how loaded the machine is."""
    a = torch.randn(143360, 64, device=device)
    b = torch.randn(143360, 64, device=device)
    for _ in range(3):
        a + b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(20):
        a + b
    synchronize(device)
    return 1e3 * (time.perf_counter() - start) / 20


def measure(width: int, layers: int, batch, device: torch.device, steps: int, warmup: int,
            compile_model: bool, bf16: bool, edge_dim: int | None,
            options: dict | None = None) -> dict:
    torch.manual_seed(0)
    model = GMN(hidden_dim=width, edge_dim=edge_dim, num_layers=layers, out_dim=10,
                **(options or {})).to(device)
    model.fit_feature_statistics(batch)  # as in training: canonical statistics are looked up
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if compile_model else model

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(forward(batch), batch.y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    reset_peak_memory(device)
    for _ in range(warmup):
        step()
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    cpu_seconds = (time.process_time() - cpu_start) / steps
    return {"graphs_per_s": batch.num_graphs / seconds, "ms_per_step": 1e3 * seconds,
            "cpu_ms_per_step": 1e3 * cpu_seconds, "peak_mb": peak_memory_mb(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch", type=int, nargs="+", default=[128])
    parser.add_argument("--width", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--edge-dim", type=int, default=None,
                        help="width of edge states (default: the GMN default, half the node width)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--gmn-config", type=json.loads, default={}, metavar="JSON",
                        help="other gmn.nn.GMN options, e.g. '{\"fourier_frequencies\": 0}'")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()} layers={args.layers} "
          f"edge_dim={args.edge_dim or 'width//2 (default)'} "
          f"compile={args.compile} bf16={args.bf16} gmn_config={args.gmn_config} "
          f"reference_add_ms={reference_add_ms(device):.1f}")
    print(f"{'batch':>6} {'width':>6} {'graphs/s':>9} {'ms/step':>8} {'cpu ms/step':>11} "
          f"{'peak MB':>8}")
    for batch_size in args.batch:
        batch = siren_batch(batch_size, device)
        for width in args.width:
            r = measure(width, args.layers, batch, device, args.steps, args.warmup,
                        args.compile, args.bf16, args.edge_dim, args.gmn_config)
            print(f"{batch_size:>6} {width:>6} {r['graphs_per_s']:>9.1f} {r['ms_per_step']:>8.0f} "
                  f"{r['cpu_ms_per_step']:>11.0f} {r['peak_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
