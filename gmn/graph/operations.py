"""The parameter-free operations the tracer records: one table from fx target to handler.

:data:`FUNCTION_HANDLERS` maps a function or Tensor method name (an fx ``call_function`` /
``call_method`` target) to ``handler(walker, node, key) -> value``; :data:`MODULE_HANDLERS`
maps a parameter-free module class (an fx ``call_module`` target's type) to
``handler(walker, node, module) -> value``. ``walker`` is the tracer's graph walker
(:mod:`gmn.graph.trace`): handlers read their inputs through it and record in its builder.
Activations, heads, converted layers, functional layers on parameters and operations on
parameters alone are decided by the walker before these tables are consulted.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from .errors import ConversionError
from .param_tensors import ParamTensor, add_first_row, add_positions
from .param_uses import MATMUL
from .shapes import (
    ADAPTIVE_POOL_FUNCTIONS,
    LOCAL_POOL_FUNCTIONS,
    PAD_MODULES,
    POOL_MODULES,
    POOL_SETTINGS,
    TRANSPOSES,
    tf_same_pad,
)

PASSTHROUGH_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                       nn.AlphaDropout, nn.FeatureAlphaDropout)
DROPOUTS = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout}
PASSTHROUGH_FUNCTIONS = DROPOUTS | {"contiguous", "clone", "detach", torch.clone, "cpu"}
ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_"}
INPLACE_ARITHMETIC = {operator.iadd, operator.isub, operator.imul, operator.itruediv, "add_",
                      "sub_", "mul_", "div_"}
SHAPE_QUERIES = {"size", "dim"}
SQUARES = {torch.square, "square", operator.pow, torch.pow, "pow"}
CASTS = {"float", "to", "type_as", "double"}
HEADS = {F.softmax: "softmax", F.log_softmax: "log_softmax", torch.softmax: "softmax",
         torch.log_softmax: "log_softmax", "softmax": "softmax", "log_softmax": "log_softmax"}
HEAD_MODULES = {nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}
REDUCTIONS = {torch.mean, "mean", torch.amax, "amax", torch.sum, "sum"}
PAD_MODES = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect",
             "Replication": "replicate", "Circular": "circular"}


# --- functions and Tensor methods --------------------------------------------------------------
def _rest(walker, node: fx.Node) -> tuple[tuple, dict]:
    """The constant arguments after the input, positional and keyword."""
    rest = walker.constant(tuple(node.args[1:]))
    kwargs = {k: walker.constant(v) for k, v in node.kwargs.items() if k != "input"}
    return rest, kwargs


def head(walker, node: fx.Node, key):
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    return walker.head(node, HEADS[key], walker.constant(dim))


def passthrough(walker, node: fx.Node, key):
    if key in DROPOUTS:
        check_dropout(walker, node, key)
    walker.alias(node)
    return walker.first(node)


def check_dropout(walker, node: fx.Node, key) -> None:
    """A functional dropout in training mode (``F.dropout(x, 0.5)``: ``training`` defaults
    to True) drops at random even in eval mode; the graph has no place for it."""
    bound = walker.bind(node, ("input", "p", "training", "inplace"))
    p = bound["p"] if node.args[1:] or "p" in node.kwargs else 0.5
    training = bound["training"] if node.args[2:] or "training" in node.kwargs else True
    if training and p:
        raise ConversionError(
            f"{key.__name__} {walker.describe(node)} runs in training mode (training="
            f"{training!r}; F.dropout's default is True), so it drops at random whatever "
            "the module's mode; pass training=self.training")


def add_or_subtract(walker, node: fx.Node, key):
    result = walker.add(node, sign=-1.0 if key in SUB else 1.0)
    return walker.mutate(node, result) if key in INPLACE_ARITHMETIC else result


def multiply_or_divide(walker, node: fx.Node, key):
    result = walker.multiply(node, divide=key in DIV)
    return walker.mutate(node, result) if key in INPLACE_ARITHMETIC else result


def matmul(walker, node: fx.Node, key):
    return walker.matmul(node)


def square(walker, node: fx.Node, key):
    exponent = walker.constant(node.args[1]) if key in (operator.pow, torch.pow, "pow") else 2
    if exponent != 2:
        raise ConversionError(f"power {walker.describe(node)} with exponent {exponent!r} "
                              "is not supported; only squares (a product x * x)")
    return walker.product(node, node.args[0], node.args[0])


def cast(walker, node: fx.Node, key):
    """``x.float()``, ``x.to(dtype)``: nothing to record when the dtype is the model's (a
    cast to another dtype changes the function's precision: refused)."""
    value = walker.first(node)
    args = walker.constant(tuple(node.args[1:]))
    dtype = {"float": torch.float32, "double": torch.float64}.get(key)
    if key == "to":
        found = [a for a in (*args, *walker.constant(dict(node.kwargs)).values())
                 if isinstance(a, torch.dtype)]
        others = [a for a in args if not isinstance(a, (torch.dtype, torch.device, str))]
        dtype = found[0] if found and not others else None
        if not found and not others:  # x.to(device): nothing to record
            dtype = walker.model_dtype()
    if key == "type_as" or dtype != walker.model_dtype():
        raise ConversionError(f"cast {walker.describe(node)} is only supported to the model's "
                              f"own dtype {walker.model_dtype()}")
    walker.alias(node)
    return value


def flatten(walker, node: fx.Node, key):
    start = walker.constant(node.kwargs.get("start_dim",
                                            node.args[1] if len(node.args) > 1 else 0))
    end = walker.constant(node.kwargs.get("end_dim", node.args[2] if len(node.args) > 2 else -1))
    if end != -1:
        raise ConversionError(f"flatten {walker.describe(node)} must flatten to the end")
    value = walker.first(node)
    walker.alias(node)
    return walker.flatten(value, start, node)


