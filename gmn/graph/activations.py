"""The one activation table: every elementwise activation a parameter graph can record.

One :class:`Activation` record per vocabulary name serves every use: the converter recognises
its module types and functional forms in a network's dataflow, ``gmn.graph.execute`` and the
function samples (:mod:`gmn.graph.function_samples`) evaluate ``fn(z, arg)``, and
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
            neurons' dimension (so does a scaled record's ``fn`` when its input scale is a
            learned parameter, a learned ω₀).
        class_names: qualified names of module classes computing it that gmn does not import
            (Hugging Face's ``transformers.activations.NewGELUActivation`` …).
        derive: computes the argument from the settings instead of an ``ARG`` setting
            (RReLU in eval mode: the mean of its two slope bounds).
    """

    name: str
    fn: Callable[[Tensor, float], Tensor]
    modules: tuple[type, ...] = ()
    functions: tuple = ()
    settings: Mapping[str, object] = field(default_factory=dict)
    default_arg: float = 0.0
    scaled: bool = False
    parameter: str = ""
    class_names: tuple[str, ...] = ()
    derive: Callable[[Mapping[str, object]], float] | None = None


class UnknownActivation(nn.Identity):
    """Stands for an activation that a state_dict does not reveal (layouts inferred from keys).

    It is recorded as ``"unknown"`` in the graph; it computes the identity.
    """


def _unknown(z: Tensor, arg: float) -> Tensor:
    raise ConversionError("activation 'unknown' cannot be evaluated: a layout inferred from "
                          "state_dict keys does not say which activation the network used")


def _settings(*pairs) -> dict:
    return dict(pairs)


_HF = "transformers.activations."


