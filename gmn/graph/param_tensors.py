"""Tensors a network computes from its own parameters and buffers, before they meet the input.

``F.linear(x, self.weight * self.scale, self.bias)`` (equalised learning rate),
``F.conv2d(x, (w - m) / torch.sqrt(v + eps), ...)`` (weight standardisation),
``torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)`` (a class token): while tracing,
such an expression is a :class:`ParamTensor`, the fx node computing it and the state_dict
entries it reads. Where it is used, :func:`identify` finds what it is by evaluating the
expression on test values: the stored tensor itself, its transpose, a constant multiple, or a
per-output-channel standardisation. Anything else is refused: the graph keeps the stored
values (so the inverse is exact) and records only transforms that ``gmn.graph.execute`` knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, fx

from .errors import ConversionError


@dataclass(eq=False)
class ParamTensor:
    """A tensor computed from parameters and buffers alone.

    ``node``: the fx node computing it; ``keys``: the state_dict entries it reads; ``value``:
    its value for the model being traced (a batch dimension taken as 1); ``stored``: it is
    the stored entry itself.
    """

    node: fx.Node
    keys: tuple[str, ...]
    value: Tensor
    stored: bool = False  # the state_dict entry itself (read by get_attr or a lookup table)


def add_positions(x: Tensor, table: Tensor) -> Tensor:
    """``x + table[:T]``: position embeddings [P, D] (an ``nn.Embedding`` read at positions
    0..T-1) added to the tokens [B, T, D]."""
    return x + table[: x.shape[-2]]


def add_first_row(x: Tensor, table: Tensor) -> Tensor:
    """``x + table[0]``: BERT's token-type embedding for the default type ids (all 0)."""
    return x + table[0]


BATCH_SIZE_META = "gmn_batch_size"  # fx node meta flag: the node is x.size(0) of the input


def evaluate(node: fx.Node, model, substitutions: dict[str, Tensor] | None = None):
    """The value of ``node``, an expression over ``get_attr`` nodes and constants, with the
    attributes named in ``substitutions`` replaced (a batch size is 1)."""
    substitutions = substitutions or {}
    memo: dict[fx.Node, object] = {}

    def value_of(n: fx.Node):
        if n in memo:
            return memo[n]
        if n.meta.get(BATCH_SIZE_META):  # x.size(0): evaluated for a batch of one
            return 1
        if n.op == "get_attr":
            out = substitutions.get(n.target)
            if out is None:
                out = _attribute(model, n.target)
        elif n.op == "placeholder":
            raise ConversionError(f"{n.target!r} depends on the network input")
        else:
            args = fx.node.map_arg(n.args, value_of)
            kwargs = fx.node.map_arg(n.kwargs, value_of)
            if n.op == "call_function":
                out = n.target(*args, **kwargs)
            elif n.op == "call_method":
                out = getattr(args[0], n.target)(*args[1:], **kwargs)
            else:
                out = model.get_submodule(n.target)(*args, **kwargs)
        memo[n] = out
        return out

    return value_of(node)


def _attribute(model, target: str):
    owner, _, name = target.rpartition(".")
    return getattr(model.get_submodule(owner), name)


def operations(node: fx.Node) -> list[str]:
    """The operations of an expression, input side first, for error messages."""
    seen, out = set(), []

    def visit(n: fx.Node) -> None:
        if n in seen:
            return
        seen.add(n)
        fx.node.map_arg((n.args, n.kwargs), visit)
        if n.op in ("call_function", "call_method"):
            target = n.target if isinstance(n.target, str) else getattr(
                n.target, "__name__", str(n.target))
            out.append(target)

    visit(node)
    return out


@dataclass(frozen=True)
class Identified:
    """How a use reads one stored tensor: ``transposed`` (2-D, used as its transpose) and
    ``transform`` (``None``, ``("scale", c)``, ``("standardize", eps, unbiased)``)."""

    key: str
    transposed: bool = False
    transform: tuple | None = None


