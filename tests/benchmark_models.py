"""Small stand-ins for the benchmark's trained runs, for tests of its CKA stage that need no
training: seeded MLPs probed at every layer, all reading the same ``n`` samples."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gmn
from benchmarks.inr_classification.probes import TrainedModel

LAYERS = ["0", "2", "4"]  # the three Linear layers of :func:`mlp`


def samples(n: int) -> TensorDataset:
    """``n`` seeded inputs ``[n, 6]`` and dummy labels."""
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(99))
    return TensorDataset(x, torch.zeros(n))


def mlp(seed: int, width: int = 12) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, width), nn.Tanh(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3)
    ).eval()


def trained(seed: int, n: int, layers: list[str] = LAYERS, width: int = 12) -> TrainedModel:
    """A seeded MLP on :func:`samples`, probed at ``layers`` (in that order)."""
    return TrainedModel(mlp(seed, width), list(layers), samples(n))


def in_memory(model: TrainedModel) -> dict[str, torch.Tensor]:
    """``{layer: Tensor[n, d]}`` of every probed layer, all samples collected at once (what the
    benchmark did before its CKA stage streamed): module outputs, a GMN layer's per-node-type
    mean."""
    with gmn.probe(model.model, layers=model.layers) as recorder:
        collected = recorder.collect(DataLoader(model.test, batch_size=256))
    kept = {k.partition("/")[0]: v for k, v in collected.items()
            if k.partition("/")[2] in ("", "node_type_mean")}
    return {name: kept[name] for name in model.layers}
