"""Infer the layout of a plain sequential MLP/CNN from its state_dict keys and shapes.

Model zoos ship bare state_dicts (``seq.0.weight``, ``layers.0.weight``,
``net.0.linear.weight``, ``fc1.weight``…). Entries are grouped by module prefix, in
state_dict order, and each group is read as a layer:

* 2-D ``weight`` → ``nn.Linear``; 3-D → ``nn.Conv1d``; 4-D → ``nn.Conv2d``;
* ``running_mean``/``running_var`` → BatchNorm over the previous layer's outputs;
* a 1-D ``weight`` without running statistics after a linear layer → ``LayerNorm``.

**Order.** A state_dict in registration order (as ``model.state_dict()`` gives it) runs in key
order. Keys in sorted order (``safetensors.load_file`` returns them so, and ``layers.10`` sorts
before ``layers.2``) are put back in order by their numbers: layers whose paths differ only in
their numbers (``layers.{i}``, ``fc{i}``) run in numeric order, and differently named ones
(``conv1``, ``fc1``) in the one order in which every layer reads what the one before it gives
(a convolution never follows a linear layer, a norm follows a layer of its width). Where the
keys leave more than one such order, the conversion asks for ``like=``; where no order fits,
the error says that key order is the likely cause.

**Skips.** A bare state_dict does not say whether its forward adds skip connections
(``x + f(x)``). ``gmn.from_state_dict`` reads one as a chain only where none can hide: an
``nn.Sequential`` (layers numbered at the top level, or numbered with gaps where activations
sit), or widths that never repeat; otherwise it asks for ``like=``.

What the keys cannot say is recorded, never guessed into the numbers: the activation after
every hidden layer is ``"unknown"``, and where convolutions meet a linear layer the feature
map is globally average-pooled when the linear layer has as many inputs as there are
channels, flattened otherwise. The round trip is exact
either way; pass ``like=`` for anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .activations import UnknownActivation
from .errors import ConversionError

NAMES = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


class InferredNetwork(nn.Module):
    """Layers registered under the state_dict's own prefixes (in its key order), run in
    ``order`` (their paths) with an ``UnknownActivation`` after every hidden layer (after its
    norm, if any)."""

    def __init__(self, layers: list[tuple[str, nn.Module]], order: list[str]):
        super().__init__()
        for path, layer in layers:
            parent = self
            *parents, name = path.split(".")
            for part in parents:
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Module())
                parent = getattr(parent, part)
            parent.add_module(name, layer)
        self.inferred_activation = UnknownActivation()
        by_path = dict(layers)
        self.order = [by_path[path] for path in order]
        self.before = [_reshape_before(self.order[:i], m) for i, m in enumerate(self.order)]
        last_weighted = max(i for i, m in enumerate(self.order) if _weighted(m))
        self.activate = [i < last_weighted and (i + 1 == len(self.order) or _weighted(
            self.order[i + 1])) for i in range(len(self.order))]

    def forward(self, x: Tensor) -> Tensor:
        for layer, before, activate in zip(self.order, self.before, self.activate):
            if before == "flatten":
                x = torch.flatten(x, 1)
            elif before:
                x = x.mean(dim=before)
            x = layer(x)
            if activate:
                x = self.inferred_activation(x)
        return x


def _reshape_before(previous: list[nn.Module], layer: nn.Module) -> tuple[int, ...] | str | None:
    """Between convolutions and a linear layer: the dims to average over, or ``"flatten"``."""
    conv = next((m for m in reversed(previous) if _weighted(m)), None)
    if not isinstance(layer, nn.Linear) or not isinstance(conv, (nn.Conv1d, nn.Conv2d)):
        return None
    if layer.in_features != conv.out_channels:
        return "flatten"
    return (2, 3) if isinstance(conv, nn.Conv2d) else (2,)


def _weighted(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d))


def _layer(prefix: str, entries: Mapping[str, Tensor], previous: nn.Module | None) -> nn.Module:
    weight = entries.get("weight")
    if weight is None or not prefix:
        raise ConversionError(f"cannot infer a layer from keys {sorted(entries)} under prefix "
                              f"{prefix!r}; pass like=<a module of the architecture>")
    unknown = sorted(set(entries) - NAMES)
    if unknown:
        raise ConversionError(f"cannot infer a layer with key {prefix}.{unknown[0]!r}; pass like=")
    for name, tensor in entries.items():
        if name != "num_batches_tracked" and not tensor.is_floating_point():
            raise ConversionError(f"state_dict entry '{prefix}.{name}' has dtype {tensor.dtype}; "
                                  "a floating point tensor is expected")
    if weight.dim() == 0:
        raise ConversionError(f"state_dict entry '{prefix}.weight' is 0-d; a weight needs at "
                              "least one dimension")
    bias = "bias" in entries
    if "running_mean" in entries:
        if previous is None:
            raise ConversionError(f"BatchNorm '{prefix}' comes before any layer; pass like=")
        norm = nn.BatchNorm2d if isinstance(previous, nn.Conv2d) else nn.BatchNorm1d
        return norm(weight.shape[0])
    if weight.dim() == 1:
        if not isinstance(previous, nn.Linear):
            raise ConversionError(f"cannot tell which normalisation '{prefix}.weight' belongs to "
                                  "(LayerNorm or GroupNorm?); pass like=")
        return nn.LayerNorm(weight.shape[0], elementwise_affine=True, bias=bias)
    if weight.dim() == 2:
        return nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
    if weight.dim() == 3:
        return nn.Conv1d(weight.shape[1], weight.shape[0], weight.shape[2], bias=bias)
    if weight.dim() == 4:
        return nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), bias=bias)
    raise ConversionError(f"state_dict entry '{prefix}.weight' has {weight.dim()} dimensions; "
                          "cannot infer its layer")


RESIDUAL_WORDS = ("shortcut", "downsample", "skip", "residual", "proj")


def _check_chain(state_dict: Mapping[str, Tensor]) -> None:
    """Refuse keys that show blocks: the forward of a block may add a skip connection, and a
    state_dict does not say whether it does (a chain read from it would drop the skips).

    A plain chain: layers directly under one container (``0.weight``, ``fc1.weight``), under
    an ``nn.Sequential`` (``seq.0.weight``), or one layer per numbered wrapper
    (``net.0.linear.weight``). Refused: a key naming a skip path (``shortcut``,
    ``downsample``…), a named (non-numbered) sub-module holding two or more layers
    (``layer1.0.conv1``/``conv2``), and a container mixing layers with sub-modules that hold
    layers (``inp``, ``block.0``, ``out``).
    """
    def refuse(why: str) -> None:
        raise ConversionError(f"cannot tell this state_dict's topology from its keys: {why}. "
                              "A residual network read as a chain would drop its skip "
                              "connections; pass like=<a module of the architecture>")

    layers = sorted({k.rpartition(".")[0] for k in state_dict if k.endswith(".weight")})
    for path in layers:
        for word in RESIDUAL_WORDS:
            if any(word in part.lower() for part in path.split(".")):
                refuse(f"module {path!r} looks like a skip path")
    children: dict[str, dict[str, bool]] = {}  # container -> {child: child is a layer}
    for path in layers:
        parts = path.split(".")
        for depth in range(len(parts)):
            parent, child = ".".join(parts[:depth]), parts[depth]
            is_layer = depth == len(parts) - 1
            children.setdefault(parent, {})
            children[parent][child] = children[parent].get(child, False) or is_layer
    for parent, kids in children.items():
        layer_kids = [c for c, leaf in kids.items() if leaf]
        nested = [c for c, leaf in kids.items() if not leaf]
        named = [c for c in kids if not c.isdigit()]
        if layer_kids and nested and named:
            refuse(f"{parent or 'the top level'!r} holds layers ({layer_kids[0]!r}) beside "
                   f"sub-modules with layers ({nested[0]!r})")
        if parent and len([c for c in layer_kids if not c.isdigit()]) >= 2:
            refuse(f"block {parent!r} holds several named layers ({', '.join(layer_kids)})")


def _check_dtypes(state_dict: Mapping[str, Tensor]) -> torch.dtype:
    """The one floating dtype of ``state_dict``; a mixture raises naming the odd key."""
    floating = [(k, t.dtype) for k, t in state_dict.items() if t.is_floating_point()]
    counts: dict[torch.dtype, int] = {}
    for _, dtype in floating:
        counts[dtype] = counts.get(dtype, 0) + 1
    if not counts:
        return torch.float32
    common = max(counts, key=counts.get)
    for key, dtype in floating:
        if dtype != common:
            raise ConversionError(f"state_dict entry {key!r} has dtype {dtype} while "
                                  f"{counts[common]} other entries have {common}; convert it")
    return common


def infer_module(state_dict: Mapping[str, Tensor], sequential: bool = True) -> InferredNetwork:
    """A module with ``state_dict``'s keys and shapes, for plain sequential MLPs/CNNs.

    ``sequential=False``: the caller does not know that the network is a plain chain (a bare
    state_dict given to ``gmn.from_state_dict``): keys that leave room for a skip connection
    raise (see :func:`_possible_skip`)."""
    if not state_dict:
        raise ConversionError("the state_dict is empty")
    _check_chain(state_dict)
    dtype = _check_dtypes(state_dict)
    groups: dict[str, dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, {})[name] = tensor
    keys = list(state_dict)
    with torch.device("meta"):  # shapes only: no initialisation cost
        order, built = _run_order(groups, sorted_keys=keys == sorted(keys))
    if not any(_weighted(m) for m in built.values()):
        raise ConversionError("the state_dict has no linear or convolution weights")
    skip = None if sequential else _possible_skip(order, built)
    if skip:
        raise ConversionError(
            f"cannot tell this state_dict's topology from its keys: {skip}, so its forward may "
            "add a skip connection there (x + f(x)) that a chain read from the keys would drop; "
            "pass like=<a module of the architecture>")
    layers = [(prefix, built[prefix]) for prefix in groups]
    return InferredNetwork(layers, order).to(dtype)


def _possible_skip(order: list[str], built: dict[str, nn.Module]) -> str:
    """Where a skip connection could hide in the chain ``order`` ('' where none can): between
    two points of equal width and layout, unless the keys show an ``nn.Sequential`` (layers
    numbered at the top level, or numbered with gaps where parameter-free modules such as
    activations sit), whose forward adds no skips."""
    numbered = [p.rpartition(".") for p in order]
    containers = {c for c, _, i in numbered}
    if len(containers) == 1 and all(i.isdigit() for _, _, i in numbered):
        indices = sorted(int(i) for _, _, i in numbered)
        container = next(iter(containers))
        gaps = any(b - a > 1 for a, b in zip(indices, indices[1:]))
        if not container or gaps and _width_in(built[order[0]]) != _width_out(built, order):
            return ""
    points: list[tuple[str, int, str]] = []  # (layout, width, after which layer)
    previous = None
    for prefix in order:
        module = built[prefix]
        if not _weighted(module):
            continue
        layout = "map" if isinstance(module, (nn.Conv1d, nn.Conv2d)) else "features"
        if previous is None or layout != previous:
            points.append((layout, _width_in(module), "the input" if previous is None
                           else f"the input of {prefix!r}"))
        points.append((layout, _width_out(built, [prefix]), f"{prefix!r}"))
        previous = layout
    for i, (layout, width, where) in enumerate(points):
        for later_layout, later_width, later in points[i + 1:]:
            if (layout, width) == (later_layout, later_width):
                return f"{where} and {later} both give {width} {layout}"
    return ""


def _width_in(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


def _width_out(built: dict[str, nn.Module], order: list[str]) -> int:
    last = next(built[p] for p in reversed(order) if _weighted(built[p]))
    return last.out_features if isinstance(last, nn.Linear) else last.out_channels


SORTED_HINT = ("key order is the likely cause: a state_dict loaded with sorted keys "
               "(safetensors.load_file returns them so) puts 'layers.10' before 'layers.2'")


def _run_order(groups: dict[str, dict[str, Tensor]], sorted_keys: bool
               ) -> tuple[list[str], dict[str, nn.Module]]:
    """The order the layers run in and each layer's module (see the module docstring)."""
    given = list(groups)
    if not sorted_keys or len(given) < 2:
        built, problem = _chain(given, groups)
        if problem:
            raise ConversionError(f"cannot chain the layers in key order: {problem}; "
                                  f"{SORTED_HINT}. Pass like=<a module of the architecture>")
        return given, built
    found = _orders_by_number(groups, limit=2)
    if len(found) == 1:
        return found[0]
    if not found:
        _, problem = _chain(_natural(given), groups)
        raise ConversionError(f"cannot chain the layers of this state_dict in any order its "
                              f"keys allow: {problem}; {SORTED_HINT}. Pass like=<a module of "
                              "the architecture>")
    first, second = ([p for p in order] for order, _ in found)
    raise ConversionError(
        "the keys alone cannot decide the order of the layers: they are sorted (as "
        "safetensors.load_file returns them), and both " + " -> ".join(first) + " and "
        + " -> ".join(second) + " fit; pass like=<a module of the architecture>")


