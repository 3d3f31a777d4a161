"""Flip the signs of hidden neurons of networks with odd activations, keeping their functions.

With an odd activation σ (σ(−z) = −σ(z): ``sine``, ``tanh``, ``identity``), negating a hidden
neuron's incoming weights and bias negates its output, and negating its outgoing weights as
well undoes that: the network computes the same function. A SIREN of h hidden neurons has
2^h such sign flips on top of its h! permutations; independently initialised INRs of one
image differ by both. A parameter indexing several flipped neurons (a weight between two
hidden neurons) is multiplied by the product of their signs. Input and output neurons, and
everything tied to them, keep their signs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from . import vocab
from .permutation import neuron_classes
from .template import GraphTemplate
from .weights import Weights

ODD_ACTIVATIONS = ("identity", "tanh", "sine")
FLIPPABLE_NODE_TYPES = ("linear", "conv")


def _check_flippable(template: GraphTemplate, gid: int) -> None:
    start, size = template.groups[gid]
    kinds = template.structure["node_type"][start:start + size].unique().tolist()
    acts = template.structure["node_act"][start:start + size].unique().tolist()
    bad_kinds = [vocab.NODE_TYPES[k] for k in kinds
                 if vocab.NODE_TYPES[k] not in FLIPPABLE_NODE_TYPES]
    names = [vocab.ACTIVATIONS[a] for a in acts]  # read now: registrations extend it
    bad_acts = [name for name in names if name not in ODD_ACTIVATIONS]
    if bad_kinds or bad_acts:
        raise ValueError(
            f"sign flips keep the function only for hidden neurons of {FLIPPABLE_NODE_TYPES} "
            f"layers with odd activations {ODD_ACTIVATIONS}; neuron group {gid} (nodes "
            f"{start}..{start + size - 1}) has node types {bad_kinds or 'ok'} and activations "
            f"{bad_acts or 'ok'}")


def sample_signs(template: GraphTemplate, n: int, generator: torch.Generator | None = None
                 ) -> dict[int, Tensor]:
    """Random signs for ``n`` samples: ``{gid: Tensor[n, size]}`` of ±1.0 for every neuron
    group (all +1 for groups that cannot flip). Raises ``ValueError`` naming the group when a
    hidden neuron is not a linear/conv neuron with an odd activation."""
    standardised = [b["dst"] for b in template.program["blocks"]
                    if ((b["op"] or {}).get("transform") or ("",))[0] == "standardize"]
    if standardised:
        raise ValueError(f"sign flips do not keep the function of a layer that standardises its "
                         f"weights (neuron group {standardised[0]}): its statistics change")
    out = {}
    device = None if generator is None else generator.device
    for members in neuron_classes(template):
        size = template.groups[members[0]][1]
        if any(g in template.fixed_groups for g in members):
            signs = torch.ones(n, size)
        else:
            for g in members:
                _check_flippable(template, g)
            draw = torch.randint(0, 2, (n, size), generator=generator, device=device).cpu()
            signs = 1.0 - 2.0 * draw
        out.update({g: signs for g in members})
    return out


def parameter_signs(template: GraphTemplate, signs: Mapping[int, Tensor]) -> Tensor:
    """[n, P]: the factor (±1) of every parameter under the neuron ``signs`` (the product of
    the signs of the neurons the parameter indexes)."""
    n = next(iter(signs.values())).shape[0]
    parts = []
    for key, shape in zip(template.keys, template.shapes):
        factor = torch.ones(n, *shape)
        for dim, axis in enumerate(template.param_axes.get(key, ())):
            if axis is None:
                continue
            along = signs[axis.gid].repeat_interleave(axis.inner, dim=1).repeat(1, axis.outer)
            view = [n] + [1] * len(shape)
            view[dim + 1] = along.shape[1]
            factor = factor * along.reshape(view)
        parts.append(factor.reshape(n, -1))
    return torch.cat(parts, dim=1)


def flip_signs(weights: Weights, generator: torch.Generator | None = None) -> Weights:
    """Flip the sign of each hidden neuron of each of the N networks with probability 1/2.

    Args:
        weights: networks whose hidden neurons are linear/conv neurons with odd activations
            (a SIREN; ``ValueError`` otherwise, naming the neuron group).
        generator: seeds the signs (the same seed gives the same result).

    Returns:
        networks computing the same functions (integer buffers kept).
    """
    signs = sample_signs(weights.template, len(weights), generator)
    factor = parameter_signs(weights.template, signs).to(weights.params)
    return weights.with_params(weights.params * factor)
