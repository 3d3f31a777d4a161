"""Follow a network's real dataflow with ``torch.fx`` and record it in a :class:`GraphBuilder`.

Modules with a registered converter and activation modules are kept whole; everything else is
traced through, so residual additions written in ``forward`` (``x + self.block(x)``) are seen,
and so is the ``forward`` of a subclass of ``nn.Linear``/``nn.Conv2d`` that overrides it: its
``F.linear``/``F.conv2d`` calls on its own parameters are recorded as the layer, with the
transform it applies to its weight (see :mod:`gmn.graph.param_tensors`). Parameter-free
operations (dropout, pooling, flatten, padding, layout changes, additions, products,
concatenations, in-place versions of them) are looked up in the handler tables of
:mod:`gmn.graph.operations`, activations in :mod:`gmn.graph.activations`; any other operation
raises :class:`ConversionError` naming it and the module it sits in, so a graph is never
silently wrong.
"""

from __future__ import annotations

import dataclasses
import operator

import torch
from torch import Tensor, fx, nn

from . import activations as act_table
from . import converters, substitutes
from .arithmetic import Arithmetic
from .builder import GraphBuilder, NeuronGroup, Value
from .errors import ConversionError, UnsupportedModuleError
from .operations import FUNCTION_HANDLERS, HEAD_MODULES, MODULE_HANDLERS, SHAPE_QUERIES
from .param_tensors import BATCH_SIZE_META, ParamTensor, evaluate
from .param_uses import DEFAULTS, DEFAULTS_OF, FUNCTIONAL_LAYERS, ParamUses
from .registry import find_converter, keeps_forward, supported_types
from .shapes import Positions, Shape, ShapeOps, flatten_to, where

BUILTIN_CONVERTERS = converters.BUILTIN | set(substitutes.CONVERTERS.values())  # execute knows


class _Proxy(fx.Proxy):
    """Records ``a += b`` as ``operator.iadd``: torch.fx would record a plain ``add``, and a
    second name bound to ``a`` would then miss the change."""

    def _inplace(self, op, other):
        return self.tracer.create_proxy("call_function", op, (self, other), {})

    def __iadd__(self, other):
        return self._inplace(operator.iadd, other)

    def __isub__(self, other):
        return self._inplace(operator.isub, other)

    def __imul__(self, other):
        return self._inplace(operator.imul, other)

    def __itruediv__(self, other):
        return self._inplace(operator.itruediv, other)


class _Tracer(fx.Tracer):
    proxy_buffer_attributes = True  # ops on buffers are recorded, not run as constants

    def __init__(self):
        super().__init__()
        self.failed_in: tuple[str, type] | None = None

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if substitutes.substitute_for(m) is not None:
            return False
        known = find_converter(m) is not None or act_table.is_activation_module(m)
        if known:
            return True
        if m.__module__.startswith("torch.nn") and not isinstance(m, nn.Sequential):
            return keeps_forward(m, _torch_class(m))  # a torch.nn subclass: its own forward
        return False

    def call_module(self, m: nn.Module, forward, args, kwargs):
        path = self.path_of_module(m)
        _refuse_known(m, path)
        substitute = substitutes.substitute_for(m)
        try:
            if substitute is not None:
                return super().call_module(m, lambda *a, **k: substitute(m, *a, **k), args,
                                           kwargs)
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            self.failed_in = self.failed_in or (path, type(m))  # the innermost module
            raise


def _torch_class(m: nn.Module) -> type:
    """The nearest class of ``m`` defined in torch.nn."""
    return next(c for c in type(m).__mro__ if c.__module__.startswith("torch.nn"))