def _natural(prefixes: list[str]) -> list[str]:
    return sorted(prefixes, key=lambda p: [int(t) if t.isdigit() else t
                                           for t in re.split(r"(\d+)", p)])


def _orders_by_number(groups: dict[str, dict[str, Tensor]], limit: int, budget: int = 20_000
                      ) -> list[tuple[list[str], dict[str, nn.Module]]]:
    """Up to ``limit`` orders in which layers whose paths differ only in their numbers keep
    numeric order and every layer fits the one before it."""
    chains: dict[str, list[str]] = {}
    for prefix in _natural(list(groups)):
        chains.setdefault(re.sub(r"\d+", "#", prefix), []).append(prefix)
    lists = list(chains.values())
    found: list[tuple[list[str], dict[str, nn.Module]]] = []
    steps = [0]

    def extend(positions: tuple[int, ...], order: list[str], built: dict, previous) -> None:
        steps[0] += 1
        if len(found) >= limit or steps[0] > budget:
            return
        if len(order) == len(groups):
            found.append((list(order), dict(built)))
            return
        for i, chain in enumerate(lists):
            if positions[i] == len(chain):
                continue
            prefix = chain[positions[i]]
            module = _fitting_layer(prefix, groups[prefix], previous)
            if module is None:
                continue
            built[prefix] = module
            order.append(prefix)
            extend(positions[:i] + (positions[i] + 1,) + positions[i + 1:], order, built,
                   module if _weighted(module) else previous)
            order.pop()
            del built[prefix]

    extend((0,) * len(lists), [], {}, None)
    if steps[0] > budget:
        raise ConversionError("the keys alone cannot decide the order of the layers (too many "
                              "orders fit); pass like=<a module of the architecture>")
    return found


