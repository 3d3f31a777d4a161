"""Architectures as data: a JSON spec ``{"family": name, **options}`` that a registered factory
turns into a module. Zoos store specs, never pickled code.

Built in (no registration needed in the process that reads a zoo): ``zoo_cnn``
(:class:`gmn.models.zoo_cnn.ZooCNN`) and ``inferred_sequential`` (``{"entries": [[key, shape,
dtype], ...]}``: the plain MLP/CNN :func:`gmn.graph.infer.infer_module` reads from a
state_dict's keys). A zoo imported with ``like=`` stores a graph template instead
(:mod:`gmn.zoo.stored_template`).

Example: ``build_architecture({"family": "zoo_cnn", "channels": [8, 8], "kernel": 3})``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

import torch
from torch import nn

from gmn.graph.infer import infer_module
from gmn.models.zoo_cnn import ZooCNN

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(family: str, factory: Callable[..., nn.Module]) -> None:
    """Register ``factory(**options) -> nn.Module`` under ``family``; options must be JSON."""
    if family in _FACTORIES and _FACTORIES[family] is not factory:
        raise ValueError(f"architecture family {family!r} is already registered")
    _FACTORIES[family] = factory


def build_architecture(spec: dict) -> nn.Module:
    """The module of ``spec`` (``{"family": …, **options}``), freshly initialised."""
    if not isinstance(spec, dict) or "family" not in spec:
        raise ValueError(f"an architecture spec is a dict with a 'family' key, got {spec!r}")
    family = spec["family"]
    if family not in _FACTORIES:
        raise ValueError(f"unknown architecture family {family!r}; registered: "
                         f"{sorted(_FACTORIES)}")
    factory = _FACTORIES[family]
    options = {k: v for k, v in spec.items() if k != "family"}
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"architecture family {family!r} has no option(s) {unknown}; "
                         f"options: {sorted(accepted)}")
    return factory(**options)


def architecture_id(spec: dict) -> str:
    """A stable name of ``spec`` (its canonical JSON), used to group models."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def inferred_sequential(entries: list) -> nn.Module:
    """The module :func:`gmn.graph.infer.infer_module` reads from ``[key, shape, dtype]``
    entries (a state_dict's keys, shapes and dtypes)."""
    state = {key: torch.zeros(shape, dtype=getattr(torch, dtype)) for key, shape, dtype in entries}
    return infer_module(state)


def inferred_spec(state: dict) -> dict:
    """The ``inferred_sequential`` spec of a state_dict (its keys, shapes and dtypes)."""
    return {"family": "inferred_sequential",
            "entries": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                        for k, v in state.items()]}


register_architecture("zoo_cnn", ZooCNN)
register_architecture("inferred_sequential", inferred_sequential)
