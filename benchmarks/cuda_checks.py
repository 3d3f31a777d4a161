"""gmn's device checks (``python -m gmn.check``) and the benchmarks' own, in one run.

    python -m benchmarks.cuda_checks --device cuda [--out checks.json]

Same options, output and exit status as ``python -m gmn.check``; one more check,
``benchmark_augmentation``: the INR benchmark's GMN augmentation (pixel shift through the
standardisation, then hidden-neuron permutation) on the device, with the standardisation
statistics and the generator left on the CPU, against the CPU.
"""

from __future__ import annotations

import sys

import torch

from gmn.check import CHECKS, Report, main, siren_params


def check_benchmark_augmentation(device: torch.device) -> Report:
    from .inr_classification.gmn_family import gmn_augmentation

    r = Report()
    template, flat = siren_params(16)
    scale, offset = torch.linspace(0.5, 2.0, flat.shape[1]), torch.full((flat.shape[1],), 0.1)
    transform = gmn_augmentation(template, (28, 28), 1, True, (scale, offset))
    labels = torch.arange(len(flat))
    want, _ = transform((flat, labels), torch.Generator().manual_seed(6))
    got, _ = transform((flat.to(device), labels.to(device)), torch.Generator().manual_seed(6))
    r.true("benchmark augmentation on device", got.device.type == device.type)
    r.close("benchmark augmentation == cpu", got, want, 1e-5, relative=True)
    return r


BENCHMARK_CHECKS = [*CHECKS, ("benchmark_augmentation", check_benchmark_augmentation)]

if __name__ == "__main__":
    sys.exit(main(checks=BENCHMARK_CHECKS, prog="python -m benchmarks.cuda_checks"))