def _chain(order: list[str], groups: dict[str, dict[str, Tensor]]
           ) -> tuple[dict[str, nn.Module], str]:
    """Each layer's module in ``order``, and the first width mismatch ('' when they fit)."""
    built, previous = {}, None
    for prefix in order:
        module = _layer(prefix, groups[prefix], previous)
        problem = _misfit(prefix, module, previous)
        if problem:
            return built, problem
        built[prefix] = module
        previous = module if _weighted(module) else previous
    return built, ""


def _fitting_layer(prefix: str, entries: Mapping[str, Tensor], previous):
    try:
        module = _layer(prefix, entries, previous)
    except ConversionError:
        return None
    return None if _misfit(prefix, module, previous) else module


def _misfit(prefix: str, module: nn.Module, previous) -> str:
    """Why ``module`` cannot read what ``previous`` (the last weighted layer) gives, or ''."""
    if previous is None:
        return "" if _weighted(module) else f"{prefix!r} is a norm before any layer"
    out = previous.out_features if isinstance(previous, nn.Linear) else previous.out_channels
    if isinstance(module, nn.Linear):
        if isinstance(previous, nn.Linear) and module.in_features != out or (
                module.in_features % out):
            return (f"{prefix!r} reads {module.in_features} features, the layer before it "
                    f"gives {out}")
        return ""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if not isinstance(previous, type(module)):
            return f"{prefix!r} is a convolution after a linear layer"
        return "" if module.in_channels == out else (
            f"{prefix!r} reads {module.in_channels} channels, the layer before it gives {out}")
    size = module.num_features if hasattr(module, "num_features") else \
        module.normalized_shape[0]
    return "" if size == out else f"norm {prefix!r} has {size} channels, the layer before {out}"
