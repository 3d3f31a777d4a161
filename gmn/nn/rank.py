"""`rank_within_layer`: each neuron's rank among the neurons of its layer, by sort keys.

A permutation of hidden neurons permutes their ranks with them, so an embedding of the rank
is an equivariant "position" for neurons that have none (exactly, as long as no two neurons
of one layer agree on every key; full ties are broken by node order). With a shared
initialisation the ranks of first-layer biases are the same in almost every INR, so the rank
tells the GMN which initial neuron it is looking at (docs/accuracy.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


def rank_within_layer(keys: Tensor, group: Tensor) -> Tensor:
    """[N] or [N, K] float keys (column 0 first, later columns break its ties), [N] long group
    (graph and layer) -> [N] long rank within the group (0 = smallest)."""
    keys = keys.reshape(len(keys), -1)
    order = torch.arange(len(keys), device=keys.device)
    for column in reversed(range(keys.shape[1])):  # stable sorts: the last sort ranks first
        order = order[torch.argsort(keys[order, column], stable=True)]
    order = order[torch.argsort(group[order], stable=True)]
    sorted_group = group[order]
    _, counts = torch.unique_consecutive(sorted_group, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=keys.device) - starts
    return rank