def identify(tensor: ParamTensor, model, what: str, shape: tuple[int, ...] | None = None
             ) -> Identified:
    """What ``tensor`` is in terms of the one stored entry it reads (see :class:`Identified`),
    checked on two random test values; raises :class:`ConversionError` naming ``what`` and
    the operations otherwise. ``shape``: the shape the use requires (``None``: any)."""
    if len(tensor.keys) != 1:
        raise ConversionError(f"{what} is computed from {len(tensor.keys)} state_dict entries "
                              f"({', '.join(tensor.keys)}); a layer's weight must be one stored "
                              "tensor, possibly scaled or standardised")
    key = tensor.keys[0]
    direct = tensor.stored or tensor.node.op == "get_attr"
    stored = tensor.value if direct else _attribute(model, key)
    if direct:
        return _check_shape(Identified(key), stored.shape, shape, what)
    generator = torch.Generator().manual_seed(0)
    trials = [torch.randn(stored.shape, generator=generator, dtype=torch.float64)
              for _ in range(2)]
    try:
        outputs = [evaluate(tensor.node, model, {key: w}).double() for w in trials]
    except Exception as error:  # noqa: BLE001 - any failure means: not a transform we know
        raise _unknown(what, tensor, f"({type(error).__name__}: {error})") from error
    for transposed in (False, True):
        if transposed and stored.dim() != 2:
            continue
        seen = [w.T if transposed else w for w in trials]
        if any(o.shape != s.shape for o, s in zip(outputs, seen)):
            continue
        for transform in _candidates(seen[0], outputs[0]):
            if all(torch.allclose(apply_transform(transform, s), o, rtol=1e-6, atol=1e-9)
                   for s, o in zip(seen, outputs)):
                found = Identified(key, transposed, transform)
                return _check_shape(found, outputs[0].shape, shape, what)
    raise _unknown(what, tensor, "")


def _check_shape(found: Identified, actual, shape, what: str) -> Identified:
    if shape is not None and tuple(actual) != tuple(shape):
        raise ConversionError(f"{what} has shape {tuple(actual)}, expected {tuple(shape)}")
    return found


def _unknown(what: str, tensor: ParamTensor, detail: str) -> ConversionError:
    return ConversionError(
        f"{what} is computed from {tensor.keys[0]!r} by {' -> '.join(operations(tensor.node))}"
        f"{' ' + detail if detail else ''}; a parameter graph stores the state_dict's values "
        "and knows these transforms of a weight: a transpose, a constant scale (equalised "
        "learning rate) and a per-output-channel standardisation (weight standardisation). "
        "Compute the weight with one of them, or register a converter for the module")


def _candidates(stored: Tensor, used: Tensor) -> list[tuple | None]:
    """Transforms ``used`` may be of ``stored``, with their constants estimated."""
    candidates: list[tuple | None] = [None]
    scale = float((used * stored).sum() / (stored * stored).sum())
    candidates.append(("scale", scale))
    if stored.dim() >= 2:
        dims = tuple(range(1, stored.dim()))
        centred = stored - stored.mean(dims, keepdim=True)
        ratio = centred / used  # sqrt(var + eps) per output channel
        for unbiased in (False, True):
            var = stored.var(dims, unbiased=unbiased, keepdim=True)
            eps = float((ratio.square() - var).median().clamp(min=0))
            rounded = float(f"{eps:.2g}")
            candidates += [("standardize", rounded, unbiased), ("standardize", eps, unbiased)]
    return candidates


def apply_transform(transform: tuple | None, weight: Tensor, mask: Tensor | None = None
                    ) -> Tensor:
    """``weight`` as a layer uses it: scaled, or standardised per output channel (dim 0) over
    its other dimensions (only the entries where ``mask`` is true count, for a kernel placed in
    a larger dense one)."""
    if transform is None:
        return weight
    if transform[0] == "scale":
        return weight * transform[1]
    _, eps, unbiased = transform
    dims = tuple(range(1, weight.dim()))
    if mask is None:
        mask = torch.ones_like(weight, dtype=torch.bool)
    count = mask.sum(dims, keepdim=True)
    mean = (weight * mask).sum(dims, keepdim=True) / count
    centred = (weight - mean) * mask
    var = centred.square().sum(dims, keepdim=True) / (count - 1 if unbiased else count)
    return centred / torch.sqrt(var + eps)