def reshape(walker, node: fx.Node, key):
    return walker.reshape(node)


def transpose(walker, node: fx.Node, key):
    return walker.transpose(node)


def squeeze(walker, node: fx.Node, key):
    return walker.squeeze(node)


def unsqueeze(walker, node: fx.Node, key):
    return walker.unsqueeze(node)


def concatenate(walker, node: fx.Node, key):
    return walker.concatenate(node)


def local_pool(walker, node: fx.Node, key):
    rest, kwargs = _rest(walker, node)
    if kwargs.get("return_indices"):
        raise ConversionError(f"pooling {walker.describe(node)} returns indices")
    return walker.local_pool(walker.first(node), key, rest, kwargs, node)


def adaptive_pool(walker, node: fx.Node, key):
    size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
    return walker.adaptive_pool(walker.first(node), key, walker.constant(size), node)


def pad(walker, node: fx.Node, key):
    bound = walker.bind(node, ("input", "pad", "mode", "value"))
    return walker.pad(walker.first(node), bound["pad"], bound["mode"] or "constant",
                      float(bound["value"] or 0.0), node)


def tf_pad(walker, node: fx.Node, key):
    return walker.tf_pad(walker.first(node), walker.constant(tuple(node.args[1:])), node)


def add_table(walker, node: fx.Node, key):
    """``add_positions`` / ``add_first_row`` of a [P, D] table the network holds."""
    table = walker.env.get(node.args[1])
    if not isinstance(table, ParamTensor) or table.value.dim() != 2:
        raise ConversionError(f"{key.__name__} {walker.describe(node)} needs a [P, D] "
                              "table held by the network")
    if key is add_positions:
        return walker.add_parameter(node, node.args[0], table, 1.0)
    return walker.add_parameter(node, node.args[0], table, 1.0, token="first")


def interpolate(walker, node: fx.Node, key):
    bound = walker.bind(node, ("input", "size", "scale_factor", "mode", "align_corners",
                               "recompute_scale_factor", "antialias"))
    bound.pop("input")
    bound = {k: v for k, v in bound.items() if v is not None}
    return walker.upsample(walker.first(node), bound, node)


def reduce(walker, node: fx.Node, key):
    return walker.reduce(node, key)


def _table(entries) -> dict:
    """{key: handler} from (keys, handler) pairs; a key listed twice keeps its first handler."""
    table: dict = {}
    for keys, handler in entries:
        for key in keys:
            table.setdefault(key, handler)
    return table


FUNCTION_HANDLERS = _table([
    (HEADS, head),
    (PASSTHROUGH_FUNCTIONS, passthrough),
    (ADD | SUB, add_or_subtract),
    (MUL | DIV, multiply_or_divide),
    (MATMUL, matmul),
    (SQUARES, square),
    (CASTS, cast),
    ((torch.flatten, "flatten"), flatten),
    (("view", "reshape", torch.reshape), reshape),
    (TRANSPOSES, transpose),
    (("squeeze", torch.squeeze), squeeze),
    (("unsqueeze", torch.unsqueeze), unsqueeze),
    ((torch.cat, torch.concat, torch.concatenate), concatenate),
    (LOCAL_POOL_FUNCTIONS, local_pool),
    (ADAPTIVE_POOL_FUNCTIONS, adaptive_pool),
    ((F.pad,), pad),
    ((tf_same_pad,), tf_pad),
    ((add_positions, add_first_row), add_table),
    ((F.interpolate,), interpolate),
    (REDUCTIONS, reduce),
])


# --- parameter-free modules --------------------------------------------------------------------
def passthrough_module(walker, node: fx.Node, module: nn.Module):
    value = walker.first(node)
    walker.alias(node)
    return value


def flatten_module(walker, node: fx.Node, module: nn.Flatten):
    value = walker.first(node)
    walker.alias(node)
    if module.end_dim != -1:
        raise ConversionError(f"flatten {walker.describe(node)} must flatten to the end")
    return walker.flatten(value, module.start_dim, node)


def pool_module(walker, node: fx.Node, module: nn.Module):
    value = walker.first(node)
    function = POOL_MODULES[type(module)]
    settings = POOL_SETTINGS.get(type(module), ("output_size",))
    if getattr(module, "return_indices", False):
        raise ConversionError(f"pooling {walker.describe(node)} returns indices")
    args = tuple(getattr(module, k) for k in settings)
    if "output_size" in settings:
        return walker.adaptive_pool(value, function, args[0], node)
    return walker.local_pool(value, function, args, {}, node)


def pad_module(walker, node: fx.Node, module: nn.Module):
    kind = next(v for k, v in PAD_MODES.items() if type(module).__name__.startswith(k))
    return walker.pad(walker.first(node), module.padding, kind,
                      float(getattr(module, "value", 0.0)), node)


def upsample_module(walker, node: fx.Node, module: nn.Upsample):
    kwargs = dict(size=module.size, scale_factor=module.scale_factor, mode=module.mode,
                  align_corners=module.align_corners,
                  recompute_scale_factor=module.recompute_scale_factor)
    return walker.upsample(walker.first(node), kwargs, node)


MODULE_HANDLERS = _table([
    (PASSTHROUGH_MODULES, passthrough_module),
    ((nn.Flatten,), flatten_module),
    (POOL_MODULES, pool_module),
    (PAD_MODULES, pad_module),
    ((nn.Upsample,), upsample_module),
])
