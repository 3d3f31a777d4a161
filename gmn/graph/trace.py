"""Follow a network's real dataflow with ``torch.fx`` and record it in a :class:`GraphBuilder`.

Modules with a registered converter and activation modules are kept whole; everything else is
traced through, so residual additions written in ``forward`` (``x + self.block(x)``) are seen.
Parameter-free operations are handled explicitly (activations, dropout, pooling, flatten,
additions); any other operation raises :class:`ConversionError` naming it, so a graph is never
silently wrong.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from . import converters  # noqa: F401 - registers the built-in converters
from .activations import ACTIVATION_FUNCTIONS, ACTIVATION_MODULES
from .builder import GraphBuilder, NeuronGroup, Value
from .errors import ConversionError, UnsupportedModuleError
from .registry import find_converter, supported_types

PASSTHROUGH_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
LOCAL_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
ADAPTIVE_POOL_MODULES = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
                         nn.AdaptiveMaxPool2d)
PASSTHROUGH_FUNCTIONS = {F.dropout, "contiguous", "clone", "detach"}
LOCAL_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d}
ADAPTIVE_POOL_FUNCTIONS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d,
                           F.adaptive_max_pool2d}
ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
SHAPE_QUERIES = {"size", "dim"}


class _Shape:
    """A non-tensor value derived from a tensor's shape (``x.size(0)``, ``x.shape``)."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        known = find_converter(m) is not None or type(m) in ACTIVATION_MODULES
        return known or super().is_leaf_module(m, qualname)


def trace_into(builder: GraphBuilder, model: nn.Module) -> tuple[NeuronGroup, NeuronGroup]:
    """Record ``model``'s dataflow; returns the (input, output) neuron groups."""
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # noqa: BLE001 - fx raises many types; report them as one
        raise ConversionError(
            f"torch.fx could not trace {type(model).__name__}.forward ({error}); convert a "
            "module whose forward has no data-dependent control flow"
        ) from error
    return _Walker(builder, model).run(graph)


