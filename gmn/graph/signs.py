"""Flip the signs of hidden neurons of networks with odd activations, keeping their functions,
or put every network in one canonical sign (and, for sines, phase) per neuron.

With an odd activation σ (σ(−z) = −σ(z): ``sine``, ``tanh``, ``identity``), negating a hidden
neuron's incoming weights and bias negates its output, and negating its outgoing weights as
well undoes that: the network computes the same function. A SIREN of h hidden neurons has
2^h such sign flips on top of its h! permutations; independently initialised INRs of one
image differ by both. A parameter indexing several flipped neurons (a weight between two
hidden neurons) is multiplied by the product of their signs. Input and output neurons, and
everything tied to them, keep their signs.

:func:`canonicalize_signs` picks one member of each neuron's orbit under these flips (and,
for a sine, under shifts of its phase by π): the canonical network computes the same function
and is the same for every flipped or phase-shifted copy, so a model reading canonical
networks is invariant to those symmetries (and stays equivariant to permutations).
"""

from __future__ import annotations

import math
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


def _canonical_neurons(template: GraphTemplate) -> tuple[Tensor, Tensor]:
    """The hidden neurons :func:`canonicalize_signs` acts on: ([H] node ids, [H] their bias
    parameter indices). Raises ``ValueError`` naming the group when a hidden neuron cannot be
    canonicalised (not a linear/conv neuron with an odd activation and its own bias, tied to
    other neurons, or carrying norm parameters)."""
    x_src = template.structure["x_src"]
    nodes = []
    for members in neuron_classes(template):
        if any(g in template.fixed_groups for g in members):
            continue
        if len(members) > 1:
            raise ValueError(
                f"canonical signs need every hidden neuron to stand alone; neuron groups "
                f"{members} are tied (a residual or a shared norm)")
        gid = members[0]
        _check_flippable(template, gid)
        start, size = template.groups[gid]
        group = torch.arange(start, start + size)
        params = x_src[group] < template.num_params
        if not params[:, 0].all() or params[:, 1:].any():
            raise ValueError(
                f"canonical signs need each hidden neuron's bias and no norm parameter; "
                f"neuron group {gid} (nodes {start}..{start + size - 1}) has "
                f"{'no bias' if not params[:, 0].all() else 'norm parameters'}")
        nodes.append(group)
    node = torch.cat(nodes) if nodes else torch.zeros(0, dtype=torch.long)
    return node, x_src[node, 0]


def canonicalize_signs(weights: Weights) -> Weights:
    """The canonical sign (and, for sines, phase) of every hidden neuron of the N networks.

    A hidden neuron with an odd activation is flipped (incoming weights, bias and outgoing
    weights negated) so that its bias is non-negative. A sine neuron ``sin(ω₀ (w·x + b))`` is
    also invariant, up to the sign of its output, to shifting its phase ``φ = ω₀ b`` by π; its
    canonical phase is the one representative of ``±φ + kπ`` in [0, π/2], its incoming weights
    take the sign of the flip, and its outgoing weights the sign that keeps the function. Every
    function-preserving flip or phase shift of a network gives the same canonical network.

    Args:
        weights: networks whose hidden neurons are linear/conv neurons with odd activations
            and biases (a SIREN, a tanh MLP); ``ValueError`` otherwise, naming the group.

    Returns:
        networks computing the same functions, in canonical form (integer buffers kept).
    """
    template = weights.template
    node, bias_index = _canonical_neurons(template)
    params = weights.params
    n = params.shape[0]
    bias = params[:, bias_index]  # [N, H]
    omega = template.act_arg[node].to(params)
    is_sine = torch.tensor([vocab.ACTIVATIONS[a] == "sine" for a in
                            template.structure["node_act"][node].tolist()], dtype=torch.bool,
                           device=params.device)
    phase = omega * bias
    turns = torch.floor(phase / math.pi)
    rest = phase - turns * math.pi  # in [0, π)
    sine_in = torch.where(rest <= math.pi / 2, 1.0, -1.0).to(params)
    sine_out = 1.0 - 2.0 * torch.remainder(turns, 2)
    sine_bias = torch.where(sine_in > 0, rest, math.pi - rest) / omega.where(is_sine, 1.0)
    odd = torch.where(bias < 0, -1.0, 1.0).to(params)
    incoming = torch.where(is_sine, sine_in, odd)
    outgoing = torch.where(is_sine, sine_out, odd)
    new_bias = torch.where(is_sine, sine_bias, bias.abs())
    node_in = params.new_ones(n, template.num_nodes).index_copy_(1, node.to(params.device),
                                                                  incoming)
    node_out = params.new_ones(n, template.num_nodes).index_copy_(1, node.to(params.device),
                                                                   outgoing)
    source, target = template.structure["edge_index"].to(params.device)
    weight_index = template.structure["edge_src"][:, 0].to(params.device)
    on_params = weight_index < template.num_params
    factor = params.new_ones(n, template.num_params)
    factor[:, weight_index[on_params]] = (node_in[:, target] * node_out[:, source])[:, on_params]
    canonical = params * factor
    canonical[:, bias_index.to(params.device)] = new_bias
    return weights.with_params(canonical)
