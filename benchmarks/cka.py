"""Speed and memory of gmn.cka, against a naive Gram implementation.

    OMP_NUM_THREADS=2 python -m benchmarks.cka            # every case, one process each
    OMP_NUM_THREADS=2 python -m benchmarks.cka --only pair
    python -m benchmarks.cka --device cuda                 # the same cases on a GPU

Cases (float32 inputs, n = 10,000 samples, d = 512 features unless stated):

- pair:    linear CKA of one pair, biased and debiased (goal ≤ 0.3 s, ≤ 100 MB extra);
- naive:   the same pair the textbook way: n×n Gram matrices, centred, Frobenius
           inner products (Kornblith et al.'s reference algorithm, O(n²) memory);
- matrix:  a 6 × 6 layer matrix (goal ≤ 2 s);
- stream:  a one-pair CKAGrid over n = 100,000 and n = 1,000,000 samples in batches of
           10,000 (d = 256), generated on the fly: memory must not depend on n;
- ratio:   one pair against the plain fp32 feature-space formula (centre, three GEMMs),
           timed alternately in the same process (goal ≤ 1.1×);
- gemm:    the 6 × 6 matrix's flop rate against a plain fp32 GEMM of the same shape timed
           in the same process (goal ≥ 80 %);
- compare: gmn.cka.compare between two MLPs (4 and 3 probed layers, widths 256/128)
           over n = 100,000 and 1,000,000 streamed inputs: wall time and peak RSS;
- rff:     random-feature RBF CKA against the exact n × n RBF CKA (its error).

Each case runs in a fresh process so that its peak memory is its own. Memory is the
peak resident set size during a call minus the resident set size just before it
(the inputs excluded), for the first (cold) and the second (warm) call; times are
medians of wall-clock and process CPU seconds.

With ``--device cuda`` the inputs are drawn from the same CPU generators (the same
values, up to rounding) and moved to the GPU before timing; the clock starts and stops
after ``torch.cuda.synchronize``, memory is peak ``torch.cuda.max_memory_allocated``
minus the allocation just before the call, and there is no CPU-time column. The stream
case still draws each batch on the CPU and copies it over, inside the timing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import torch

from gmn.cka import CKAGrid, cka, cka_matrix, compare

N, D = 10_000, 512
STREAM_D, STREAM_BATCH = 256, 10_000


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_before(device: torch.device) -> float:
    """Reset the peak counter and return the memory in use now (MB): RSS, or CUDA allocated."""
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    reset_peak()
    return resident_mb()


def memory_peak(device: torch.device) -> float:
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_mb()


def clock(device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds, after the device has finished its queued work."""
    sync(device)
    return time.perf_counter(), time.process_time()


def elapsed(device: torch.device, start: tuple[float, float]) -> dict:
    wall, cpu = clock(device)
    times = dict(seconds=wall - start[0])
    if device.type == "cpu":  # CPU seconds of a process that waits on a GPU mean nothing
        times["cpu_seconds"] = cpu - start[1]
    return times


def measure(fn, device: torch.device, repeats: int = 3):
    """Memory of a cold and a warm call, then the median wall (and CPU) time of ``repeats``.

    The cold call includes one-time growth (allocator arenas, BLAS buffers and handles);
    the warm call is what each further call costs.
    """
    extra = []
    for _ in range(2):
        before = memory_before(device)
        result = fn()
        extra.append(memory_peak(device) - before)
    runs = []
    for _ in range(repeats):
        start = clock(device)
        fn()
        runs.append(elapsed(device, start))
    timing = {key: median(run[key] for run in runs) for key in runs[0]} if runs else {}
    return result, dict(cold_extra_mb=extra[0], warm_extra_mb=extra[1], **timing)


def pair_data(device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)  # on the CPU: the same values on every device
    x = torch.randn(N, D, generator=g)
    y = torch.randn(N, D, generator=g).mul_(2.0).add_(x)  # in place: no temporaries
    return x.to(device), y.to(device)


def naive_gram_cka(x, y):
    """Kornblith et al.'s reference algorithm: centred n×n Grams, Frobenius products."""

    def centred_gram(features):
        gram = features @ features.T
        means = gram.mean(dim=0)
        return gram - means[:, None] - means[None, :] + means.mean()

    k, l = centred_gram(x), centred_gram(y)
    return (k * l).sum() / ((k * k).sum().sqrt() * (l * l).sum().sqrt())


def case_pair(device: torch.device):
    x, y = pair_data(device)
    out = {}
    for debiased in (False, True):
        value, figures = measure(lambda d=debiased: cka(x, y, debiased=d), device)
        reference = float(cka(x.double(), y.double(), debiased=debiased))
        figures.update(value=float(value), error_vs_float64=abs(float(value) - reference))
        out["debiased" if debiased else "biased"] = figures
    return out


