"""`gmn.from_state_dict`: a network (or a bare state_dict) → its :class:`ParameterGraph`.

Templates are traced once per architecture and cached, keyed on the module classes, their
plain configuration attributes (sizes, ω₀, offsets…), the state_dict's keys, shapes and dtypes,
and the encoding; converting another model of the same architecture only gathers values.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from torch import Tensor, nn

from .errors import ConversionError
from .parameter_graph import ParameterGraph
from .registry import generation
from .template import GraphTemplate

CACHE_SIZE = 128
_cache: OrderedDict[tuple, GraphTemplate] = OrderedDict()
_PLAIN = (int, float, str, bool, type(None))


def _config(module: nn.Module) -> tuple:
    """The plain attributes of every submodule: what ``forward`` may branch on."""
    return tuple(
        (type(m), tuple((k, v if isinstance(v, _PLAIN) else repr(v))
                        for k, v in vars(m).items()
                        if k[0] != "_" and k != "training" and isinstance(v, (*_PLAIN, tuple))))
        for m in module.modules()
    )


def template_for(model: nn.Module, encoding: str = "position",
                 state_dict: Mapping[str, Tensor] | None = None) -> GraphTemplate:
    """The cached :class:`GraphTemplate` of ``model``'s architecture (traced on first use)."""
    state_dict = model.state_dict() if state_dict is None else state_dict
    key = (encoding, generation(), _config(model),
           tuple((k, t.shape, t.dtype) for k, t in state_dict.items()))
    template = _cache.get(key)
    if template is None:
        template = GraphTemplate.from_module(model, encoding)
        _cache[key] = template
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return template


def clear_cache() -> None:
    """Forget every cached template."""
    _cache.clear()


def from_state_dict(model_or_state_dict, like=None, encoding: str = "position",
                    allow_nonfinite: bool = False, y=None) -> ParameterGraph:
    """Convert a network to its parameter graph.

    Args:
        model_or_state_dict: an ``nn.Module``, or a state_dict (``Mapping[str, Tensor]``).
        like: for a state_dict, the architecture: an ``nn.Module`` of it or a
            :class:`GraphTemplate`. Without it, the layout of a plain sequential MLP/CNN is
            inferred from keys and shapes (see :mod:`gmn.graph.infer`; activations are recorded
            as ``"unknown"``).
        encoding: ``"position"`` or ``"padded"`` (conv kernels; see ``ParameterGraph``).
        allow_nonfinite: accept NaN/inf parameters instead of raising.
        y: optional label stored as ``graph.y`` [1].

    Returns:
        the :class:`ParameterGraph`; ``gmn.to_state_dict`` inverts it exactly.
    """
    if isinstance(model_or_state_dict, nn.Module):
        if like is not None:
            raise ConversionError("pass `like` only with a state_dict, not with a module")
        state_dict = model_or_state_dict.state_dict()
        template = template_for(model_or_state_dict, encoding, state_dict)
    elif isinstance(model_or_state_dict, Mapping):
        state_dict = model_or_state_dict
        if isinstance(like, GraphTemplate):
            template = like
        elif isinstance(like, nn.Module):
            template = template_for(like, encoding)
        elif like is None:
            from .infer import infer_module

            template = template_for(infer_module(state_dict), encoding)
            template.metadata["inferred"] = True
        else:
            raise ConversionError(f"`like` must be an nn.Module or a GraphTemplate, got "
                                  f"{type(like).__name__}")
    else:
        raise ConversionError(f"expected an nn.Module or a state_dict, got "
                              f"{type(model_or_state_dict).__name__}")
    return template.graph(state_dict, y=y, allow_nonfinite=allow_nonfinite)