class _Root(nn.Module):
    """Holds a model that is itself a converted layer (``nn.Linear`` alone) so that tracing
    sees one call to it; its state_dict keys are the model's own (registered under '')."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def trace_into(builder: GraphBuilder, model: nn.Module, concrete_args: dict | None = None
               ) -> tuple[NeuronGroup, NeuronGroup]:
    """Record ``model``'s dataflow; returns the (input, output) neuron groups.

    ``concrete_args``: forward arguments fixed while tracing (``torch.fx`` ``concrete_args``).
    """
    _refuse_known(model, "")
    if find_converter(model) is not None or substitutes.substitute_for(model) is not None:
        return _trace_layer(builder, model)
    tracer = _Tracer()
    try:
        graph = tracer.trace(model, concrete_args=concrete_args)
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001 - fx raises many types; report them as one
        raise _untraceable(model, tracer, error) from error
    return _Walker(builder, model, concrete_args).run(graph)


def _untraceable(model: nn.Module, tracer: _Tracer, error: Exception) -> ConversionError:
    """Where and why torch.fx stopped, in the terms of the user's code."""
    path, module_type = tracer.failed_in or ("", type(model))
    path = _unprefixed(path) if isinstance(tracer.root, _Root) else path
    where = f"module {path!r} ({module_type.__name__})" if path else \
        f"{type(model).__name__}.forward"
    message = str(error).replace("_Proxy", "traced tensor").replace("Proxy", "traced tensor")
    return ConversionError(
        f"torch.fx could not trace {where}: {type(error).__name__}: {message.splitlines()[0]}. "
        "torch.fx cannot follow data-dependent control flow (if/for on tensor values), "
        "item assignment (x[...] = ...), unpacking a shape (B, C, H, W = x.shape) or calls it "
        "cannot record; rewrite that part of forward (x.size(0) instead of unpacking), or "
        "register a converter for the module that contains it")


def extent(value: Value) -> int:
    """Dimensions after the batch one besides the channels (as far as layout matters)."""
    return value.spatial + value.singleton


def _refuse_known(m: nn.Module, path: str) -> None:
    known = substitutes.refusal(m)
    if known:
        below, why = known
        culprit = ".".join(p for p in (path, below) if p)
        raise UnsupportedModuleError(culprit, type(m.get_submodule(below)), supported_types(),
                                     why)


def _trace_layer(builder: GraphBuilder, model: nn.Module) -> tuple[NeuronGroup, NeuronGroup]:
    """A converted layer (or a class traced through a substitute forward) as the whole model:
    its parameters' keys and module paths have no prefix."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(_Root(model))
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001 - fx raises many types; report them as one
        raise _untraceable(model, tracer, error) from error
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr"):
            node.target = _unprefixed(node.target)
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = {k: (_unprefixed(path), kind)
                                            for k, (path, kind) in stack.items()}
    return _Walker(builder, model).run(graph)


def _unprefixed(path: str) -> str:
    """A path under ``_Root`` as the model's own (``model.layers.0`` -> ``layers.0``)."""
    return "" if path == "model" else path[len("model."):] if path.startswith("model.") \
        else path