class _Walker:
    def __init__(self, builder: GraphBuilder, model: nn.Module):
        self.builder = builder
        self.model = model
        self.env: dict[fx.Node, object] = {}
        self.inputs: NeuronGroup | None = None

    def run(self, graph: fx.Graph) -> tuple[NeuronGroup, NeuronGroup]:
        for node in graph.nodes:
            if node.op == "output":
                result = self.env[node.args[0]] if isinstance(node.args[0], fx.Node) else None
                if not isinstance(result, Value):
                    raise ConversionError("the network must return a single tensor")
                return self.inputs, result.group
            self.env[node] = self.visit(node)
        raise ConversionError("the traced network has no output")

    # --- arguments ------------------------------------------------------------------------
    def value(self, arg, node: fx.Node) -> Value:
        """The tensor ``arg`` as read by ``node``; exclusive only if ``node`` is its sole reader."""
        found = self.env.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(found, Value):
            raise ConversionError(f"operation {self.describe(node)} expects a tensor input")
        exclusive = found.exclusive and len(arg.users) == 1
        return Value(found.group, exclusive, found.spatial, found.flattened)

    def first(self, node: fx.Node) -> Value:
        """The tensor an operation reads: its first argument, positional or keyword."""
        arg = node.args[0] if node.args else next(iter(node.kwargs.values()), None)
        return self.value(arg, node)

    def constant(self, arg):
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.constant(a) for a in arg)
        return arg

    def describe(self, node: fx.Node) -> str:
        target = node.target if isinstance(node.target, str) else getattr(
            node.target, "__name__", repr(node.target))
        return f"{target!r} ({node.op} {node.name})"

    # --- dispatch -------------------------------------------------------------------------
    def visit(self, node: fx.Node):
        if node.op == "placeholder":
            if self.inputs is not None:
                if node.args:  # an optional argument left at its default
                    return node.args[0]
                raise ConversionError("the network must take a single tensor input")
            self.inputs = self.builder.new_group(None, "input", 0)
            return Value(self.inputs, exclusive=False)
        if node.op == "get_attr":
            owner_path, _, name = node.target.rpartition(".")
            owner = self.model.get_submodule(owner_path)
            if name in owner._parameters or name in owner._buffers:
                raise UnsupportedModuleError(owner_path, type(owner), supported_types())
            raise ConversionError(f"tensor constant {node.target!r} used in forward is not "
                                  "supported (register it as a parameter or buffer of a module)")
        if node.op == "call_module":
            return self.call_module(node, self.model.get_submodule(node.target))
        return self.call_function(node, node.target)

    def call_module(self, node: fx.Node, module: nn.Module):
        converter = find_converter(module)
        if converter is not None:
            inputs = {a for a in (*node.args, *node.kwargs.values())
                      if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)}
            if len(inputs) > 1:
                raise ConversionError(f"module {node.target!r} reads {len(inputs)} different "
                                      "tensors; converted modules read one (self-attention only)")
            return converter(self.builder, node.target, module, self.first(node))
        if type(module) in ACTIVATION_MODULES:
            name, argument = ACTIVATION_MODULES[type(module)]
            return self.activation(self.first(node), name, argument(module))
        if any(True for _ in module.parameters()):
            raise UnsupportedModuleError(node.target, type(module), supported_types())
        value = self.first(node)
        if isinstance(module, PASSTHROUGH_MODULES):
            return value
        if isinstance(module, nn.Flatten):
            return self.flatten(value, module.start_dim, node)
        if isinstance(module, LOCAL_POOL_MODULES):
            return value
        if isinstance(module, ADAPTIVE_POOL_MODULES):
            return self.adaptive_pool(value, module.output_size)
        raise ConversionError(
            f"module {node.target!r} of type {type(module).__name__} is not supported "
            "(no parameters, but an operation the graph cannot express)"
        )

    def call_function(self, node: fx.Node, key):
        """``key``: the function, or the Tensor method's name."""
        head = node.args[0] if node.args else None
        source = self.env.get(head) if isinstance(head, fx.Node) else None
        if key is operator.getitem and isinstance(source, tuple):
            return source[node.args[1]]
        shape_query = key in SHAPE_QUERIES or key is getattr and node.args[1] == "shape"
        if shape_query and isinstance(source, Value) or isinstance(source, _Shape):
            return _Shape()
        if key in ACTIVATION_FUNCTIONS:
            name, keyword, default = ACTIVATION_FUNCTIONS[key]
            argument = node.kwargs.get(keyword, default) if keyword else default
            if keyword and len(node.args) > 1 and not isinstance(node.args[1], bool):
                argument = node.args[1]
            return self.activation(self.first(node), name, float(argument))
        if key in PASSTHROUGH_FUNCTIONS:
            return self.first(node)
        if key in ADD:
            return self.add(node)
        if key in (torch.flatten, "flatten"):
            start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
            return self.flatten(self.first(node), start, node)
        if key in ("view", "reshape", torch.reshape):
            return self.reshape(node)
        if key in LOCAL_POOL_FUNCTIONS:
            return self.first(node)
        if key in ADAPTIVE_POOL_FUNCTIONS:
            size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
            return self.adaptive_pool(self.first(node), size)
        if key in (torch.mean, "mean", torch.amax, "amax"):
            return self.reduce(node)
        raise ConversionError(f"operation {self.describe(node)} is not supported in a network "
                              "converted to a parameter graph")

    # --- parameter-free operations --------------------------------------------------------
    def activation(self, value: Value, name: str, argument: float) -> Value:
        group = value.group
        if group.size is None:
            raise ConversionError(f"activation {name!r} applied to the raw network input")
        if not (value.exclusive and group.act == "identity"):
            new = self.builder.new_group(group.size, "activation", group.layer + 1)
            self.builder.identity(group, new, "identity")
            group = new
        group.act, group.act_arg, group.stage = name, argument, "act"
        return Value(group, True, value.spatial, value.flattened)

    def add(self, node: fx.Node) -> Value:
        left, right = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        tensors = [a for a in (left, right)
                   if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)]
        if len(tensors) == 1:
            return self.add_constant(node, tensors[0], right if tensors[0] is left else left)
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size != b.group.size or a.spatial != b.spatial or a.flattened != b.flattened:
            raise ConversionError(
                f"addition {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or different layouts) is not supported"
            )
        carriers = [v for v in (a, b) if v.exclusive and v.group.stage in ("fresh", "norm")]
        if a.group is not b.group and carriers:
            result = max(carriers, key=lambda v: v.group.layer)
            skip = b if result is a else a
            self.builder.identity(skip.group, result.group, "residual")
            result.group.layer = max(result.group.layer, skip.group.layer + 1)
        else:
            layer = max(a.group.layer, b.group.layer) + 1
            result = Value(self.builder.new_group(a.group.size, "sum", layer), True,
                           a.spatial, a.flattened)
            self.builder.identity(a.group, result.group, "residual")
            self.builder.identity(b.group, result.group, "residual")
        result.group.stage = "sum"
        return Value(result.group, True, result.spatial, result.flattened)

    def add_constant(self, node: fx.Node, tensor: fx.Node, constant) -> Value:
        """A constant added to the network's output is architecture: recorded, not a weight."""
        if not (isinstance(constant, (int, float)) and all(u.op == "output" for u in node.users)):
            raise ConversionError(
                f"operation {self.describe(node)} adds a constant inside the network; only a "
                "constant offset on the output is supported"
            )
        offset = self.builder.metadata.get("output_offset", 0.0) + float(constant)
        self.builder.metadata["output_offset"] = offset
        found = self.env[tensor]
        return Value(found.group, found.exclusive, found.spatial, found.flattened)

    def flatten(self, value: Value, start_dim: int, node: fx.Node) -> Value:
        if start_dim != 1:
            raise ConversionError(f"flatten {self.describe(node)} must start at dimension 1, "
                                  f"not {start_dim}")
        if value.spatial:
            return Value(value.group, value.exclusive, 0, True)
        return value

    def reshape(self, node: fx.Node) -> Value:
        """``x.view(x.size(0), -1)`` and friends: a flatten from dimension 1."""
        value = self.first(node)
        shape = self.constant(node.args[1:])
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        if len(shape) != 2 or not isinstance(shape[0], _Shape) or shape[1] != -1:
            raise ConversionError(f"reshape {self.describe(node)} is not supported; only "
                                  "x.view(x.size(0), -1) / torch.flatten(x, 1) are")
        return self.flatten(value, 1, node)

    def adaptive_pool(self, value: Value, size) -> Value:
        sizes = size if isinstance(size, (tuple, list)) else (size,)
        if all(s == 1 for s in sizes):
            return Value(value.group, value.exclusive, 0, value.flattened)
        return value

    def reduce(self, node: fx.Node) -> Value:
        """A mean or max over all spatial dimensions is global pooling."""
        value = self.first(node)
        dims = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        rank = value.spatial + 2
        resolved = sorted({d % rank for d in dims if isinstance(d, int)})
        if value.spatial == 0 or resolved != list(range(2, rank)):
            raise ConversionError(f"reduction {self.describe(node)} over dims {dims} is not "
                                  "supported; only a mean/max over all spatial dimensions is")
        return Value(value.group, value.exclusive, 0, value.flattened)
