"""Speed and memory of gmn.cka, against a naive Gram implementation.

    OMP_NUM_THREADS=2 python benchmarks/cka.py            # every case, one process each
    OMP_NUM_THREADS=2 python benchmarks/cka.py --case pair

Cases (float32 inputs, n = 10,000 samples, d = 512 features unless stated):

- pair:    linear CKA of one pair, biased and debiased (goal ≤ 0.3 s, ≤ 100 MB extra);
- naive:   the same pair the textbook way: n×n Gram matrices, centred, Frobenius
           inner products (Kornblith et al.'s reference algorithm, O(n²) memory);
- matrix:  a 6 × 6 layer matrix (goal ≤ 2 s);
- stream:  CKAAccumulator over n = 100,000 and n = 1,000,000 samples in batches of
           10,000 (d = 256), generated on the fly: memory must not depend on n.

Each case runs in a fresh process so that its peak memory is its own. "extra memory"
is the peak resident set size during the computation minus the resident set size
just before it (the inputs excluded).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from gmn.cka import CKAAccumulator, cka_matrix, linear_cka

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


def measure(fn, repeats: int = 3):
    """Run ``fn`` once for memory (and as warm-up), then ``repeats`` times for time."""
    reset_peak()
    before = resident_mb()
    result = fn()
    extra = peak_mb() - before
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return result, sorted(times)[len(times) // 2], extra


def pair_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g)
    y = torch.randn(N, D, generator=g).mul_(2.0).add_(x)  # in place: no temporaries
    return x, y


def naive_gram_cka(x, y):
    """Kornblith et al.'s reference algorithm: centred n×n Grams, Frobenius products."""

    def centred_gram(features):
        gram = features @ features.T
        means = gram.mean(dim=0)
        return gram - means[:, None] - means[None, :] + means.mean()

    k, l = centred_gram(x), centred_gram(y)
    return (k * l).sum() / ((k * k).sum().sqrt() * (l * l).sum().sqrt())


def case_pair():
    x, y = pair_data()
    out = {}
    for debiased in (False, True):
        value, seconds, extra = measure(lambda d=debiased: linear_cka(x, y, debiased=d))
        reference = float(linear_cka(x.double(), y.double(), debiased=debiased))
        name = "debiased" if debiased else "biased"
        out[name] = dict(
            value=float(value), seconds=seconds, extra_mb=extra, error_vs_float64=abs(
                float(value) - reference
            )
        )
    return out


def case_naive():
    x, y = pair_data()
    value, seconds, extra = measure(lambda: naive_gram_cka(x, y), repeats=1)
    return dict(value=float(value), seconds=seconds, extra_mb=extra)


def case_matrix():
    g = torch.Generator().manual_seed(1)
    reps_a = {f"gmn.layer{i}": torch.randn(N, D, generator=g) for i in range(6)}
    reps_b = {f"cnn.layer{i}": torch.randn(N, D, generator=g).add_(reps_a[f"gmn.layer{i}"])
              for i in range(6)}
    result, seconds, extra = measure(lambda: cka_matrix(reps_a, reps_b), repeats=1)
    return dict(seconds=seconds, extra_mb=extra, diagonal=torch.diagonal(result.values).tolist())


def stream(n_samples: int) -> float:
    g = torch.Generator().manual_seed(2)
    mixing = torch.randn(STREAM_D, STREAM_D, generator=g) / STREAM_D**0.5
    accumulator = CKAAccumulator()
    for _ in range(n_samples // STREAM_BATCH):
        x = torch.randn(STREAM_BATCH, STREAM_D, generator=g)
        y = torch.randn(STREAM_BATCH, STREAM_D, generator=g).add_(x @ mixing)
        accumulator.update(x, y)
    return float(accumulator.compute(debiased=True))


def case_stream():
    out = {}
    for n_samples in (100_000, 1_000_000):
        value, seconds, extra = measure(lambda n=n_samples: stream(n), repeats=0)
        out[str(n_samples)] = dict(value=value, extra_mb=extra)
        start = time.perf_counter()
        stream(n_samples)
        out[str(n_samples)]["seconds"] = time.perf_counter() - start
    return out


CASES = {"pair": case_pair, "naive": case_naive, "matrix": case_matrix, "stream": case_stream}


def run_in_subprocess(case: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--case", case], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(results: dict) -> None:
    print(f"gmn.cka benchmark — torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "pair" in results:
        for name, r in results["pair"].items():
            print(
                f"one pair, n={N:,} d={D} fp32, {name:8s}: {r['seconds']:.3f} s, "
                f"{r['extra_mb']:.0f} MB extra, |fp32 - fp64| = {r['error_vs_float64']:.1e}"
                "  (goal ≤ 0.3 s, ≤ 100 MB)"
            )
    if "naive" in results:
        r = results["naive"]
        print(
            f"one pair, naive Gram (n×n)  : {r['seconds']:.3f} s, {r['extra_mb']:.0f} MB extra"
        )
    if "matrix" in results:
        r = results["matrix"]
        print(
            f"6×6 layer matrix, n={N:,} d={D} fp32: {r['seconds']:.3f} s, "
            f"{r['extra_mb']:.0f} MB extra  (goal ≤ 2 s)"
        )
    if "stream" in results:
        for n_samples, r in results["stream"].items():
            print(
                f"CKAAccumulator, n={int(n_samples):,} d={STREAM_D} batches of "
                f"{STREAM_BATCH:,}: {r['seconds']:.2f} s, {r['extra_mb']:.0f} MB extra"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case, print JSON")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args()
    if args.case:
        torch.manual_seed(0)
        print(json.dumps(CASES[args.case]()))
        return
    report({case: run_in_subprocess(case) for case in args.only})


if __name__ == "__main__":
    main()
