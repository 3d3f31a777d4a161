"""Networks as typed parameter graphs.

Owns the ``ParameterGraph`` contract and everything that turns a network into one and back;
it stands alone, below ``nn``, ``data``, ``train`` and ``models``.
May import: gmn.large_tensors.

* :mod:`~gmn.graph.parameter_graph`: the contract, ``ParameterGraph``, ``REQUIRED_FIELDS``,
  ``validate_graph`` and ``GraphFieldError``;
* :mod:`~gmn.graph.vocab`: node, edge and activation vocabularies;
* :mod:`~gmn.graph.convert`: ``from_state_dict`` (cached templates);
* :mod:`~gmn.graph.inverse`: ``to_state_dict``;
* :mod:`~gmn.graph.template`: ``GraphTemplate`` (batched conversion, no per-sample loop);
* :mod:`~gmn.graph.weights`: ``Weights``, N networks of one architecture (template, [N, P]
  parameters, integer buffers): the currency of augmentations, permutations and datasets;
* :mod:`~gmn.graph.function_samples`: function samples (every neuron's values at query
  points) and ``network_outputs``, the batched evaluation of MLPs and SIRENs;
* :mod:`~gmn.graph.weight_statistics`: per-layer weight statistics (Unterthiner et al.);
* :mod:`~gmn.graph.trace`, :mod:`~gmn.graph.converters`, :mod:`~gmn.graph.registry`:
  dataflow tracing and the per-module converters (``register_converter``); the tracer's
  table of parameter-free operation handlers, :mod:`~gmn.graph.operations`;
  :mod:`~gmn.graph.shapes` (shape operations), :mod:`~gmn.graph.arithmetic` (activations,
  products, sums, concatenations) and :mod:`~gmn.graph.param_uses` (functional layers and
  parameters used in forward), with :mod:`~gmn.graph.param_tensors` (what a weight
  computed from a parameter is: transposed, scaled, standardised);
* :mod:`~gmn.graph.errors`: ``ConversionError``, ``UnsupportedModuleError``;
* :mod:`~gmn.graph.infer`: layouts of plain sequential state_dicts from their keys
  (``infer_module``);
* :mod:`~gmn.graph.permutation`: hidden-neuron permutations (function-preserving), ``permute``;
* :mod:`~gmn.graph.signs`: hidden-neuron sign flips of odd-activation networks
  (function-preserving), ``flip_signs``, and their canonical form, ``canonicalize_signs``;
* :mod:`~gmn.graph.mixed_batches`: batches of mixed architectures (``batch_groups``,
  ``concat_batches``, ``to_state_dicts``);
* :mod:`~gmn.graph.activations`: the one activation table (``register_activation``);
* :mod:`~gmn.graph.executor`: ``execute(graph, inputs)``, a graph run as its network;
* :mod:`~gmn.graph.substitutes`: traceable equivalents of
  forwards torch.fx cannot trace (transformer encoders, Hugging Face BERT, GPT-2, ViT, DeiT,
  ConvNeXt, MobileNetV2, ResNet).

The names above are importable from ``gmn.graph`` directly; each is loaded on first use, so
``import gmn.graph`` stays fast.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ParameterGraph": "gmn.graph.parameter_graph",
    "REQUIRED_FIELDS": "gmn.graph.parameter_graph",
    "validate_graph": "gmn.graph.parameter_graph",
    "GraphFieldError": "gmn.graph.parameter_graph",
    "from_state_dict": "gmn.graph.convert",
    "to_state_dict": "gmn.graph.inverse",
    "GraphTemplate": "gmn.graph.template",
    "register_converter": "gmn.graph.registry",
    "ConversionError": "gmn.graph.errors",
    "UnsupportedModuleError": "gmn.graph.errors",
    "infer_module": "gmn.graph.infer",
    "permute": "gmn.graph.permutation",
    "flip_signs": "gmn.graph.signs",
    "canonicalize_signs": "gmn.graph.signs",
    "batch_groups": "gmn.graph.mixed_batches",
    "concat_batches": "gmn.graph.mixed_batches",
    "to_state_dicts": "gmn.graph.mixed_batches",
    "register_activation": "gmn.graph.activations",
    "execute": "gmn.graph.executor",
    "Weights": "gmn.graph.weights",
    "network_outputs": "gmn.graph.function_samples",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gmn.graph' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
