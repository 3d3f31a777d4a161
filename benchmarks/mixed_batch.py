"""Batching M models of T architectures: one conversion per model +
``Batch.from_data_list`` against ``gmn.graph.mixed_batches.batch_groups`` (one
``GraphTemplate.batch`` gather per architecture).

    python -m benchmarks.mixed_batch --models 512 --architectures 8
"""

from __future__ import annotations

import argparse
import time

import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph.convert import template_for
from gmn.graph.mixed_batches import batch_groups, to_state_dicts
from gmn.graph.weights import Weights
from gmn.zoo.build import ZooConfig, sample_architectures
from gmn.zoo.specs import build_architecture


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mixed_batch")
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--architectures", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    specs = sample_architectures(ZooConfig(architectures=args.architectures,
                                           models=args.models))
    per_arch = args.models // len(specs)
    modules = [build_architecture(s).eval() for s in specs]
    states = [[build_architecture(s).state_dict() for _ in range(per_arch)] for s in specs]
    templates = [template_for(m) for m in modules]
    weights = [Weights.from_state_dicts(t, group) for t, group in zip(templates, states)]
    flat = [state for group in states for state in group]
    likes = [m for m, group in zip(modules, states) for _ in group]

    def one_by_one():
        return Batch.from_data_list([gmn.from_state_dict(s, like=m) for s, m in zip(flat, likes)])

    def grouped():
        return batch_groups(weights)

    batch = grouped()
    assert all(torch.equal(a[k], b[k]) for a, b in zip(to_state_dicts(batch), flat) for k in b)
    slow, fast = best_of(args.repeats, one_by_one), best_of(args.repeats, grouped)
    inverse = best_of(args.repeats, lambda: to_state_dicts(batch))
    print(f"{len(flat)} models over {len(specs)} architectures "
          f"({batch.num_nodes} nodes, {batch.num_edges} edges)")
    print(f"from_state_dict each + Batch.from_data_list: {slow * 1e3:8.1f} ms")
    print(f"batch_groups ({len(specs)} gathers):             {fast * 1e3:8.1f} ms "
          f"({slow / fast:.1f}x faster)")
    print(f"to_state_dicts of the batch:                 {inverse * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
