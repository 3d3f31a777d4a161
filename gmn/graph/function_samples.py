"""Function samples: every neuron's values at K query points, as extra node features.

A network's parameters decide what each neuron computes; evaluating the network at K fixed
input points (*query points*) and giving each neuron its own K values describes that function
directly (Kofinas et al. 2024 and Lim et al. 2024 use such features). The features are computed
from the parameters alone and are *equivariant*: permuting the hidden neurons of the network
permutes their rows, so a permutation-invariant GMN stays invariant. (Not to be confused with
``gmn.probe``, which captures a model's hidden states.)

Everything is batched over the networks (one ``baddbmm`` per layer on the [B, P] parameter
matrix of a :class:`~gmn.graph.weights.Weights`); there is no Python loop over networks.

**Supported architectures** (checked by :class:`SequentialSpec`, which raises
``UnsupportedArchitectureError`` otherwise): a chain of ``nn.Linear`` layers with an
elementwise activation after each (any of ``gmn.graph.vocab.ACTIVATIONS`` except
``"unknown"`` and the learned ``"prelu"``), as traced by ``GraphTemplate.from_module``: plain
``nn.Sequential`` MLPs and SIRENs (``gmn.models.siren.Siren``, sine with its ω₀, plus the
template's ``output_offset``). Convolutions, normalisation layers, residual connections and
layouts inferred from state_dict keys alone (activation ``"unknown"``) are not supported.

Node order of the result is the template's: row ``g * N + n`` is node ``n`` of network ``g``,
so the features can be concatenated to ``Batch.x`` column-wise.
"""

from __future__ import annotations

import collections
import copy
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gmn import GMNError

from . import activations, vocab
from .parameter_graph import NODE_SPEC
from .weights import Weights


class UnsupportedArchitectureError(GMNError, ValueError):
    """The template is not a chain of linear layers with elementwise activations."""


def _activation(name: str, arg: float) -> Callable[[Tensor], Tensor]:
    """``z -> fn(z, arg)`` from the one activation table (:mod:`gmn.graph.activations`)."""
    if name == "unknown" or name not in activations.TABLE:
        raise UnsupportedArchitectureError(
            f"activation {name!r} cannot be evaluated (a layout inferred from state_dict keys "
            "does not say which activation the network used)")
    fn = activations.TABLE[name].fn
    return lambda z: fn(z, arg)


@dataclass(frozen=True)
class LinearStep:
    """One layer: ``z = x @ W.T + b`` with W [out, in] at flat offset ``weight_offset``."""

    weight_offset: int
    bias_offset: int | None
    fan_in: int
    fan_out: int
    activation: str
    activation_arg: float


class SequentialSpec:
    """What :func:`function_samples` needs to evaluate a template's network.

    Built from a :class:`gmn.GraphTemplate`; raises :class:`UnsupportedArchitectureError` for
    anything but a chain of linear layers (see the module docstring).

    Attributes:
        steps: one :class:`LinearStep` per layer, input to output.
        group_starts: first node id of each neuron group (input neurons first), in node order.
        in_features: width of the network input. num_nodes: N. output_offset: a constant the
        network adds to its output (``template.metadata["output_offset"]``, else 0).
    """

    def __init__(self, template):
        s = template.structure
        linear_edge = vocab.EDGE_TYPE["linear"]
        allowed_nodes = {vocab.NODE_TYPE["input"], vocab.NODE_TYPE["linear"]}
        if bool((s["edge_type"] != linear_edge).any()):
            raise UnsupportedArchitectureError(
                "only chains of nn.Linear layers are supported (found non-linear edges: "
                "convolution, residual or identity edges)")
        if not set(s["node_type"].unique().tolist()) <= allowed_nodes:
            raise UnsupportedArchitectureError(
                "only chains of nn.Linear layers are supported (found normalisation or other "
                "node types)")
        if template.learned_act:
            raise UnsupportedArchitectureError("activations with learned parameters (PReLU, a "
                                               "learned ω₀) are not supported")
        settings = [name for i, name in enumerate(NODE_SPEC) if not name.startswith("output_")
                    and bool(s["node_spec"][:, i].any())]
        if settings:
            raise UnsupportedArchitectureError(
                f"layers with {', '.join(settings)} (node_spec) are not supported: only plain "
                "linear layers")
        groups = template.groups
        offsets = dict(zip(template.keys, template.offsets))
        writers: dict[int, list[str]] = {}
        weights: dict[int, tuple[str, int]] = {}
        for key, axes in template.param_axes.items():
            if any(axis.inner != 1 for axis in axes):
                raise UnsupportedArchitectureError(f"parameter {key!r} reads a feature map")
            out_gid = axes[0].gid
            writers.setdefault(out_gid, []).append(key)
            if len(axes) == 2:
                weights[out_gid] = (key, axes[1].gid)
        steps = []
        for gid in range(1, len(groups)):
            if gid not in weights:
                raise UnsupportedArchitectureError(f"neuron group {gid} has no weight matrix")
            key, in_gid = weights[gid]
            if in_gid != gid - 1:
                raise UnsupportedArchitectureError(
                    f"{key!r} reads group {in_gid}, not the previous layer; only sequential "
                    "networks are supported")
            biases = [k for k in writers[gid] if k != key]
            if len(biases) > 1:
                raise UnsupportedArchitectureError(f"neuron group {gid} has several biases")
            start, size = groups[gid]
            steps.append(LinearStep(
                weight_offset=offsets[key],
                bias_offset=offsets[biases[0]] if biases else None,
                fan_in=groups[gid - 1][1],
                fan_out=size,
                activation=vocab.ACTIVATIONS[int(s["node_act"][start])],
                activation_arg=float(template.act_arg[start]),
            ))
        for step in steps:
            _activation(step.activation, step.activation_arg)  # reject unknown ones early
        self.steps = steps
        self.group_starts = [start for start, _ in groups]
        if self.group_starts != sorted(self.group_starts) or sum(
                size for _, size in groups) != template.num_nodes:
            raise UnsupportedArchitectureError("neuron groups are not laid out layer by layer")
        self.in_features = groups[0][1]
        self.num_nodes = template.num_nodes
        self.output_offset = float(template.metadata.get("output_offset", 0.0))


