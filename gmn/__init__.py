"""gmn: graph metanetworks.

Public names are imported lazily so that ``import gmn`` stays fast and each
subpackage can be used on its own.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

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
    # metanetworks (gmn.nn), probes and CKA
    "nn": "gmn.nn",
    "probe": "gmn.probing",
    "cka": "gmn.cka",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.endswith("." + name) else getattr(module, name)
    raise AttributeError(f"module 'gmn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
