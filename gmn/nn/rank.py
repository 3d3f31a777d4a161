"""`rank_within_layer`: each neuron's rank by a scalar among the neurons of its layer.

A permutation of hidden neurons permutes their ranks with them, so an embedding of the rank
is an equivariant "position" for neurons that have none (exactly, as long as no two neurons
of one layer share the key; ties are broken by node order). With a shared initialisation
the ranks of first-layer biases are the same in almost every INR, so the rank tells the
GMN which initial neuron it is looking at (docs/accuracy.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


def rank_within_layer(key: Tensor, group: Tensor) -> Tensor:
    """[N] float key, [N] long group (graph and layer) -> [N] long rank of the key within
    its group (0 = smallest)."""
    by_key = torch.argsort(key, stable=True)
    order = by_key[torch.argsort(group[by_key], stable=True)]
    sorted_group = group[order]
    _, counts = torch.unique_consecutive(sorted_group, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=key.device) - starts
    return rank
