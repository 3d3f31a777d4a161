"""Infer the layout of a plain sequential MLP/CNN from its state_dict keys and shapes.

Model zoos ship bare state_dicts (``seq.0.weight``, ``layers.0.weight``,
``net.0.linear.weight``, ``fc1.weight``…). Entries are grouped by module prefix, in
state_dict order, and each group is read as a layer:

* 2-D ``weight`` → ``nn.Linear``; 3-D → ``nn.Conv1d``; 4-D → ``nn.Conv2d``;
* ``running_mean``/``running_var`` → BatchNorm over the previous layer's outputs;
* a 1-D ``weight`` without running statistics after a linear layer → ``LayerNorm``.

The layers are assumed to run in key order. What the keys cannot say is recorded, never
guessed into the numbers: the activation after every hidden layer is ``"unknown"``, and where
convolutions meet a linear layer the feature map is globally average-pooled when the linear
layer has as many inputs as there are channels, flattened otherwise. The round trip is exact
either way; pass ``like=`` for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .activations import UnknownActivation
from .errors import ConversionError

NAMES = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


class InferredNetwork(nn.Module):
    """Layers registered under the state_dict's own prefixes, run in key order with an
    ``UnknownActivation`` after every hidden layer (after its norm, if any)."""

    def __init__(self, layers: list[tuple[str, nn.Module]]):
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
        self.order = [layer for _, layer in layers]
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


def infer_module(state_dict: Mapping[str, Tensor]) -> InferredNetwork:
    """A module with ``state_dict``'s keys and shapes, for plain sequential MLPs/CNNs."""
    if not state_dict:
        raise ConversionError("the state_dict is empty")
    _check_chain(state_dict)
    dtype = _check_dtypes(state_dict)
    groups: dict[str, dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, {})[name] = tensor
    layers: list[tuple[str, nn.Module]] = []
    for prefix, entries in groups.items():
        previous = next((m for _, m in reversed(layers) if _weighted(m)), None)
        with torch.device("meta"):  # shapes only: no initialisation cost
            layers.append((prefix, _layer(prefix, entries, previous)))
    if not any(_weighted(m) for _, m in layers):
        raise ConversionError("the state_dict has no linear or convolution weights")
    return InferredNetwork(layers).to(dtype)
