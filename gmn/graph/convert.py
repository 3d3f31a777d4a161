"""`gmn.from_state_dict`: a network (or a bare state_dict) → its :class:`ParameterGraph`.

Templates are traced once per architecture and cached, keyed on the module classes, every
attribute of every submodule (sizes, ω₀, activation functions, config dataclasses…), the
state_dict's keys, shapes and dtypes, and the encoding; converting another model of the same
architecture only gathers values. A cache hit never changes a result: a model with an attribute
the key cannot capture is traced anew.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ConversionError
from .parameter_graph import ParameterGraph
from .registry import generation
from .template import GraphTemplate

CACHE_SIZE = 128
_cache: OrderedDict[tuple, tuple[GraphTemplate, list]] = OrderedDict()
_ATOMS = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device,
          torch.Size, enum.Enum)
_SKIPPED = {"_parameters", "_buffers", "_modules"}


class _Uncacheable(Exception):
    """An attribute whose content a cache key cannot capture (the template is traced anew)."""


def _key_of(value, keep: list):
    """A hashable key equal for two values exactly when ``forward`` cannot tell them apart.

    Functions and classes are keyed by identity, and ``keep`` holds them so that their id
    cannot be reused while the key lives. Objects of other kinds raise :class:`_Uncacheable`.
    """
    if isinstance(value, _ATOMS):
        return (type(value), value)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_key_of(v, keep) for v in value))
    if isinstance(value, (set, frozenset)):
        return (type(value), frozenset(_key_of(v, keep) for v in value))
    if isinstance(value, dict):
        return (type(value), tuple((_key_of(k, keep), _key_of(v, keep)) for k, v in value.items()))
    if isinstance(value, functools.partial):
        return (functools.partial, _key_of(value.func, keep), _key_of(value.args, keep),
                _key_of(value.keywords, keep))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple((f.name, _key_of(getattr(value, f.name), keep))
                                   for f in dataclasses.fields(value)))
    if type(value).__module__.startswith("transformers.") and hasattr(value, "to_dict"):
        return (type(value), _key_of(value.to_dict(), keep))  # a transformers config
    if inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, type) or (
            inspect.ismethoddescriptor(value)):
        keep.append(value)
        return ("object", id(value))
    raise _Uncacheable


_PLAIN = {bool, int, float, str, type(None)}


def _attributes(m: nn.Module, keep: list) -> tuple:
    out = []
    for k, v in vars(m).items():
        t = type(v)
        if t in _PLAIN:
            out.append((k, t, v))
        elif k in _SKIPPED or (t is OrderedDict or t is dict) and not v:
            continue
        elif (t is tuple or t is list) and all(type(e) is int for e in v):
            out.append((k, t, tuple(v)))  # sizes, strides, paddings
        else:
            out.append((k, _key_of(v, keep)))
    return tuple(out)


def _config(module: nn.Module, keep: list) -> tuple:
    """Every attribute of every submodule (sizes, flags, functions, configs): what ``forward``
    may depend on besides the parameters."""
    out = []
    for name, m in module.named_modules():
        keep.append(type(m))
        out.append((id(type(m)), name, _attributes(m, keep)))
    return tuple(out)


def template_for(model: nn.Module, encoding: str = "position",
                 state_dict: Mapping[str, Tensor] | None = None,
                 concrete_args: dict | None = None) -> GraphTemplate:
    """The cached :class:`GraphTemplate` of ``model``'s architecture (traced on first use).

    The key holds every attribute of every submodule, so two models share a template only if
    their ``forward`` cannot differ; a model with an attribute the key cannot capture (an
    arbitrary object) is traced every time.
    """
    state_dict = model.state_dict() if state_dict is None else state_dict
    keep: list = []
    try:
        key = (encoding, generation(), _config(model, keep), _key_of(concrete_args, keep),
               tuple((k, t.shape, t.dtype) for k, t in state_dict.items()))
    except _Uncacheable:
        return GraphTemplate.from_module(model, encoding, concrete_args)
    found = _cache.get(key)
    if found is None:
        template = GraphTemplate.from_module(model, encoding, concrete_args)
        _cache[key] = (template, keep)
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return template
    _cache.move_to_end(key)
    return found[0]


def _tensors(state_dict: Mapping) -> Mapping[str, Tensor]:
    """``state_dict`` with numpy arrays converted; anything else that is not a usable tensor
    (lists, numbers, None, meta tensors, non-string keys) raises naming the key."""
    converted = None
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ConversionError(f"state_dict key {key!r} is a {type(key).__name__}; keys must "
                                  "be strings (module paths such as '0.weight')")
        if isinstance(value, Tensor):
            if value.is_meta:
                raise ConversionError(f"state_dict entry {key!r} is on the meta device (it has "
                                      "a shape but no values); load or initialise the weights")
            continue
        if isinstance(value, (np.ndarray, np.generic)):
            converted = dict(state_dict) if converted is None else converted
            converted[key] = torch.from_numpy(np.ascontiguousarray(value))
            continue
        raise ConversionError(f"state_dict entry {key!r} is a {type(value).__name__}, not a "
                              "tensor (torch.Tensor or numpy array)")
    return state_dict if converted is None else converted


def from_state_dict(model_or_state_dict, like=None, encoding: str = "position",
                    allow_nonfinite: bool = False, y=None,
                    concrete_args: dict | None = None) -> ParameterGraph:
    """Convert a network to its parameter graph.

    Args:
        model_or_state_dict: an ``nn.Module``, or a state_dict (``Mapping[str, Tensor]``).
        like: for a state_dict, the architecture: an ``nn.Module`` of it or a
            :class:`GraphTemplate`. Without it, the layout of a plain sequential MLP/CNN is
            inferred from keys and shapes (see :mod:`gmn.graph.infer`; activations are recorded
            as ``"unknown"``).
        encoding: ``"position"`` or ``"padded"`` (conv kernels; see ``ParameterGraph``).
        concrete_args: values for ``forward``'s other arguments, fixed while tracing
            (``torch.fx``'s ``concrete_args``).
        allow_nonfinite: accept NaN/inf parameters instead of raising.
        y: optional label stored as ``graph.y`` [1].

    Returns:
        the :class:`ParameterGraph`; ``gmn.to_state_dict`` inverts it exactly.
    """
    if isinstance(model_or_state_dict, nn.Module):
        if like is not None:
            raise ConversionError("pass `like` only with a state_dict, not with a module")
        state_dict = _tensors(model_or_state_dict.state_dict())
        template = template_for(model_or_state_dict, encoding, state_dict, concrete_args)
    elif isinstance(model_or_state_dict, Mapping):
        state_dict = _tensors(model_or_state_dict)
        if isinstance(like, GraphTemplate):
            template = like
        elif isinstance(like, nn.Module):
            template = template_for(like, encoding, concrete_args=concrete_args)
        elif like is None:
            from .infer import infer_module

            template = template_for(infer_module(state_dict, sequential=False), encoding)
            template.metadata["inferred"] = True
        else:
            raise ConversionError(f"`like` must be an nn.Module or a GraphTemplate, got "
                                  f"{type(like).__name__}")
    else:
        raise ConversionError(f"expected an nn.Module or a state_dict, got "
                              f"{type(model_or_state_dict).__name__}")
    return template.graph(state_dict, y=y, allow_nonfinite=allow_nonfinite)