_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # template → its spec


def sequential_spec(template) -> SequentialSpec:
    """The :class:`SequentialSpec` of ``template`` (cached while the template lives)."""
    spec = _SPECS.get(template)
    if spec is None:
        spec = _SPECS[template] = SequentialSpec(template)
    return spec


def _layers(weights: Weights, points: Tensor):
    """The network evaluated layer by layer at ``points`` [K, in]: first the inputs
    [B, K, in], then per layer ``(z, h)`` [B, K, width] (pre- and post-activation; the last
    layer's ``h`` includes ``output_offset``). The one evaluation of a SIREN or MLP from its
    parameters (the module's own ``forward`` aside)."""
    spec = sequential_spec(weights.template)
    flat_params = weights.params
    if points.dim() != 2 or points.shape[1] != spec.in_features:
        raise ValueError(f"points must be [K, {spec.in_features}], got {list(points.shape)}")
    points = points.to(flat_params)
    b, k = flat_params.shape[0], points.shape[0]
    h = points.unsqueeze(0).expand(b, k, spec.in_features)  # [B, K, in]
    yield h
    last = len(spec.steps) - 1
    for i, step in enumerate(spec.steps):
        size = step.fan_out * step.fan_in
        weight = flat_params[:, step.weight_offset:step.weight_offset + size]
        weight = weight.reshape(b, step.fan_out, step.fan_in)
        if step.bias_offset is None:
            z = torch.bmm(h, weight.transpose(1, 2))
        else:
            bias = flat_params[:, step.bias_offset:step.bias_offset + step.fan_out]
            z = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        h = _activation(step.activation, step.activation_arg)(z)
        if i == last:
            h = h + spec.output_offset
        yield z, h


def network_outputs(weights: Weights, points: Tensor) -> Tensor:
    """The B networks' outputs at K query ``points`` [K, in_features]: [B, K, out_features]
    (equal to ``model(points)``, ``output_offset`` included)."""
    (_, outputs), = collections.deque(_layers(weights, points), maxlen=1)  # the last layer
    return outputs


def function_samples(weights: Weights, points: Tensor, *, pre_activation: bool = False,
                       flat: bool = True) -> Tensor:
    """Each neuron's value at K query points, for the B networks of ``weights``.

    Args:
        weights: B networks of a supported architecture (module docstring).
        points: [K, in_features] query points (for an image SIREN, e.g. the pixel centres
            ``gmn.models.siren.image_grid(H, W)``: coordinates in [-1, 1]²).
        pre_activation: give hidden neurons their pre-activation ``z`` instead of ``act(z)``.
        flat: return [B*N, K] (rows in ``Batch.x`` order) instead of [B, N, K].

    Returns:
        input neurons: the query coordinates; hidden neurons: their activations; output
        neurons: the network's output at the points (including ``output_offset``), so the
        output rows equal ``model(points)``.
    """
    layers = _layers(weights, points)
    values = [next(layers)]
    num_steps = len(sequential_spec(weights.template).steps)
    for i, (z, h) in enumerate(layers):
        values.append(z if pre_activation and i < num_steps - 1 else h)
    out = torch.cat(values, dim=2).transpose(1, 2)  # [B, N, K] in node order
    b, n, k = out.shape
    return out.reshape(b * n, k) if flat else out


def random_query_points(count: int, dim: int, seed: int = 0, low: float = -1.0,
                        high: float = 1.0) -> Tensor:
    """``count`` seeded uniform query points in [low, high]^dim: [count, dim]."""
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(count, dim, generator=generator)


def with_function_samples(batch, weights: Weights, points: Tensor, **kwargs):
    """A shallow copy of ``batch`` (PyG's ``copy.copy``: tensors shared, fields not) whose
    ``x`` has the function samples of ``weights`` at the K query ``points`` appended:
    [B*N, F] → [B*N, F + K]. ``batch`` is unchanged; ``weights`` are usually the batch's own
    (``Weights.from_graphs(batch)``) or, for a batch of standardised parameters, the raw
    networks. ``kwargs`` go to :func:`function_samples`."""
    features = function_samples(weights, points, **kwargs).to(batch.x.dtype)
    if features.shape[0] != batch.x.shape[0]:
        raise ValueError(f"the weights give {features.shape[0]} neuron rows, the batch has "
                         f"{batch.x.shape[0]} nodes (not the same networks)")
    out = copy.copy(batch)
    out.x = torch.cat([batch.x, features], dim=1)
    return out
