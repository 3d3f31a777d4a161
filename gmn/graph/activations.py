"""The one activation table: every elementwise activation a parameter graph can record.

One :class:`Activation` record per vocabulary name serves every use: the converter recognises
its module types and functional forms in a network's dataflow, ``gmn.graph.execute`` and the
function samples (:mod:`gmn.graph.neuron_activations`) evaluate ``fn(z, arg)``, and
``ParameterGraph.node_act`` stores its index in :data:`gmn.graph.vocab.ACTIVATIONS`.

``arg`` (``ParameterGraph.node_act_arg``) is the record's one argument: the leaky-ReLU slope,
ELU α, softplus β, or, for records with ``scaled=True`` (sine), the constant the input is
multiplied by (``sin(w0 * x)`` is ``sine`` with argument ω₀). For records with a
``parameter`` (PReLU) it is a parameter of the network, one value per neuron, gathered from the
parameter vector like a bias. Any other setting of a module or
function (softplus ``threshold``, GELU ``approximate``) must equal the record's; a different
value selects another record (``gelu_tanh``) or raises, never silently drops it.

Users add their own with :func:`register_activation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import vocab
from .errors import ConversionError

ARG, INPLACE = "arg", "inplace"


@dataclass(frozen=True)
class Activation:
    """One elementwise activation.

    Attributes:
        name: the vocabulary name (``node_act`` indexes ``vocab.ACTIVATIONS``).
        fn: ``fn(z, arg) -> Tensor`` on any shape.
        modules: module types computing it (their settings are read as attributes).
        functions: functions and ``Tensor`` method names computing it.
        settings: ``{name: default}`` of the keyword settings after the input, in positional
            order; ``ARG`` marks the recorded argument, ``INPLACE`` an in-place flag, anything
            else a value the setting must equal.
        default_arg: the argument when the network does not give one.
        scaled: the argument multiplies the input (``fn(z, a) = f(a * z)``), so a multiplication
            by a constant just before the activation is folded into it.
        parameter: the module parameter holding the argument (PReLU's ``weight``: one slope per
            neuron, or one for all); ``fn`` then receives a tensor that broadcasts over the
            neurons' dimension.
    """

    name: str
    fn: Callable[[Tensor, float], Tensor]
    modules: tuple[type, ...] = ()
    functions: tuple = ()
    settings: Mapping[str, object] = field(default_factory=dict)
    default_arg: float = 0.0
    scaled: bool = False
    parameter: str = ""


class UnknownActivation(nn.Identity):
    """Stands for an activation that a state_dict does not reveal (layouts inferred from keys).

    It is recorded as ``"unknown"`` in the graph; it computes the identity.
    """


def _unknown(z: Tensor, arg: float) -> Tensor:
    raise ConversionError("activation 'unknown' cannot be evaluated: a layout inferred from "
                          "state_dict keys does not say which activation the network used")


def _settings(*pairs) -> dict:
    return dict(pairs)


_BUILTIN = (
    Activation("identity", lambda z, a: z),
    Activation("relu", lambda z, a: torch.relu(z), (nn.ReLU,),
               (F.relu, torch.relu, torch.relu_, "relu", "relu_"),
               _settings(("inplace", INPLACE))),
    Activation("leaky_relu", lambda z, a: F.leaky_relu(z, a), (nn.LeakyReLU,),
               (F.leaky_relu, "leaky_relu"),
               _settings(("negative_slope", ARG), ("inplace", INPLACE)), default_arg=0.01),
    Activation("gelu", lambda z, a: F.gelu(z), (nn.GELU,), (F.gelu,),
               _settings(("approximate", "none"))),
    Activation("tanh", lambda z, a: torch.tanh(z), (nn.Tanh,),
               (torch.tanh, F.tanh, "tanh", "tanh_")),
    Activation("sigmoid", lambda z, a: torch.sigmoid(z), (nn.Sigmoid,),
               (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_")),
    Activation("silu", lambda z, a: F.silu(z), (nn.SiLU,), (F.silu,),
               _settings(("inplace", INPLACE))),
    Activation("elu", lambda z, a: F.elu(z, a), (nn.ELU,), (F.elu,),
               _settings(("alpha", ARG), ("inplace", INPLACE)), default_arg=1.0),
    Activation("softplus", lambda z, a: F.softplus(z, a), (nn.Softplus,), (F.softplus,),
               _settings(("beta", ARG), ("threshold", 20.0)), default_arg=1.0),
    Activation("sine", lambda z, a: torch.sin(a * z), (), (torch.sin, "sin", "sin_"),
               default_arg=1.0, scaled=True),
    Activation("unknown", _unknown, (UnknownActivation,)),
    Activation("gelu_tanh", lambda z, a: F.gelu(z, approximate="tanh"), (nn.GELU,), (F.gelu,),
               _settings(("approximate", "tanh"))),
    Activation("hardswish", lambda z, a: F.hardswish(z), (nn.Hardswish,), (F.hardswish,),
               _settings(("inplace", INPLACE))),
    Activation("hardsigmoid", lambda z, a: F.hardsigmoid(z), (nn.Hardsigmoid,),
               (F.hardsigmoid,), _settings(("inplace", INPLACE))),
    Activation("mish", lambda z, a: F.mish(z), (nn.Mish,), (F.mish,),
               _settings(("inplace", INPLACE))),
    Activation("relu6", lambda z, a: F.relu6(z), (nn.ReLU6,), (F.relu6,),
               _settings(("inplace", INPLACE))),
    Activation("cosine", lambda z, a: torch.cos(a * z), (), (torch.cos, "cos"), default_arg=1.0,
               scaled=True),
    Activation("prelu", lambda z, a: torch.where(z >= 0, z, a * z), (nn.PReLU,),
               parameter="weight"),
)

TABLE: dict[str, Activation] = {}
_BY_MODULE: dict[type, list[Activation]] = {}
_BY_FUNCTION: dict[object, list[Activation]] = {}


def register_activation(name: str, fn: Callable[[Tensor, float], Tensor], *,
                        modules: tuple[type, ...] = (), functions: tuple = (),
                        settings: Mapping[str, object] | None = None, default_arg: float = 0.0,
                        scaled: bool = False) -> Activation:
    """Add an elementwise activation to the table (and to ``vocab.ACTIVATIONS``).

    Args:
        name: a new vocabulary name (appended, so existing indices keep their meaning).
        fn: ``fn(z, arg) -> Tensor``; must compute what the modules/functions compute.
        modules: module types to record as this activation (kept whole when tracing).
        functions: functions or ``Tensor`` method names to record as this activation.
        settings: see :class:`Activation` (``{"w0": gmn.graph.activations.ARG}`` records a
            module's ``w0`` attribute as the argument).
        default_arg: the argument when none is given.
        scaled: ``fn(z, a) = f(a * z)``: a multiplication by a constant just before it is folded
            into the argument.

    Returns:
        the :class:`Activation` record. Templates cached before are not reused.
    """
    if name in TABLE:
        raise ValueError(f"activation {name!r} is already registered")
    record = Activation(name, fn, tuple(modules), tuple(functions), dict(settings or {}),
                        float(default_arg), scaled)
    _add(record)
    from .registry import bump_generation

    bump_generation()
    return record


def _add(record: Activation) -> None:
    for module_type in record.modules:
        if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
            raise TypeError(f"modules must be nn.Module subclasses, got {module_type!r}")
    TABLE[record.name] = record
    if record.name not in vocab.ACTIVATION:
        vocab.ACTIVATION[record.name] = len(vocab.ACTIVATIONS)
        vocab.ACTIVATIONS = (*vocab.ACTIVATIONS, record.name)
    for module_type in record.modules:
        _BY_MODULE.setdefault(module_type, []).append(record)
    for function in record.functions:
        _BY_FUNCTION.setdefault(function, []).append(record)


for _record in _BUILTIN:
    _add(_record)


def is_activation_module(module: nn.Module) -> bool:
    return type(module) in _BY_MODULE


def is_activation_function(target) -> bool:
    try:
        return target in _BY_FUNCTION
    except TypeError:  # unhashable targets are never activations
        return False


def _select(candidates: list[Activation], values: Mapping[str, object], what: str
            ) -> tuple[Activation, float, bool]:
    """The record whose fixed settings ``values`` match; its argument; whether in place."""
    problems = []
    for record in candidates:
        unknown = sorted(set(values) - set(record.settings))
        if unknown:
            problems.append(f"setting {unknown[0]!r} is not understood")
            continue
        arg, inplace, mismatch = record.default_arg, False, None
        for key, default in record.settings.items():
            value = values.get(key, default if default not in (ARG, INPLACE) else None)
            if default == ARG:
                arg = record.default_arg if value is None else value
            elif default == INPLACE:
                inplace = bool(value)
            elif value != default:
                mismatch = f"{key}={value!r}"
        if mismatch is None:
            if not isinstance(arg, (int, float)) or isinstance(arg, bool):
                raise ConversionError(f"{what}: argument {arg!r} is not a number")
            return record, float(arg), inplace
        problems.append(f"{mismatch} is not {record.name!r}")
    raise ConversionError(f"{what} with these settings is not supported ({'; '.join(problems)}); "
                          "register it with gmn.register_activation")


def match_module(module: nn.Module, what: str) -> tuple[Activation, float, bool]:
    """The record of an activation module, its argument and whether it works in place."""
    candidates = _BY_MODULE[type(module)]
    values = {k: getattr(module, k) for k in candidates[0].settings if hasattr(module, k)}
    for record in candidates[1:]:
        values.update({k: getattr(module, k) for k in record.settings if hasattr(module, k)})
    return _select(candidates, values, what)


def match_function(target, args: tuple, kwargs: Mapping[str, object], what: str
                   ) -> tuple[Activation, float, bool]:
    """The record of an activation call ``target(input, *args, **kwargs)`` (constants resolved),
    its argument and whether it works in place (a ``Tensor`` method ending in ``_``)."""
    candidates = _BY_FUNCTION[target]
    names = list(candidates[0].settings)
    if len(args) > len(names):
        raise ConversionError(f"{what}: {len(args)} positional settings, expected at most "
                              f"{len(names)}")
    values = dict(zip(names, args))
    values.update(kwargs)
    record, arg, inplace = _select(candidates, values, what)
    method_inplace = isinstance(target, str) and target.endswith("_")
    function_inplace = getattr(target, "__name__", "").endswith("_")
    return record, arg, inplace or method_inplace or function_inplace


def by_index(index: int) -> Activation:
    """The record of ``vocab.ACTIVATIONS[index]``."""
    return TABLE[vocab.ACTIVATIONS[index]]


def is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
