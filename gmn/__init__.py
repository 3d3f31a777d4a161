"""gmn: graph metanetworks.

``import gmn`` loads nothing else: every part (``gmn.graph``, ``gmn.nn``, ``gmn.data``, ...) and
the names below are imported on first access, so ``import gmn; gmn.graph.execute`` works and
each part can be used on its own. Every error gmn raises derives from :class:`GMNError` (and
still from the builtin it refines, e.g. ``ValueError``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"


class GMNError(Exception):
    """Base class of every error gmn defines."""


_LAZY = {
    # converters (gmn.graph)
    "ParameterGraph": "gmn.graph.parameter_graph",
    "from_state_dict": "gmn.graph.convert",
    "to_state_dict": "gmn.graph.inverse",
    "GraphTemplate": "gmn.graph.template",
    "Weights": "gmn.graph.weights",
    "UnsupportedModuleError": "gmn.graph.errors",
    "ConversionError": "gmn.graph.errors",
    "register_converter": "gmn.graph.registry",
    "register_activation": "gmn.graph.activations",
    # INR data
    "fit_inrs": "gmn.data.fit",
    "INRDataset": "gmn.data.dataset",
    # probes
    "probe": "gmn.probing",
}


def _parts() -> list[str]:
    """The packages and top-level modules of gmn (``gmn.NAME`` for each)."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if not name.startswith("_"):  # a part of gmn, imported on first access
        try:
            return importlib.import_module(f"gmn.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"gmn.{name}":
                raise
    raise AttributeError(f"module 'gmn' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_parts(), *_LAZY})