_BUILTIN = (
    Activation("identity", lambda z, a: z),
    Activation("relu", lambda z, a: torch.relu(z), (nn.ReLU,),
               (F.relu, torch.relu, torch.relu_, "relu", "relu_"),
               _settings(("inplace", INPLACE))),
    Activation("leaky_relu", lambda z, a: F.leaky_relu(z, a), (nn.LeakyReLU,),
               (F.leaky_relu, "leaky_relu"),
               _settings(("negative_slope", ARG), ("inplace", INPLACE)), default_arg=0.01),
    Activation("gelu", lambda z, a: F.gelu(z), (nn.GELU,), (F.gelu,),
               _settings(("approximate", "none")), class_names=(_HF + "GELUActivation",)),
    Activation("tanh", lambda z, a: torch.tanh(z), (nn.Tanh,),
               (torch.tanh, F.tanh, "tanh", "tanh_")),
    Activation("sigmoid", lambda z, a: torch.sigmoid(z), (nn.Sigmoid,),
               (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_")),
    Activation("silu", lambda z, a: F.silu(z), (nn.SiLU,), (F.silu,),
               _settings(("inplace", INPLACE)), class_names=(_HF + "SiLUActivation",)),
    Activation("elu", lambda z, a: F.elu(z, a), (nn.ELU,), (F.elu,),
               _settings(("alpha", ARG), ("inplace", INPLACE)), default_arg=1.0),
    Activation("softplus", lambda z, a: F.softplus(z, a), (nn.Softplus,), (F.softplus,),
               _settings(("beta", ARG), ("threshold", 20.0)), default_arg=1.0),
    Activation("sine", lambda z, a: torch.sin(a * z), (), (torch.sin, "sin", "sin_"),
               default_arg=1.0, scaled=True),
    Activation("unknown", _unknown, (UnknownActivation,)),
    Activation("gelu_tanh", lambda z, a: F.gelu(z, approximate="tanh"), (nn.GELU,), (F.gelu,),
               _settings(("approximate", "tanh")),
               class_names=tuple(_HF + n for n in ("GELUTanh", "PytorchGELUTanh",
                                                    "NewGELUActivation", "FastGELUActivation",
                                                    "AccurateGELUActivation"))),
    Activation("hardswish", lambda z, a: F.hardswish(z), (nn.Hardswish,), (F.hardswish,),
               _settings(("inplace", INPLACE))),
    Activation("hardsigmoid", lambda z, a: F.hardsigmoid(z), (nn.Hardsigmoid,),
               (F.hardsigmoid,), _settings(("inplace", INPLACE))),
    Activation("mish", lambda z, a: F.mish(z), (nn.Mish,), (F.mish,),
               _settings(("inplace", INPLACE)), class_names=(_HF + "MishActivation",)),
    Activation("relu6", lambda z, a: F.relu6(z), (nn.ReLU6,), (F.relu6,),
               _settings(("inplace", INPLACE))),
    Activation("cosine", lambda z, a: torch.cos(a * z), (), (torch.cos, "cos"), default_arg=1.0,
               scaled=True),
    Activation("prelu", lambda z, a: torch.where(z >= 0, z, a * z), (nn.PReLU,),
               parameter="weight"),
    Activation("selu", lambda z, a: F.selu(z), (nn.SELU,), (F.selu, torch.selu, "selu"),
               _settings(("inplace", INPLACE))),
    Activation("softsign", lambda z, a: F.softsign(z), (nn.Softsign,), (F.softsign,)),
    Activation("celu", lambda z, a: F.celu(z, a), (nn.CELU,), (F.celu, torch.celu),
               _settings(("alpha", ARG), ("inplace", INPLACE)), default_arg=1.0),
    Activation("quick_gelu", lambda z, a: z * torch.sigmoid(1.702 * z),
               class_names=(_HF + "QuickGELUActivation",)),
    # clamp(x, a, b) (hardtanh, clip) is recorded as clamp_max(clamp_min(x, a), b)
    Activation("clamp_min", lambda z, a: torch.clamp(z, min=a)),
    Activation("clamp_max", lambda z, a: torch.clamp(z, max=a)),
    Activation("logsigmoid", lambda z, a: F.logsigmoid(z), (nn.LogSigmoid,), (F.logsigmoid,)),
    Activation("tanhshrink", lambda z, a: F.tanhshrink(z), (nn.Tanhshrink,), (F.tanhshrink,)),
    Activation("softshrink", lambda z, a: F.softshrink(z, a), (nn.Softshrink,),
               (F.softshrink,), _settings(("lambd", ARG)), default_arg=0.5),
    Activation("hardshrink", lambda z, a: F.hardshrink(z, a), (nn.Hardshrink,),
               (F.hardshrink,), _settings(("lambd", ARG)), default_arg=0.5),
)
# RReLU in eval mode is a leaky ReLU whose slope is the mean of its bounds
_RRELU = Activation("leaky_relu", lambda z, a: F.leaky_relu(z, a), (nn.RReLU,), (F.rrelu,),
                    _settings(("lower", 1 / 8), ("upper", 1 / 3), ("training", False),
                              ("inplace", INPLACE)),
                    derive=lambda v: (float(v.get("lower", 1 / 8)) + float(v.get("upper", 1 / 3)))
                    / 2)
CLAMPS = {F.hardtanh: ("min_val", "max_val"), F.hardtanh_: ("min_val", "max_val"),
          torch.clamp: ("min", "max"), torch.clip: ("min", "max"), "clamp": ("min", "max"),
          "clip": ("min", "max"), "clamp_": ("min", "max"), "clip_": ("min", "max"),
          torch.clamp_min: ("min",), "clamp_min": ("min",), torch.clamp_max: ("max",),
          "clamp_max": ("max",), nn.Hardtanh: ("min_val", "max_val")}

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
    TABLE.setdefault(record.name, record)
    if record.name not in vocab.ACTIVATION:
        vocab.ACTIVATION[record.name] = len(vocab.ACTIVATIONS)
        vocab.ACTIVATIONS = (*vocab.ACTIVATIONS, record.name)
    for module_type in record.modules:
        _BY_MODULE.setdefault(module_type, []).append(record)
    for function in record.functions:
        _BY_FUNCTION.setdefault(function, []).append(record)
    for name in record.class_names:
        _BY_CLASS_NAME.setdefault(name, []).append(record)


_BY_CLASS_NAME: dict[str, list[Activation]] = {}
for _record in (*_BUILTIN, _RRELU):
    _add(_record)


def _class_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_records(module: nn.Module) -> list[Activation]:
    return _BY_MODULE.get(type(module)) or _BY_CLASS_NAME.get(_class_name(module), [])


def is_activation_module(module: nn.Module) -> bool:
    return bool(_module_records(module)) or type(module) is nn.Hardtanh


def is_activation_function(target) -> bool:
    try:
        return target in _BY_FUNCTION or target in CLAMPS
    except TypeError:  # unhashable targets are never activations
        return False


def clamp_bounds(target, args: tuple, kwargs: Mapping[str, object], what: str
                 ) -> tuple[float | None, float | None, bool]:
    """``(low, high, in place)`` of a clamp (``torch.clamp(x, a, b)``, ``F.hardtanh``,
    ``nn.Hardtanh``); a missing bound is ``None``."""
    names = CLAMPS[target]
    values = dict(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k != "inplace"})
    if target in (F.hardtanh, nn.Hardtanh):
        values = {"min_val": -1.0, "max_val": 1.0, **values}
    bounds = [values.get(n) for n in names]
    if len(names) == 1:
        bounds = bounds + [None] if names[0] == "min" else [None] + bounds
    for bound in bounds:
        if bound is not None and not is_finite_number(bound):
            raise ConversionError(f"{what}: bound {bound!r} is not a number (a tensor bound is "
                                  "not supported)")
    if all(b is None for b in bounds):
        raise ConversionError(f"{what} has no bounds")
    inplace = bool(kwargs.get("inplace", False)) or (isinstance(target, str) and target.endswith(
        "_")) or target is F.hardtanh_
    low, high = (None if b is None else float(b) for b in bounds)
    return low, high, inplace


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
        if record.derive is not None:
            arg = record.derive(values)
        for key, default in record.settings.items():
            value = values.get(key, default if default not in (ARG, INPLACE) else None)
            if default == ARG:
                arg = record.default_arg if value is None else value
            elif default == INPLACE:
                inplace = bool(value)
            elif record.derive is not None:
                continue
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
    candidates = _module_records(module)
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
