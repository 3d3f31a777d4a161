"""Errors raised while converting networks to parameter graphs and back."""

from __future__ import annotations

from gmn import GMNError


class ConversionError(GMNError, ValueError):
    """A network, state_dict or graph cannot be converted; the message names the culprit."""


class UnsupportedModuleError(ConversionError):
    """A module with parameters has no registered converter.

    Args:
        path: the module's qualified name in the network (``""`` for the root).
        module_type: the module's class.
        supported: names of the module types that have converters.
    """

    def __init__(self, path: str, module_type: type, supported: list[str], detail: str = ""):
        self.path = path
        self.module_type = module_type
        where = path or "<root>"
        detail = f" ({detail})" if detail else ""
        super().__init__(
            f"module {where!r} of type {module_type.__name__} has parameters but no "
            f"converter{detail}. "
            f"Supported module types: {', '.join(sorted(supported))}. "
            "Register one with gmn.register_converter."
        )
