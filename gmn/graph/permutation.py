"""Permute the hidden neurons of networks without changing the functions they compute.

Hidden neurons of a layer can be reordered if every parameter indexing them is reordered the
same way: the rows of the layer's weight and bias, the columns of the next layer's weight, the
γ/β/running statistics of a norm that follows. The template knows which dimension of which
state_dict entry indexes which neurons, so a permutation of neurons becomes a gather on the
[N, P] parameter matrix, each of the N samples with its own permutation.

Ties: neurons joined by a residual addition or by a standalone norm/activation/sum node are
permuted together. GroupNorm statistics are per group of consecutive channels, so its channels
(and everything tied to them) are only permuted within their group. Input and output neurons
(and everything tied to them, e.g. the channels of a ResNet whose last block adds the input)
are never permuted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .template import GraphTemplate
from .weights import Weights


def neuron_classes(template: GraphTemplate) -> list[list[int]]:
    """Groups of neuron groups (by gid) that must share one permutation (or sign flip)."""
    parent = list(range(len(template.groups)))

    def root(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in template.ties:
        parent[root(a)] = root(b)
    classes: dict[int, list[int]] = {}
    for g in range(len(parent)):
        classes.setdefault(root(g), []).append(g)
    return list(classes.values())


def sample_permutations(template: GraphTemplate, n: int, generator: torch.Generator | None = None
                        ) -> dict[int, Tensor]:
    """Random neuron permutations for ``n`` samples.

    Returns:
        ``{gid: Tensor[n, size]}`` for every neuron group: row ``i`` says which old neuron
        becomes neuron ``j`` of sample ``i``; the identity for groups that cannot move.
    """
    out = {}
    for members in neuron_classes(template):
        size = template.groups[members[0]][1]
        identity = torch.arange(size).expand(n, size)
        if any(g in template.fixed_groups for g in members):
            permutation = identity
        else:
            block = size
            for g in members:
                block = math.gcd(block, template.permutation_blocks.get(g, size))
            # drawn where the generator lives (a CUDA one, e.g. the Trainer's, cannot draw
            # on the CPU), then brought to the CPU like the rest of the index arithmetic
            device = None if generator is None else generator.device
            keys = torch.rand(n, size, generator=generator, device=device).cpu() + identity // block
            permutation = keys.argsort(dim=1)
        out.update({g: permutation for g in members})
    return out


def node_permutation(template: GraphTemplate, permutations: Mapping[int, Tensor]) -> Tensor:
    """[n, num_nodes]: the old node id that becomes each node id, for graph-level checks."""
    parts = [start + permutations[gid] for gid, (start, _) in enumerate(template.groups)]
    return torch.cat(parts, dim=1)


def parameter_permutation(template: GraphTemplate, permutations: Mapping[int, Tensor]) -> Tensor:
    """[n, P]: the old parameter index that moves to each index (``flat.gather(1, ·)``)."""
    n = next(iter(permutations.values())).shape[0]
    parts = []
    for key, shape, offset in zip(template.keys, template.shapes, template.offsets):
        index = (torch.arange(shape.numel()) + offset).reshape(1, *shape).expand(n, *shape)
        for dim, axis in enumerate(template.param_axes.get(key, ())):
            if axis is None:
                continue
            perm = permutations[axis.gid]
            expanded = (perm.unsqueeze(-1) * axis.inner + torch.arange(axis.inner)).reshape(n, -1)
            period = expanded.shape[1]
            expanded = torch.cat([expanded + k * period for k in range(axis.outer)], dim=1)
            view = [n] + [1] * len(shape)
            view[dim + 1] = expanded.shape[1]
            index = torch.take_along_dim(index, expanded.reshape(view), dim=dim + 1)
        parts.append(index.reshape(n, -1))
    return torch.cat(parts, dim=1)


def permute(weights: Weights, generator: torch.Generator | None = None) -> Weights:
    """Apply an independent random hidden-neuron permutation to each of the N networks.

    Args:
        weights: the networks (see :class:`~gmn.graph.weights.Weights`).
        generator: seeds the permutations (the same seed gives the same result).

    Returns:
        the permuted networks, computing the same functions (integer buffers kept).
    """
    permutations = sample_permutations(weights.template, len(weights), generator)
    index = parameter_permutation(weights.template, permutations).to(weights.device)
    return weights.with_params(weights.params.gather(1, index))
