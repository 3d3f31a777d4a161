"""Architectures as data: a JSON spec ``{"family": name, **options}`` that a registered factory
turns into a module. Zoos store specs, never pickled code.

Example: ``build_architecture({"family": "zoo_cnn", "channels": [8, 8], "kernel": 3})``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

from torch import nn

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


register_architecture("zoo_cnn", ZooCNN)