def case_naive(device: torch.device):
    x, y = pair_data(device)
    value, figures = measure(lambda: naive_gram_cka(x, y), device, repeats=1)
    return dict(value=float(value), **figures)


def case_matrix(device: torch.device):
    g = torch.Generator().manual_seed(1)
    reps_a = {f"gmn.layer{i}": torch.randn(N, D, generator=g) for i in range(6)}
    reps_b = {
        f"cnn.layer{i}": torch.randn(N, D, generator=g).add_(reps_a[f"gmn.layer{i}"])
        for i in range(6)
    }
    reps_a, reps_b = ({k: v.to(device) for k, v in reps.items()} for reps in (reps_a, reps_b))
    result, figures = measure(lambda: cka_matrix(reps_a, reps_b), device, repeats=1)
    return dict(diagonal=torch.diagonal(result.values).tolist(), **figures)


def stream(n_samples: int, device: torch.device) -> float:
    g = torch.Generator().manual_seed(2)
    mixing = (torch.randn(STREAM_D, STREAM_D, generator=g) / STREAM_D**0.5).to(device)
    grid = CKAGrid()
    for _ in range(n_samples // STREAM_BATCH):
        x = torch.randn(STREAM_BATCH, STREAM_D, generator=g).to(device)
        y = torch.randn(STREAM_BATCH, STREAM_D, generator=g).to(device).add_(x @ mixing)
        grid.update({"x": x}, {"y": y})
    return float(grid.compute(debiased=True).values[0, 0])


def case_stream(device: torch.device):
    out = {}
    for n_samples in (100_000, 1_000_000):
        before = memory_before(device)
        start = clock(device)
        value = stream(n_samples, device)
        times = elapsed(device, start)
        out[str(n_samples)] = dict(value=value, extra_mb=memory_peak(device) - before, **times)
    return out


def plain_feature_cka(x, y):
    """The textbook fp32 feature-space formula: centre, three GEMMs, Frobenius norms."""
    xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
    cross = (xc.T @ yc).square().sum()
    return cross / ((xc.T @ xc).square().sum() * (yc.T @ yc).square().sum()).sqrt()


def alternate(fns: dict, device: torch.device, rounds: int = 7) -> dict:
    """Median seconds of each function, run in turns (round-robin) so that load changes on
    a shared machine hit all of them alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock(device)
            fn()
            times[name].append(elapsed(device, start)["seconds"])
    return {name: median(values) for name, values in times.items()}


def case_ratio(device: torch.device):
    x, y = pair_data(device)
    times = alternate(
        {
            "plain": lambda: plain_feature_cka(x, y),
            "biased": lambda: cka(x, y),
            "debiased": lambda: cka(x, y, debiased=True),
        },
        device,
    )
    return dict(times, ratio_biased=times["biased"] / times["plain"],
                ratio_debiased=times["debiased"] / times["plain"])  # fmt: skip


def case_gemm(device: torch.device):
    g = torch.Generator().manual_seed(1)
    reps_a = {f"a{i}": torch.randn(N, D, generator=g).to(device) for i in range(6)}
    reps_b = {f"b{i}": torch.randn(N, D, generator=g).to(device) for i in range(6)}
    x = reps_a["a0"]
    times = alternate(
        {"gemm": lambda: x.T @ x, "matrix": lambda: cka_matrix(reps_a, reps_b)}, device, rounds=3
    )
    gemm_flops = 2 * N * D * D
    # 36 cross products and 12 self products (one per layer), each 2·n·d² flop
    matrix_flops = 48 * gemm_flops
    gemm_rate, matrix_rate = gemm_flops / times["gemm"], matrix_flops / times["matrix"]
    return dict(times, gemm_gflops=gemm_rate / 1e9, matrix_gflops=matrix_rate / 1e9,
                fraction=matrix_rate / gemm_rate)  # fmt: skip


class StreamedInputs:
    """``n`` random inputs ``[batch, 64]`` drawn batch by batch (nothing kept)."""

    def __init__(self, n: int, batch: int = 10_000):
        self.n, self.batch = n, batch

    def __iter__(self):
        g = torch.Generator().manual_seed(3)
        for _ in range(self.n // self.batch):
            yield torch.randn(self.batch, 64, generator=g)


def case_compare(device: torch.device):
    from torch import nn

    torch.manual_seed(0)
    model_a = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.Tanh())
    model_b = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 128))
    model_a, model_b = model_a.to(device), model_b.to(device)
    out = {}
    for n_samples in (100_000, 1_000_000):
        before = memory_before(device)
        start = clock(device)
        matrix = compare(model_a, model_b, StreamedInputs(n_samples), device=device)
        times = elapsed(device, start)
        out[str(n_samples)] = dict(
            extra_mb=memory_peak(device) - before,
            peak_rss_mb=peak_mb(),
            shape=list(matrix.values.shape),
            diagonal=torch.diagonal(matrix.values).tolist(),
            **times,
        )
    return out


def case_rff(device: torch.device):
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(4)
    x = torch.randn(2000, 32, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(32, 16, generator=g, dtype=torch.float64))
    y = y + 0.5 * torch.randn(2000, 16, generator=g, dtype=torch.float64)
    exact = float(cka(x, y, kernel="rbf"))
    out = {"exact": exact}
    identity = torch.nn.Identity()
    for features in (512, 2048, 8192):
        loader = DataLoader(torch.cat([x, y], 1), batch_size=2000)  # one batch: same bandwidth
        split = lambda model, batch: model(batch[:, :32] if model is identity else batch[:, 32:])  # noqa: E731
        other = torch.nn.Identity()
        approx = compare(identity, other, loader, forward=split, method="rff",
                         rff_features=features, layers=([""], [""]))  # fmt: skip
        out[str(features)] = dict(value=float(approx.values[0, 0]),
                                  error=abs(float(approx.values[0, 0]) - exact))  # fmt: skip
    return out


CASES = {
    "pair": case_pair,
    "naive": case_naive,
    "matrix": case_matrix,
    "stream": case_stream,
    "ratio": case_ratio,
    "gemm": case_gemm,
    "compare": case_compare,
    "rff": case_rff,
}


def run_in_subprocess(case: str, device: str) -> dict:
    # as a module from the repository root, so this checkout's gmn is the one imported
    root = Path(__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cka", "--case", case, "--device", device],
        capture_output=True, text=True, check=True, cwd=root,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(results: dict, device: torch.device) -> None:
    print(f"gmn.cka benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads")
    if device.type == "cuda":
        print(f"device: {device} ({torch.cuda.get_device_name(device)})")
        print("memory = peak CUDA allocated minus allocated before the call (cold / warm)")
    else:
        print(f"device: {device}")
        print("memory = peak RSS minus RSS before the call (cold: first call / warm: second)")

    def timing(r):
        cpu = f" ({r['cpu_seconds']:.3f} s CPU)" if "cpu_seconds" in r else ""
        return f"{r['seconds']:.3f} s wall{cpu}"

    def memory(r):
        return f"{r['cold_extra_mb']:.0f} / {r['warm_extra_mb']:.0f} MB"

    for name, r in results.get("pair", {}).items():
        print(
            f"one pair n={N:,} d={D} fp32, {name:8s}: {timing(r)}, {memory(r)}, "
            f"|fp32 - fp64| = {r['error_vs_float64']:.1e}   goal <= 0.3 s, <= 100 MB"
        )
    if "naive" in results:
        r = results["naive"]
        print(f"one pair, naive n x n Gram, biased: {timing(r)}, {memory(r)}")
    if "matrix" in results:
        r = results["matrix"]
        print(f"6 x 6 layer matrix n={N:,} d={D} fp32: {timing(r)}, {memory(r)}   goal <= 2 s")
    for n_samples, r in results.get("stream", {}).items():
        print(
            f"CKAGrid, one pair, n={int(n_samples):,} d={STREAM_D}, batches of {STREAM_BATCH:,}: "
            f"{timing(r)}, {r['extra_mb']:.0f} MB"
        )


def report_more(results: dict) -> None:
    if "ratio" in results:
        r = results["ratio"]
        print(
            f"one pair vs plain fp32 formula (same run, alternating): plain {r['plain']:.3f} s, "
            f"biased {r['biased']:.3f} s ({r['ratio_biased']:.2f}x), debiased "
            f"{r['debiased']:.3f} s ({r['ratio_debiased']:.2f}x)   goal <= 1.1x"
        )
    if "gemm" in results:
        r = results["gemm"]
        print(
            f"fp32 GEMM {N:,}x{D}x{D}: {r['gemm']:.3f} s = {r['gemm_gflops']:.1f} GFLOP/s; "
            f"6 x 6 matrix {r['matrix']:.3f} s = {r['matrix_gflops']:.1f} GFLOP/s "
            f"({100 * r['fraction']:.0f} % of GEMM)   goal >= 80 %"
        )
    for n_samples, r in results.get("compare", {}).items():
        print(
            f"compare, 4 x 3 layers, n={int(n_samples):,} streamed: {r['seconds']:.1f} s wall, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (+{r['extra_mb']:.0f} MB during the call)"
        )
    if "rff" in results:
        r = results["rff"]
        errors = ", ".join(f"{k} features {v['error']:.4f}" for k, v in r.items() if k != "exact")
        print(f"random-feature RBF CKA, n=2,000, exact {r['exact']:.4f}: |error| {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case, print JSON")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.case:
        torch.manual_seed(0)
        print(json.dumps(CASES[args.case](device)))
        return
    results = {case: run_in_subprocess(case, args.device) for case in args.only}
    report(results, device)
    report_more(results)


if __name__ == "__main__":
    main()
