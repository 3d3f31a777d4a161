"""Per-layer weight statistics (Unterthiner et al. 2020): the baseline features for predicting
a network's accuracy from its weights.

For a layer's weights (and separately its biases): mean, variance and the 0, 25, 50, 75 and 100
% quantiles, 7 numbers. ``layers="all"`` lists every layer (one architecture only);
``layers="slots"`` gives a fixed-length vector for any depth: the first layer, the last
hidden layer, the output layer, and all layers pooled.
"""

from __future__ import annotations

import torch
from torch import Tensor

STATISTICS = ("mean", "var", "q0", "q25", "q50", "q75", "q100")
_QUANTILES = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)


def _layers(stacked: dict[str, Tensor]) -> list[str]:
    """The layer prefixes (``convs.0``, …, ``head``) in state_dict order: entries named
    ``<prefix>.weight`` with at least 2 dimensions per model."""
    layers = [k[:-len(".weight")] for k, v in stacked.items()
              if k.endswith(".weight") and v.dim() >= 3]
    if not layers:
        raise ValueError(f"no layer weights (<prefix>.weight with >= 2 dims) among "
                         f"{sorted(stacked)}")
    return layers


def _describe(values: Tensor) -> Tensor:
    """[n, k] → [n, 7] statistics per row (float64)."""
    values = values.double()
    return torch.cat([values.mean(1, keepdim=True), values.var(1, keepdim=True),
                      torch.quantile(values, _QUANTILES, dim=1).T], dim=1)


def _layer_stats(stacked: dict[str, Tensor], prefixes: list[str]) -> Tensor:
    """[n, 14]: weight statistics, then bias statistics (zeros without biases)."""
    n = stacked[f"{prefixes[0]}.weight"].shape[0]
    weights = torch.cat([stacked[f"{p}.weight"].reshape(n, -1) for p in prefixes], dim=1)
    biases = [stacked[f"{p}.bias"].reshape(n, -1) for p in prefixes if f"{p}.bias" in stacked]
    bias_stats = (_describe(torch.cat(biases, dim=1)) if biases
                  else torch.zeros(n, len(STATISTICS), dtype=torch.float64))
    return torch.cat([_describe(weights), bias_stats], dim=1)


def weight_statistics(stacked: dict[str, Tensor], layers: str = "slots") -> Tensor:
    """Features [n, 14 · slots] of n models ``{key: Tensor[n, *shape]}`` of one architecture.

    Args:
        layers: ``"all"`` (one 14-block per layer, in order) or ``"slots"`` (4 blocks:
            first, last hidden, output, all pooled; the same length for every depth).
    """
    prefixes = _layers(stacked)
    if layers == "all":
        blocks = [[p] for p in prefixes]
    elif layers == "slots":
        blocks = [prefixes[:1], prefixes[-2:-1] or prefixes[:1], prefixes[-1:], prefixes]
    else:
        raise ValueError(f"layers must be 'all' or 'slots', got {layers!r}")
    return torch.cat([_layer_stats(stacked, block) for block in blocks], dim=1)
