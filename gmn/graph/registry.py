"""The converter registry: one converter per module type, found through the class hierarchy.

A converter is called as ``converter(builder, path, module, value) -> Value`` where
``builder`` is the :class:`~gmn.graph.builder.GraphBuilder`, ``path`` the module's qualified
name (state_dict keys are ``f"{path}.{name}"``), and ``value`` the
:class:`~gmn.graph.builder.Value` the module reads. See ``gmn/graph/converters.py`` for the
built-in ones; they are the examples to follow.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

Converter = Callable  # (GraphBuilder, str, nn.Module, Value) -> Value

_CONVERTERS: dict[type, Converter] = {}
_BY_NAME: dict[str, Converter] = {}  # classes gmn must not import (transformers), by name
_generation = [0]  # bumped by every registration; part of the template cache key


def register_converter(module_type: type, converter: Converter | None = None):
    """Register ``converter`` for ``module_type`` (and its subclasses without their own).

    Use directly, ``register_converter(MyLayer, fn)``, or as a decorator,
    ``@register_converter(MyLayer)``. A subclass that overrides ``forward`` (or
    ``_conv_forward``) is not covered: it is traced through its own forward. A later
    registration for the same type replaces the earlier one. Templates cached by
    :func:`gmn.from_state_dict` before are not reused.
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"module_type must be an nn.Module subclass, got {module_type!r}")

    def register(fn: Converter) -> Converter:
        _CONVERTERS[module_type] = fn
        bump_generation()
        return fn

    return register if converter is None else register(converter)


def register_named_converter(qualified_name: str, converter: Converter) -> None:
    """Register ``converter`` for the class named ``f"{cls.__module__}.{cls.__qualname__}"``
    (for libraries gmn does not import, such as ``transformers``)."""
    _BY_NAME[qualified_name] = converter
    bump_generation()


FORWARD_METHODS = ("forward", "_conv_forward")  # methods that decide what a module computes


def keeps_forward(module: nn.Module, cls: type) -> bool:
    """``type(module)`` computes what ``cls`` computes: it overrides none of ``cls``'s
    :data:`FORWARD_METHODS` (a subclass of ``nn.Linear`` with its own ``forward`` does not)."""
    own = type(module)
    return all(getattr(own, name) is getattr(cls, name)
               for name in FORWARD_METHODS if hasattr(cls, name))


def find_converter(module: nn.Module) -> Converter | None:
    """The converter registered for ``type(module)`` or its nearest registered base class whose
    forward the module keeps (:func:`keeps_forward`), else one registered for its class name.
    ``None`` for a subclass that overrides its forward: it is traced through its own."""
    cls = type(module)
    for base in cls.__mro__:
        if base in _CONVERTERS:
            return _CONVERTERS[base] if keeps_forward(module, base) else None
    return _BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")


def supported_types() -> list[str]:
    """Names of the module types with a converter."""
    return [cls.__name__ for cls in _CONVERTERS]


def bump_generation() -> None:
    """Make every template cached so far stale (a converter or activation was registered)."""
    _generation[0] += 1


def generation() -> int:
    """How many registrations have happened (templates built before are stale)."""
    return _generation[0]