class _Walker(ShapeOps, Arithmetic, ParamUses):
    def __init__(self, builder: GraphBuilder, model: nn.Module, concrete: dict | None = None):
        self.concrete = concrete or {}
        self.builder = builder
        self.model = model
        self.env: dict[fx.Node, object] = {}
        self.views: dict[fx.Node, fx.Node] = {}  # node -> the node whose storage it shares
        self.inputs: NeuronGroup | None = None

    def run(self, graph: fx.Graph) -> tuple[NeuronGroup, NeuronGroup]:
        self.position = {node: i for i, node in enumerate(graph.nodes)}
        for node in graph.nodes:
            if node.op == "output":
                result = self.env[node.args[0]] if isinstance(node.args[0], fx.Node) else None
                if not isinstance(result, Value):
                    raise ConversionError("the network must return a single tensor computed "
                                          "from its input")
                result = self.settled(result, node)
                self.builder.metadata["output_reads"] = result.reads
                return self.inputs, result.group
            self.builder.path = next(iter(reversed(node.meta.get("nn_module_stack") or {"": 0})))
            self.env[node] = self.visit(node)
        raise ConversionError("the traced network has no output")

    # --- arguments ------------------------------------------------------------------------
    def value(self, arg, node: fx.Node, scaled: bool = False) -> Value:
        """The tensor ``arg`` as read by ``node``; exclusive only if ``node`` is its sole
        reader. A pending multiplication is kept only for a ``scaled`` reader (an activation
        that folds it into its argument); any other reader gets it as a scale node."""
        found = self.env.get(arg) if isinstance(arg, fx.Node) else None
        if isinstance(found, ParamTensor):
            raise ConversionError(f"operation {self.describe(node)} reads {found.keys[0]!r} "
                                  "(a parameter or buffer) where the network input's data is "
                                  "expected")
        if not isinstance(found, Value):
            raise ConversionError(f"operation {self.describe(node)} expects a tensor input")
        if found.group.op == "input" and found.group.input_spatial and not (
                found.spatial or found.singleton or found.flattened or found.tokens):
            found = dataclasses.replace(found, spatial=found.group.input_spatial)
        if not scaled:
            found = self.settled(found, node)
            self.env[arg] = found
        return dataclasses.replace(found, exclusive=found.exclusive and len(arg.users) == 1)

    def settled(self, value: Value, node: fx.Node) -> Value:
        """``value`` with its pending multiplication recorded as a ``scale`` node group."""
        if value.scale == 1.0 and value.scale_param is None:
            return value
        if value.group.size is None and value.scale_param is not None:
            self.size_input(value, value.scale_param.value.numel(), node)
        if value.group.size is None:  # preprocessing of the raw input: replayed, like a pad
            return dataclasses.replace(value, scale=1.0, reads=(
                *value.reads, (torch.mul, (value.scale,), {})))
        out = self.builder.new_group(value.group.size, "scale", value.group.layer + 1)
        weight = None
        if value.scale_param is not None:
            weight = self.scale_indices(value.scale_param, value, out, node)
            if value.scale != 1.0:
                raise ConversionError(f"a constant and a parameter multiply the same tensor "
                                      f"{value.scaled_at}; only one of them is supported")
        out.spec["scale_reciprocal"] = float(value.scale_divides)
        self.builder.identity(value.group, out, "scale", reads=value.reads,
                              constant=value.scale, spatial=extent(value),
                              channels_last=value.channels_last, weight=weight,
                              reciprocal=value.scale_divides)
        return dataclasses.replace(value, group=out, reads=(), scale=1.0, scale_param=None,
                                   scale_divides=False, exclusive=True,
                                   layout_from=extent(value))

    def first(self, node: fx.Node, scaled: bool = False) -> Value:
        """The tensor an operation reads: its first argument, positional or keyword."""
        return self.value(self.first_node(node), node, scaled)

    @staticmethod
    def first_node(node: fx.Node):
        return node.args[0] if node.args else next(iter(node.kwargs.values()), None)

    def constant(self, arg):
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.constant(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self.constant(v) for k, v in arg.items()}
        return arg

    def bind(self, node: fx.Node, names: tuple[str, ...]) -> dict:
        """``node``'s arguments by name (positional and keyword), defaults filled in; tensor
        arguments are their fx nodes, the rest their values."""
        bound = dict(zip(names, node.args))
        bound.update(node.kwargs)
        defaults = {**DEFAULTS, **DEFAULTS_OF.get(node.target, {})}
        out = {}
        for name in names:
            arg = bound.get(name, defaults.get(name))
            found = self.env.get(arg) if isinstance(arg, fx.Node) else None
            out[name] = arg if isinstance(found, (Value, ParamTensor)) else self.constant(arg)
        return out

    def describe(self, node: fx.Node) -> str:
        target = node.target if isinstance(node.target, str) else getattr(
            node.target, "__name__", repr(node.target))
        return f"{target!r} ({node.op} {node.name}) {where(node)}"

    def alias(self, node: fx.Node) -> None:
        """``node`` returns a view of (or the same tensor as) its input."""
        source = self.first_node(node)
        self.views[node] = self.views.get(source, source)

    def mutate(self, node: fx.Node, result: Value) -> Value:
        """An in-place operation: the tensor it modifies now holds ``result``."""
        target = self.first_node(node)
        root = self.views.get(target, target)
        others = {n for n, r in self.views.items() if r is root} | {root}
        others.discard(target)
        here = self.position[node]
        if any(self.position[user] > here for n in others for user in n.users):
            raise ConversionError(f"in-place operation {self.describe(node)} modifies a tensor "
                                  "that is also read later through another name (a view or "
                                  "an alias); write it out of place")
        self.env[target] = result
        return result

    # --- dispatch -------------------------------------------------------------------------
    def visit(self, node: fx.Node):
        if node.op == "placeholder":
            if self.inputs is not None:
                name = node.target.rsplit("_", 1)[0] if node.target not in self.concrete \
                    else node.target  # fx renames a concrete argument 'flag' to 'flag_1'
                if name in self.concrete:
                    return self.concrete[name]
                if node.args:  # an optional argument left at its default
                    return node.args[0]
                raise ConversionError("the network must take a single tensor input; fix the "
                                      "others with concrete_args")
            self.inputs = self.builder.new_group(None, "input", 0)
            return Value(self.inputs, exclusive=False)
        if node.op == "get_attr":
            return self.attribute(node)
        if node.op == "call_module":
            return self.call_module(node, self.model.get_submodule(node.target))
        return self.call_function(node, node.target)

    def attribute(self, node: fx.Node):
        """A parameter or buffer read in ``forward``: a :class:`ParamTensor` when it is in the
        state_dict, else its value (a non-persistent buffer, a constant)."""
        owner_path, _, name = node.target.rpartition(".")
        owner = self.model.get_submodule(owner_path)
        value = getattr(owner, name)
        if node.target in self.builder.shapes:
            return ParamTensor(node, (node.target,), value.detach())
        if isinstance(value, Tensor) and (name in owner._parameters or name in owner._buffers):
            return value.detach()  # an integer or non-persistent buffer: a constant
        if isinstance(value, Tensor):
            raise ConversionError(
                f"a tensor constant is used {where(node)}: a tensor created in forward or kept "
                "as a plain attribute, which the state_dict does not hold; register it as a "
                "parameter or buffer (register_buffer) so the graph can hold it")
        return value

    def call_module(self, node: fx.Node, module: nn.Module):
        converter = find_converter(module)
        if converter is converters.convert_embedding and isinstance(
                self.env.get(self.first_node(node)), Positions):  # a table of positions
            return ParamTensor(node, (f"{node.target}.weight",), module.weight.detach(),
                               stored=True)
        if converter is not None:
            inputs = {a for a in (*node.args, *node.kwargs.values())
                      if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)}
            if len(inputs) > 1:
                raise ConversionError(f"module {node.target!r} reads {len(inputs)} different "
                                      "tensors; converted modules read one (self-attention only)")
            if isinstance(module, nn.MultiheadAttention):
                self.check_attention_call(node)
            elif converter in BUILTIN_CONVERTERS and len(node.args) + len(node.kwargs) > 1:
                raise ConversionError(
                    f"module {node.target!r} ({type(module).__name__}) is called with more "
                    "than its input (e.g. a transposed convolution's output_size); the graph "
                    "records the module's own settings only")
            if converter not in BUILTIN_CONVERTERS:
                self.builder.metadata.setdefault("custom_converters", []).append(node.target)
            self.builder.path = node.target
            value = self.first(node, scaled=converter in converters.FOLDING)
            if value.scale_param is not None:
                value = self.settled(value, node)
            return converter(self.builder, node.target, module, value)
        if type(module) is nn.Hardtanh:
            return self.clamp(node, (module.min_val, module.max_val), {"inplace": module.inplace},
                              nn.Hardtanh)
        if act_table.is_activation_module(module):
            what = f"module {node.target!r} ({type(module).__name__})"
            record, argument, inplace = act_table.match_module(module, what)
            return self.activation(node, record, argument, inplace, module)
        if type(module) in HEAD_MODULES:
            return self.head(node, HEAD_MODULES[type(module)], module.dim)
        if any(True for _ in module.parameters()):
            raise UnsupportedModuleError(node.target, type(module), supported_types())
        handler = MODULE_HANDLERS.get(type(module))
        if handler is not None:
            return handler(self, node, module)
        raise ConversionError(
            f"module {node.target!r} of type {type(module).__name__} is not supported "
            "(no parameters, but an operation the graph cannot express); replace it by "
            "supported operations or register a converter for it")

    def check_attention_call(self, node: fx.Node) -> None:
        """Masks and causal attention change the function: refuse them (the graph has none)."""
        names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
                 "average_attn_weights", "is_causal")
        bound = dict(zip(names, node.args))
        bound.update(node.kwargs)
        for name in ("key_padding_mask", "attn_mask"):
            if bound.get(name) is not None:
                raise ConversionError(f"attention {node.target!r} is called with {name}; "
                                      "masked attention is not supported")
        if bound.get("is_causal", False):
            raise ConversionError(f"attention {node.target!r} is causal; not supported")

    def static(self, node: fx.Node):
        """An operation none of whose inputs is the network's data: a :class:`ParamTensor`
        when it reads parameters, its value when it reads constants only, ``None`` otherwise."""
        found: list = []
        fx.node.map_arg((node.args, node.kwargs), found.append)
        values = [self.env.get(n) for n in found]
        if any(isinstance(v, Value) for v in values):
            return None
        params = [v for v in values if isinstance(v, ParamTensor)]
        if params:
            keys = tuple(dict.fromkeys(k for p in params for k in p.keys))
            try:
                value = evaluate(node, self.model)
            except Exception as error:  # noqa: BLE001 - report any failure as unsupported
                raise ConversionError(f"operation {self.describe(node)} on parameters "
                                      f"{', '.join(keys)} failed ({error})") from error
            return ParamTensor(node, keys, value) if isinstance(value, Tensor) else value
        if self.positions(node, values):
            return Positions()
        if any(isinstance(v, Shape) for v in values):
            return Shape()
        target = node.target
        args, kwargs = self.constant(node.args), self.constant(dict(node.kwargs))
        if node.op == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        if node.op == "call_function":
            return target(*args, **kwargs)
        return None

    def positions(self, node: fx.Node, values: list) -> bool:
        """``torch.arange(T)`` / ``torch.arange(0, T)`` of a (non-batch) size, and its
        unsqueezed, expanded or cast forms: the position ids of a sequence."""
        if node.target is torch.arange:
            args = self.constant(node.args)
            args = args[1:] if len(args) == 2 and args[0] == 0 else args
            return len(args) == 1 and isinstance(args[0], Shape) and not args[0].batch
        return any(isinstance(v, Positions) for v in values) and node.target in (
            "unsqueeze", torch.unsqueeze, "expand", "view", "reshape", "to", "long")

    def call_function(self, node: fx.Node, key):
        """``key``: the function, or the Tensor method's name."""
        head = node.args[0] if node.args else None
        source = self.env.get(head) if isinstance(head, fx.Node) else None
        if key is operator.getitem and isinstance(source, (tuple, list)):
            return source[node.args[1]]
        if key is getattr and node.args[1] in ("device", "dtype") and isinstance(source, Value):
            return self.model_device() if node.args[1] == "device" else self.model_dtype()
        shape_query = key in SHAPE_QUERIES or key is getattr and node.args[1] == "shape"
        if shape_query and isinstance(source, Value) or isinstance(source, Shape):
            return self.shape_query(node, key, source)
        if key in FUNCTIONAL_LAYERS and self.reads_data(node):
            return self.functional_layer(node, key)
        static = self.static(node)
        if static is not None or not self.reads_data(node):
            return static
        if key is operator.getitem and isinstance(source, Value):
            return self.select_token(node)
        if act_table.is_activation_function(key):
            rest = self.constant(tuple(node.args[1:]))
            kwargs = {k: self.constant(v) for k, v in node.kwargs.items() if k != "input"}
            return self.activation_call(node, key, rest, kwargs)
        handler = FUNCTION_HANDLERS.get(key)
        if handler is not None:
            return handler(self, node, key)
        raise ConversionError(f"operation {self.describe(node)} is not supported in a network "
                              "converted to a parameter graph")

    def reads_data(self, node: fx.Node) -> bool:
        """Whether any input of ``node`` is (derived from) the network input."""
        found: list = []
        fx.node.map_arg((node.args, node.kwargs), found.append)
        return any(isinstance(self.env.get(n), Value) for n in found)

    def shape_query(self, node: fx.Node, key, source) -> Shape:
        """``x.size(0)``, ``x.shape[0]``: the batch size; other sizes are not traced."""
        if key is operator.getitem and isinstance(source, Shape):
            batch = self.constant(node.args[1]) == 0
        elif key == "size" and isinstance(source, Value):
            dim = self.constant(node.args[1] if len(node.args) > 1 else node.kwargs.get("dim"))
            batch = dim == 0
        else:
            batch = False
        if batch:
            node.meta[BATCH_SIZE_META] = True
        return Shape(batch)

__all__ = ["trace_into", "where", "flatten_to"]
