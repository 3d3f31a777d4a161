"""Networks as typed parameter graphs.

* :mod:`~gmn.graph.parameter_graph`: the ``ParameterGraph`` field contract;
* :mod:`~gmn.graph.vocab`: node, edge and activation vocabularies;
* :mod:`~gmn.graph.convert`: ``from_state_dict`` (cached templates);
* :mod:`~gmn.graph.inverse`: ``to_state_dict``;
* :mod:`~gmn.graph.template`: ``GraphTemplate`` (batched conversion, no per-sample loop);
* :mod:`~gmn.graph.weights`: ``Weights``, N networks of one architecture (template, [N, P]
  parameters, integer buffers): the currency of augmentations, permutations and datasets;
* :mod:`~gmn.graph.neuron_activations`: function samples (every neuron's values at query
  points) and ``network_outputs``, the batched evaluation of MLPs and SIRENs;
* :mod:`~gmn.graph.weight_statistics`: per-layer weight statistics (Unterthiner et al.);
* :mod:`~gmn.graph.trace`, :mod:`~gmn.graph.converters`, :mod:`~gmn.graph.registry`:
  dataflow tracing and the per-module converters;
* :mod:`~gmn.graph.infer`: layouts of plain sequential state_dicts from their keys;
* :mod:`~gmn.graph.permutation`: hidden-neuron permutations (function-preserving);
* :mod:`~gmn.graph.activations`: the one activation table (``register_activation``);
* :mod:`~gmn.graph.executor`: ``execute(graph, inputs)``, a graph run as its network;
* :mod:`~gmn.graph.substitutes`, :mod:`~gmn.graph.huggingface`: traceable equivalents of
  forwards torch.fx cannot trace (transformer encoders, Hugging Face ResNets).
"""

from __future__ import annotations

import importlib

_LAZY = {"execute": "gmn.graph.executor", "register_activation": "gmn.graph.activations"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gmn.graph' has no attribute {name!r}")
