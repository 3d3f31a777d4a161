"""Follow a network's real dataflow with ``torch.fx`` and record it in a :class:`GraphBuilder`.

Modules with a registered converter and activation modules are kept whole; everything else is
traced through, so residual additions written in ``forward`` (``x + self.block(x)``) are seen,
and so is the ``forward`` of a subclass of ``nn.Linear``/``nn.Conv2d`` that overrides it: its
``F.linear``/``F.conv2d`` calls on its own parameters are recorded as the layer, with the
transform it applies to its weight (see :mod:`gmn.graph.param_tensors`). Parameter-free
operations are handled explicitly (activations, dropout, pooling, flatten, padding, layout
changes, additions, products, concatenations, in-place versions of them); any other operation
raises :class:`ConversionError` naming it and the module it sits in, so a graph is never
silently wrong.
"""

from __future__ import annotations

import dataclasses
import operator

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from . import activations as act_table
from . import converters, huggingface
from .builder import Axis, GraphBuilder, NeuronGroup, Value
from .converters import Norm, Weight
from .errors import ConversionError, UnsupportedModuleError
from .param_tensors import (
    BATCH_SIZE_META,
    ParamTensor,
    add_first_row,
    add_positions,
    evaluate,
    identify,
)
from .registry import find_converter, keeps_forward, supported_types
from .shapes import (
    ADAPTIVE_POOL_FUNCTIONS,
    LAYOUT,
    LOCAL_POOL_FUNCTIONS,
    PAD_MODULES,
    POOL_MODULES,
    POOL_SETTINGS,
    TRANSPOSES,
    Shape,
    ShapeOps,
    flatten_to,
    prepend_tokens,
    tf_same_pad,
)
from .substitutes import substitute_for

PASSTHROUGH_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                       nn.AlphaDropout, nn.FeatureAlphaDropout)
PASSTHROUGH_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
                         "contiguous", "clone", "detach", torch.clone}
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
MATMUL = {torch.matmul, operator.matmul, torch.mm, "matmul", "mm"}
FUNCTIONAL_LAYERS = {  # functional layers on parameters, with their argument names
    F.linear: ("input", "weight", "bias"),
    F.conv1d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.conv2d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.layer_norm: ("input", "normalized_shape", "weight", "bias", "eps"),
    F.rms_norm: ("input", "normalized_shape", "weight", "eps"),
    F.group_norm: ("input", "num_groups", "weight", "bias", "eps"),
    F.batch_norm: ("input", "running_mean", "running_var", "weight", "bias", "training",
                   "momentum", "eps"),
    F.instance_norm: ("input", "running_mean", "running_var", "weight", "bias",
                      "use_input_stats", "momentum", "eps"),
    F.embedding: ("input", "weight", "padding_idx", "max_norm"),
    F.prelu: ("input", "weight"),
}
DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "eps": 1e-5,
            "weight": None, "running_mean": None, "running_var": None, "training": False,
            "momentum": 0.1, "use_input_stats": True, "padding_idx": None, "max_norm": None}
DEFAULTS_OF = {F.rms_norm: {"eps": None}}  # where a function's default differs
BUILTIN_CONVERTERS = converters.BUILTIN | set(huggingface.CONVERTERS.values())  # execute knows


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
        if substitute_for(m) is not None:
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
        substitute = substitute_for(m)
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
    if find_converter(model) is not None or substitute_for(model) is not None:
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


def _extent(value: Value) -> int:
    """Dimensions after the batch one besides the channels (as far as layout matters)."""
    return value.spatial + value.singleton


def _refuse_known(m: nn.Module, path: str) -> None:
    known = huggingface.refusal(m)
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


def where(node: fx.Node) -> str:
    """``"in module 'block.1' (UserSine)"`` from fx's module stack, or ``"in forward"``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "in the top-level forward"
    path, module_type = list(stack.values())[-1]
    name = getattr(module_type, "__name__", str(module_type))
    return f"in module {path!r} ({name})"


def _is_number(value) -> bool:
    return act_table.is_finite_number(value)


class _Walker(ShapeOps):
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
        if value.group.size is None:
            raise ConversionError(f"a multiplication of the raw network input {value.scaled_at} "
                                  "before any layer has read it (its size is not known)")
        out = self.builder.new_group(value.group.size, "scale", value.group.layer + 1)
        weight = None
        if value.scale_param is not None:
            weight = self.scale_indices(value.scale_param, value, out, node)
            if value.scale != 1.0:
                raise ConversionError(f"a constant and a parameter multiply the same tensor "
                                      f"{value.scaled_at}; only one of them is supported")
        out.spec["scale_reciprocal"] = float(value.scale_divides)
        self.builder.identity(value.group, out, "scale", reads=value.reads,
                              constant=value.scale, spatial=_extent(value),
                              channels_last=value.channels_last, weight=weight,
                              reciprocal=value.scale_divides)
        return dataclasses.replace(value, group=out, reads=(), scale=1.0, scale_param=None,
                                   scale_divides=False, exclusive=True,
                                   layout_from=_extent(value))

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
        if converter is not None:
            inputs = {a for a in (*node.args, *node.kwargs.values())
                      if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)}
            if len(inputs) > 1:
                raise ConversionError(f"module {node.target!r} reads {len(inputs)} different "
                                      "tensors; converted modules read one (self-attention only)")
            if isinstance(module, nn.MultiheadAttention):
                self.check_attention_call(node)
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
        if type(module) in PASSTHROUGH_MODULES:
            value = self.first(node)
            self.alias(node)
            return value
        if type(module) is nn.Flatten:
            value = self.first(node)
            self.alias(node)
            if module.end_dim != -1:
                raise ConversionError(f"flatten {self.describe(node)} must flatten to the end")
            return self.flatten(value, module.start_dim, node)
        if type(module) in POOL_MODULES:
            value = self.first(node)
            function = POOL_MODULES[type(module)]
            settings = POOL_SETTINGS.get(type(module), ("output_size",))
            if getattr(module, "return_indices", False):
                raise ConversionError(f"pooling {self.describe(node)} returns indices")
            args = tuple(getattr(module, k) for k in settings)
            if "output_size" in settings:
                return self.adaptive_pool(value, function, args[0], node)
            return self.local_pool(value, function, args, {}, node)
        if type(module) in PAD_MODULES:
            mode = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect",
                    "Replication": "replicate", "Circular": "circular"}
            kind = next(v for k, v in mode.items() if type(module).__name__.startswith(k))
            return self.pad(self.first(node), module.padding, kind,
                            float(getattr(module, "value", 0.0)), node)
        if type(module) is nn.Upsample:
            kwargs = dict(size=module.size, scale_factor=module.scale_factor, mode=module.mode,
                          align_corners=module.align_corners,
                          recompute_scale_factor=module.recompute_scale_factor)
            return self.upsample(self.first(node), kwargs, node)
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
        if any(isinstance(v, Shape) for v in values):
            return Shape()
        target = node.target
        args, kwargs = self.constant(node.args), self.constant(dict(node.kwargs))
        if node.op == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        if node.op == "call_function":
            return target(*args, **kwargs)
        return None

    def call_function(self, node: fx.Node, key):
        """``key``: the function, or the Tensor method's name."""
        head = node.args[0] if node.args else None
        source = self.env.get(head) if isinstance(head, fx.Node) else None
        if key is operator.getitem and isinstance(source, (tuple, list)):
            return source[node.args[1]]
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
        if key in HEADS:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            return self.head(node, HEADS[key], self.constant(dim))
        if key in PASSTHROUGH_FUNCTIONS:
            self.alias(node)
            return self.first(node)
        inplace = key in INPLACE_ARITHMETIC
        if key in ADD or key in SUB:
            result = self.add(node, sign=-1.0 if key in SUB else 1.0)
            return self.mutate(node, result) if inplace else result
        if key in MUL or key in DIV:
            result = self.multiply(node, divide=key in DIV)
            return self.mutate(node, result) if inplace else result
        if key in MATMUL:
            return self.matmul(node)
        if key in SQUARES:
            exponent = self.constant(node.args[1]) if key in (operator.pow, torch.pow, "pow") \
                else 2
            if exponent != 2:
                raise ConversionError(f"power {self.describe(node)} with exponent {exponent!r} "
                                      "is not supported; only squares (a product x * x)")
            return self.product(node, node.args[0], node.args[0])
        if key in CASTS:
            return self.cast(node, key)
        if key in (torch.flatten, "flatten"):
            start = self.constant(node.kwargs.get("start_dim",
                                                  node.args[1] if len(node.args) > 1 else 0))
            end = self.constant(node.kwargs.get("end_dim",
                                                node.args[2] if len(node.args) > 2 else -1))
            if end != -1:
                raise ConversionError(f"flatten {self.describe(node)} must flatten to the end")
            value = self.first(node)
            self.alias(node)
            return self.flatten(value, start, node)
        if key in ("view", "reshape", torch.reshape):
            return self.reshape(node)
        if key in TRANSPOSES:
            return self.transpose(node)
        if key in ("squeeze", torch.squeeze):
            return self.squeeze(node)
        if key in ("unsqueeze", torch.unsqueeze):
            return self.unsqueeze(node)
        if key in (torch.cat, torch.concat, torch.concatenate):
            return self.concatenate(node)
        if key in LOCAL_POOL_FUNCTIONS:
            rest = self.constant(tuple(node.args[1:]))
            kwargs = {k: self.constant(v) for k, v in node.kwargs.items() if k != "input"}
            if kwargs.get("return_indices"):
                raise ConversionError(f"pooling {self.describe(node)} returns indices")
            return self.local_pool(self.first(node), key, rest, kwargs, node)
        if key in ADAPTIVE_POOL_FUNCTIONS:
            size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
            return self.adaptive_pool(self.first(node), key, self.constant(size), node)
        if key is F.pad:
            bound = self.bind(node, ("input", "pad", "mode", "value"))
            return self.pad(self.first(node), bound["pad"], bound["mode"] or "constant",
                            float(bound["value"] or 0.0), node)
        if key is tf_same_pad:
            return self.tf_pad(self.first(node), self.constant(tuple(node.args[1:])), node)
        if key in (add_positions, add_first_row):
            table = self.env.get(node.args[1])
            if not isinstance(table, ParamTensor) or table.value.dim() != 2:
                raise ConversionError(f"{key.__name__} {self.describe(node)} needs a [P, D] "
                                      "table held by the network")
            if key is add_positions:
                return self.add_parameter(node, node.args[0], table, 1.0)
            return self.add_parameter(node, node.args[0], table, 1.0, token="first")
        if key is F.interpolate:
            bound = self.bind(node, ("input", "size", "scale_factor", "mode", "align_corners",
                                     "recompute_scale_factor", "antialias"))
            bound.pop("input")
            bound = {k: v for k, v in bound.items() if v is not None}
            return self.upsample(self.first(node), bound, node)
        if key in (torch.mean, "mean", torch.amax, "amax"):
            return self.reduce(node, key)
        raise ConversionError(f"operation {self.describe(node)} is not supported in a network "
                              "converted to a parameter graph")

    def cast(self, node: fx.Node, key) -> Value:
        """``x.float()``, ``x.to(dtype)``: nothing to record when the dtype is the model's (a
        cast to another dtype changes the function's precision: refused)."""
        value = self.first(node)
        args = self.constant(tuple(node.args[1:]))
        dtype = {"float": torch.float32, "double": torch.float64}.get(key)
        if key == "to":
            found = [a for a in (*args, *self.constant(dict(node.kwargs)).values())
                     if isinstance(a, torch.dtype)]
            others = [a for a in args if not isinstance(a, (torch.dtype, torch.device, str))]
            dtype = found[0] if found and not others else None
        if key == "type_as" or dtype != self.model_dtype():
            raise ConversionError(f"cast {self.describe(node)} is only supported to the model's "
                                  f"own dtype {self.model_dtype()}")
        self.alias(node)
        return value

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

    # --- parameter-free operations --------------------------------------------------------
    def activation_call(self, node: fx.Node, key, rest: tuple, kwargs: dict) -> Value:
        what = f"operation {self.describe(node)}"
        if key in act_table.CLAMPS:
            return self.clamp(node, rest, kwargs)
        record, argument, inplace = act_table.match_function(key, rest, kwargs, what)
        return self.activation(node, record, argument, inplace)

    def clamp(self, node: fx.Node, rest: tuple, kwargs: dict, target=None) -> Value:
        """``clamp(x, a, b)`` (``F.hardtanh``, ``torch.clamp``, ``nn.Hardtanh``): ``clamp_max``
        after ``clamp_min``, one argument each."""
        low, high, inplace = act_table.clamp_bounds(target or node.target, rest, kwargs,
                                                    f"operation {self.describe(node)}")
        result = None
        for name, bound in (("clamp_min", low), ("clamp_max", high)):
            if bound is not None:
                record = act_table.TABLE[name]
                result = self.activation(node, record, bound, False, chained=result)
        return self.mutate(node, result) if inplace else result

    def activation(self, node: fx.Node, record, argument: float, inplace: bool,
                   module: nn.Module | None = None, chained: Value | None = None) -> Value:
        value = chained if chained is not None else self.first(node, scaled=record.scaled)
        learned = None
        if value.scale_param is not None and value.scale_divides:
            value = self.settled(value, node)
        if value.scale_param is not None:
            if value.scale != 1.0:
                raise ConversionError(f"activation {self.describe(node)} reads a constant and "
                                      "a parameter multiplied together; only one of them is "
                                      "supported as its input scale")
            learned = value.scale_param
        elif value.scale != 1.0:
            argument = argument * value.scale
        group = value.group
        if group.size is None:
            raise ConversionError(f"activation {record.name!r} applied to the raw network input "
                                  f"{where(node)}; a parameter graph's input neurons carry no "
                                  "function")
        # an elementwise function commutes with trailing flatten/squeeze: apply it before them
        cut = len(value.reads)
        while cut and value.reads[cut - 1][0] in LAYOUT:
            cut -= 1
        before, after = value.reads[:cut], value.reads[cut:]
        spatial = value.layout_from if after else _extent(value)
        if not (value.exclusive and group.act == "identity" and not before and (
                chained is None)):
            new = self.builder.new_group(group.size, "activation", group.layer + 1)
            self.builder.identity(group, new, "identity", reads=before, spatial=spatial,
                                  channels_last=value.channels_last)
            group = new
        if record.parameter:
            argument = self.learned_argument(node.target, module, record, group, value)
        elif learned is not None:
            argument = self.scale_indices(learned, value, group, node)
        group.act, group.act_arg, group.stage = record.name, argument, "act"
        result = Value(group, True, value.spatial, value.flattened, after,
                       singleton=value.singleton, layout_from=value.layout_from,
                       tokens=value.tokens, channels_last=value.channels_last)
        return self.mutate(node, result) if inplace else result

    def learned_argument(self, path: str, module: nn.Module, record, group: NeuronGroup,
                         value: Value) -> Tensor:
        """[size] flat indices of an activation's parameter (PReLU's slopes): one per neuron,
        moving with it under permutations, or one shared by all neurons."""
        key = f"{path}.{record.parameter}" if path else record.parameter
        count = getattr(module, record.parameter).numel()
        if count == 1:
            return self.builder.param(key, (None,)).expand(group.size)
        if count != group.size or value.tokens or value.flattened:
            raise ConversionError(
                f"{type(module).__name__} {path!r} has {count} parameters for {group.size} "
                "neurons" + (" of a token sequence (they would index its tokens)"
                             if value.tokens else "") + "; one per channel or one is supported")
        return self.builder.param(key, (Axis(group.gid),))

    def scale_indices(self, tensor: ParamTensor, value: Value, group: NeuronGroup,
                      node: fx.Node) -> Tensor:
        """[size] flat indices of a parameter multiplying the neurons of ``value`` (one per
        channel, broadcast along the channel dimension, or one for all)."""
        found = identify(tensor, self.model, f"the factor {tensor.keys[0]!r} "
                                             f"{where(node)}")
        if found.transform is not None or found.transposed:
            raise ConversionError(f"the factor {found.key!r} {where(node)} is transformed "
                                  "before use; only a stored parameter can scale neurons")
        shape = tuple(tensor.value.shape)
        count = tensor.value.numel()
        if count == 1:
            index = self.builder.param(found.key, (None,) * len(shape), scalar=True)
            self.builder.share(index)
            return index.reshape(1).expand(group.size)
        channel = _channel_position(value)
        trimmed = shape[next((i for i, s in enumerate(shape) if s != 1), len(shape)):]
        if count != group.size or len(trimmed) != -channel or (
                value.flattened or value.tokens and channel != -1):
            raise ConversionError(
                f"{found.key!r} of shape {shape} multiplies {group.size} neurons "
                f"{where(node)}; one factor per channel (shape {_channel_shape(value, group)}) or "
                "one for all is supported")
        axes = [None] * len(shape)
        axes[len(shape) + channel] = Axis(group.gid)
        return self.builder.param(found.key, tuple(axes)).reshape(-1)

    def multiply(self, node: fx.Node, divide: bool = False) -> Value:
        """``c * x`` and ``x * p`` (a parameter): a pending scale, folded into the next scaled
        activation or recorded as a ``scale`` node group; ``a * b`` of two tensors of the
        network: a ``product`` node group (a gate, squeeze-and-excitation)."""
        left = node.args[0]
        right = node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        operands = [self.env.get(a) if isinstance(a, fx.Node) else a for a in (left, right)]
        tensors = [a for a, v in zip((left, right), operands) if isinstance(v, Value)]
        if len(tensors) == 2:
            if divide:
                raise ConversionError(f"division {self.describe(node)} of two tensors is not "
                                      "supported")
            return self.product(node, *tensors)
        other = operands[1] if tensors[0] is left else operands[0]
        if divide and tensors[0] is not left:
            raise ConversionError(f"division {self.describe(node)} by a tensor of the network "
                                  "is not supported")
        found = self.value(tensors[0], node, scaled=True)
        if found.scale_param is not None and not isinstance(other, ParamTensor):
            found = self.settled(found, node)
        if isinstance(other, ParamTensor):
            if found.scale_param is not None or found.scale != 1.0:
                found = self.settled(found, node)
            return dataclasses.replace(found, scale_param=other, scale_divides=divide,
                                       scaled_at=where(node))
        if not _is_number(other):
            raise ConversionError(f"operation {self.describe(node)} multiplies by "
                                  f"{type(other).__name__}; only numbers, parameters and "
                                  "tensors of the network are supported")
        factor = 1.0 / float(other) if divide else float(other)
        return dataclasses.replace(found, scale=found.scale * factor, scaled_at=where(node))

    def product(self, node: fx.Node, left: fx.Node, right: fx.Node) -> Value:
        """The elementwise product of two tensors: a ``product`` group fed one to one by both
        (``product`` edges); a [B, C, 1, 1] gate broadcasts over the positions of [B, C, H, W]."""
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size is None or b.group.size is None:
            raise ConversionError(f"product {self.describe(node)} of the raw network input: its "
                                  "size is not known before a layer reads it; let a layer read "
                                  "the input first")
        big, small = (a, b) if a.spatial >= b.spatial else (b, a)
        same = (a.spatial == b.spatial and a.singleton == b.singleton)
        gate = small.spatial == 0 and small.singleton == big.spatial and not big.singleton
        if a.group.size != b.group.size or a.flattened != b.flattened or not (same or gate) or (
                a.tokens != b.tokens or a.channels_last != b.channels_last):
            raise ConversionError(
                f"product {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or of different layouts) is not supported; only tensors of the same neurons, "
                "or a per-channel gate [B, C, 1, 1] of a map [B, C, H, W], multiply")
        layer = max(a.group.layer, b.group.layer) + 1
        out = self.builder.new_group(a.group.size, "product", layer)
        out.combine = "product"
        for operand in (a, b):
            self.builder.identity(operand.group, out, "product", reads=operand.reads,
                                  spatial=_extent(operand), channels_last=operand.channels_last)
        out.stage = "sum"
        return Value(out, True, big.spatial, big.flattened, singleton=big.singleton,
                     tokens=big.tokens, channels_last=big.channels_last)

    def head(self, node: fx.Node, name: str, dim) -> Value:
        """A softmax / log-softmax over the output features: recorded, not a weight."""
        value = self.first(node)
        if not all(u.op == "output" for u in node.users):
            raise ConversionError(f"{name} {self.describe(node)} is only supported as the "
                                  "network's last operation")
        if dim not in (1, -1) or (dim == -1 and value.spatial):
            raise ConversionError(f"{name} {self.describe(node)} must run over the feature "
                                  f"dimension (dim=1 or -1), not dim={dim}")
        self.builder.metadata["output_head"] = name
        reads = (*value.reads, (getattr(F, name), (dim,), {}))
        return Value(value.group, value.exclusive, value.spatial, value.flattened, reads)

    def add(self, node: fx.Node, sign: float = 1.0) -> Value:
        left = node.args[0]
        right = node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        alpha = self.constant(node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1))
        if not _is_number(alpha):
            raise ConversionError(f"operation {self.describe(node)}: alpha={alpha!r} is not a "
                                  "number")
        weight = sign * float(alpha)
        operands = [self.env.get(a) if isinstance(a, fx.Node) else a for a in (left, right)]
        tensors = [a for a, v in zip((left, right), operands) if isinstance(v, Value)]
        if len(tensors) == 1:
            other = operands[1] if tensors[0] is left else operands[0]
            if tensors[0] is not left and sign != 1.0:
                return self.subtract_from(node, tensors[0], other, weight)
            if isinstance(other, ParamTensor):
                return self.add_parameter(node, tensors[0], other, weight)
            return self.add_constant(node, tensors[0], weight * other if _is_number(other)
                                     else other)
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size != b.group.size or _extent(a) != _extent(b) or a.flattened or (
                b.flattened) or a.channels_last != b.channels_last:
            raise ConversionError(
                f"addition {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or different layouts) is not supported"
            )
        carriers = [v for v in (a, b) if v.exclusive and v.group.stage in ("fresh", "norm")
                    and not v.reads and v.group.combine == "sum" and (v is a or weight == 1.0)]
        if a.group is not b.group and carriers:
            result = max(carriers, key=lambda v: v.group.layer)
            skip = b if result is a else a
            self.builder.identity(skip.group, result.group, "residual", reads=skip.reads,
                                  constant=weight if skip is b else 1.0, spatial=_extent(a),
                                  channels_last=a.channels_last)
            result.group.layer = max(result.group.layer, skip.group.layer + 1)
        else:
            layer = max(a.group.layer, b.group.layer) + 1
            result = Value(self.builder.new_group(a.group.size, "sum", layer), True,
                           a.spatial, a.flattened, singleton=a.singleton,
                           channels_last=a.channels_last)
            self.builder.identity(a.group, result.group, "residual", reads=a.reads,
                                  spatial=_extent(a), channels_last=a.channels_last)
            self.builder.identity(b.group, result.group, "residual", reads=b.reads,
                                  constant=weight, spatial=_extent(b),
                                  channels_last=b.channels_last)
        result.group.stage = "sum"
        return Value(result.group, True, result.spatial, result.flattened,
                     singleton=result.singleton, tokens=a.tokens or b.tokens,
                     channels_last=a.channels_last)

    def size_input(self, value: Value, count: int, node: fx.Node) -> None:
        """The raw network input's size, given by a per-channel parameter applied to it
        (``(x - self.mean) / self.std``)."""
        if count <= 1:
            raise ConversionError(f"operation {self.describe(node)} on the raw network input "
                                  "before any layer has read it: its size is not known")
        value.group.size = count

    def new_sum(self, value: Value, node: fx.Node) -> NeuronGroup:
        """A ``sum`` group fed one to one by ``value``'s neurons (to carry more terms)."""
        if value.group.size is None:
            raise ConversionError(f"operation {self.describe(node)} on the raw network input "
                                  "before any layer has read it: its size is not known")
        out = self.builder.new_group(value.group.size, "sum", value.group.layer + 1)
        self.builder.identity(value.group, out, "identity", reads=value.reads,
                              spatial=_extent(value), channels_last=value.channels_last)
        out.stage = "sum"
        return out

    def add_constant(self, node: fx.Node, tensor: fx.Node, constant) -> Value:
        """A constant added to the network's output is architecture: recorded, not a weight.
        Inside the network it is the constant bias of a ``sum`` group."""
        if not _is_number(constant):
            raise ConversionError(
                f"operation {self.describe(node)} adds a {type(constant).__name__} that is not "
                "a number, a parameter or a buffer (a tensor constant); register it as a buffer")
        found = self.value(tensor, node)
        if all(u.op == "output" for u in node.users) and not found.reads:
            offset = self.builder.metadata.get("output_offset", 0.0) + float(constant)
            self.builder.metadata["output_offset"] = offset
            return Value(found.group, found.exclusive, found.spatial, found.flattened,
                         singleton=found.singleton, tokens=found.tokens,
                         channels_last=found.channels_last)
        out = self.new_sum(found, node)
        out.constant_features["bias"] = float(constant)
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=_extent(found))

    def subtract_from(self, node: fx.Node, tensor: fx.Node, constant, weight: float) -> Value:
        """``c - x`` (a highway gate's ``1 - t``): a ``sum`` group fed by ``x`` through
        ``scale`` edges of weight -1, with the constant bias ``c``."""
        if not _is_number(constant):
            raise ConversionError(f"operation {self.describe(node)} subtracts a tensor of the "
                                  "network from a parameter or tensor; only from a number")
        found = self.value(tensor, node)
        out = self.builder.new_group(found.group.size, "sum", found.group.layer + 1)
        self.builder.identity(found.group, out, "scale", reads=found.reads, constant=weight,
                              spatial=_extent(found), channels_last=found.channels_last)
        out.constant_features["bias"] = float(constant)
        out.stage = "sum"
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=_extent(found))

    def add_parameter(self, node: fx.Node, tensor: fx.Node, param: ParamTensor,
                      weight: float, token: str = "positions") -> Value:
        """``x + p``: a learned bias (one value per channel) on a ``sum`` group, or, for
        ``p`` of shape [1, T, D] / [T, D] on a token sequence, position embeddings: ``token``
        nodes sending ``token_embedding`` edges (ViT's ``x + self.pos_embed``). ``token="first"``:
        every position reads the table's first row (:func:`add_first_row`)."""
        found = self.value(tensor, node)
        shape = tuple(param.value.shape)
        what = f"{param.keys[0]!r} added {where(node)}"
        if found.group.size is None and token == "positions":
            self.size_input(found, shape[-1] if shape else 1, node)
        identified = identify(param, self.model, what)
        if identified.transform is not None or identified.transposed:
            raise ConversionError(f"{what} is transformed before use; only a stored parameter "
                                  "can be added")
        size = found.group.size
        out = self.new_sum(found, node)
        trimmed = shape[next((i for i, s in enumerate(shape) if s != 1), len(shape)):]
        channel = _channel_position(found)
        if weight not in (1.0, -1.0):
            raise ConversionError(f"{what} with alpha={weight}: not supported")
        if len(trimmed) == -channel and shape[channel] == size and not found.flattened and (
                token == "positions"):
            axes = [None] * len(shape)
            axes[len(shape) + channel] = Axis(out.gid)
            out.features["bias"] = self.builder.param(identified.key, tuple(axes)).reshape(-1)
            out.spec["bias_scale"] = weight if weight != 1.0 else 0.0
        elif len(shape) in (2, 3) and shape[-1] == size and (len(shape) == 2 or shape[0] == 1) \
                and not found.spatial and weight == 1.0:
            count = shape[-2]
            tokens = self.builder.new_group(count, "token", 0)
            tokens.token = token
            axes = (None, Axis(out.gid)) if len(shape) == 2 else (None, None, Axis(out.gid))
            index = self.builder.param(identified.key, axes).reshape(count, size)
            self.builder.connect(tokens, out, index.T.reshape(size, count, 1, 1),
                                 "token_embedding", op=dict(spatial=0, channels_last=False))
            return Value(out, tokens=True)
        else:
            raise ConversionError(
                f"{what} has shape {shape}; a value of {size} neurons takes one bias per "
                f"channel (shape {_channel_shape(found, found.group)}) or, on a token "
                f"sequence, position embeddings [1, T, {size}]")
        return dataclasses.replace(found, group=out, reads=(), exclusive=True,
                                   layout_from=_extent(found))

    def concatenate(self, node: fx.Node) -> Value:
        """``torch.cat`` of tensors of the network along the feature dimension (Fourier
        features ``cat([sin(Bx), cos(Bx)], -1)``): a ``concat`` group fed one to one, each part
        at its offset (these neurons do not move under permutations). Parameters first along
        the tokens of a sequence (``cat((cls_token.expand(B, -1, -1), x), dim=1)``): class
        tokens, ``token`` nodes sending ``token_embedding`` edges to the first positions."""
        parts = self.constant(node.args[0]) if node.args else self.constant(
            node.kwargs["tensors"])
        arg_nodes = node.args[0] if node.args else node.kwargs["tensors"]
        dim = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0))
        values = [p for p in parts if isinstance(p, Value)]
        params = [p for p in parts if isinstance(p, ParamTensor)]
        if params and len(values) == 1 and parts[-1] is values[0] and dim in (1, -2):
            return self.class_tokens(node, params, arg_nodes[-1])
        if params or any(not isinstance(p, Value) for p in parts):
            raise ConversionError(f"concatenation {self.describe(node)} mixes tensors of the "
                                  "network with parameters or constants; only class tokens "
                                  "before a token sequence (dim=1) are supported")
        read = [self.value(a, node) for a in arg_nodes]
        first = read[0]
        rank = 3 if first.tokens else 2 + _extent(first)
        channel_dim = rank - 1 if (first.channels_last or not _extent(first)) else 1
        layouts = {(v.spatial, v.singleton, v.flattened, v.tokens, v.channels_last) for v in read}
        if len(layouts) != 1 or not isinstance(dim, int) or dim % rank != channel_dim or (
                first.flattened) or any(v.group.size is None for v in read):
            raise ConversionError(f"concatenation {self.describe(node)} along dim {dim} is not "
                                  "supported; only along the feature/channel dimension of "
                                  "values of one layout")
        total = sum(v.group.size for v in read)
        layer = max(v.group.layer for v in read) + 1
        out = self.builder.new_group(total, "concat", layer)
        offset = 0
        for v in read:
            self.builder.identity(v.group, out, "identity", reads=v.reads, spatial=_extent(v),
                                  channels_last=v.channels_last, offset=offset)
            offset += v.group.size
        out.stage = "sum"
        return Value(out, True, first.spatial, singleton=first.singleton, tokens=first.tokens,
                     channels_last=first.channels_last)

    def class_tokens(self, node: fx.Node, params: list[ParamTensor], sequence: fx.Node
                     ) -> Value:
        value = self.value(sequence, node)
        size = value.group.size
        if value.spatial or value.flattened or (size is None):
            raise ConversionError(f"concatenation {self.describe(node)}: class tokens go before "
                                  "a token sequence [B, T, D]")
        counts = []
        for p in params:
            shape = tuple(p.value.shape)
            if len(shape) != 3 or shape[0] != 1 or shape[2] != size:
                raise ConversionError(f"class token {p.keys[0]!r} {where(node)} has shape "
                                      f"{shape}; [1, k, {size}] (expanded to the batch) is "
                                      "supported")
            counts.append(shape[1])
        total = sum(counts)
        out = self.builder.new_group(size, "sum", value.group.layer + 1)
        self.builder.identity(value.group, out, "identity",
                              reads=(*value.reads, (prepend_tokens, (total,), {})))
        tokens = self.builder.new_group(total, "token", 0)
        tokens.token = "positions"
        offset = 0
        for p, count in zip(params, counts):
            found = identify(p, self.model, f"class token {p.keys[0]!r} {where(node)}")
            stored = tuple(self.builder.shapes[found.key])
            if found.transform is not None or found.transposed or stored != (1, count, size):
                raise ConversionError(f"class token {found.key!r} {where(node)} must be a "
                                      f"stored [1, {count}, {size}] parameter, expanded")
            index = self.builder.param(found.key, (None, None, Axis(out.gid)))[0]  # [k, D]
            src = torch.arange(offset, offset + count).repeat_interleave(size)
            dst = torch.arange(size).repeat(count)
            self.builder.connect_pairs(tokens, out, index.reshape(-1, 1, 1), "token_embedding",
                                       src, dst, op=dict(spatial=0, channels_last=False))
            offset += count
        out.stage = "sum"
        return Value(out, tokens=True)

    def matmul(self, node: fx.Node) -> Value:
        """``x @ W`` with ``W`` a parameter or buffer [in, out] (possibly ``self.W.T``): a
        linear layer (Fourier features ``x @ self.B``)."""
        left, right = node.args[0], node.args[1]
        weight = self.env.get(right)
        if isinstance(weight, Tensor):
            raise ConversionError(f"operation {self.describe(node)} multiplies by a tensor the "
                                  "state_dict does not hold (a non-persistent buffer or a "
                                  "constant); register it with register_buffer(persistent=True)")
        if not isinstance(weight, ParamTensor) or not isinstance(self.env.get(left), Value):
            raise ConversionError(f"operation {self.describe(node)} multiplies two tensors of "
                                  "the network (attention written by hand?); only x @ W with a "
                                  "parameter or buffer W is supported (use nn.MultiheadAttention "
                                  "for attention)")
        found = identify(weight, self.model, f"the matrix {weight.keys[0]!r} {where(node)}")
        if weight.value.dim() != 2:
            raise ConversionError(f"the matrix {found.key!r} {where(node)} has shape "
                                  f"{tuple(weight.value.shape)}; a 2-D [in, out] is supported")
        value, used = self.folded(node, Weight(found.key, not found.transposed, found.transform))
        inputs, outputs = weight.value.shape
        return converters.linear(self.builder, self.builder.path, value, inputs, outputs, used,
                                 None)

    def folded(self, node: fx.Node, weight: Weight) -> tuple[Value, Weight]:
        """The input of a weighted layer and its weight, a pending constant multiplication of
        the input folded into the weight (:func:`converters.folded`); a multiplication by a
        parameter, or of a standardised weight, is a scale node."""
        value = self.first(node, scaled=True)
        if value.scale_param is not None or weight.transform is not None and (
                weight.transform[0] != "scale"):
            return self.first(node), weight
        return converters.folded(value, weight)

    # --- functional layers on parameters --------------------------------------------------
    def functional_layer(self, node: fx.Node, key) -> Value:
        """``F.linear(x, self.weight, self.bias)`` and the other functional layers, reading
        parameters (possibly transformed: see :func:`identify`) — what a subclass of
        ``nn.Linear``/``nn.Conv2d``/a norm with its own ``forward`` computes."""
        bound = self.bind(node, FUNCTIONAL_LAYERS[key])
        path = self.builder.path
        name = getattr(key, "__name__", str(key))

        def weight(arg_name: str, shape=None, required=True) -> Weight | None:
            arg = bound[arg_name]
            tensor = self.env.get(arg) if isinstance(arg, fx.Node) else None
            if arg is None and not required:
                return None
            if not isinstance(tensor, ParamTensor):
                raise ConversionError(f"{name} {self.describe(node)}: its {arg_name} must be a "
                                      "parameter or buffer of the network, got "
                                      f"{type(tensor if tensor is not None else arg).__name__}")
            found = identify(tensor, self.model, f"the {arg_name} of {name} {where(node)}",
                             shape)
            return Weight(found.key, found.transposed, found.transform)

        def stored(w: Weight) -> tuple[int, ...]:
            shape = tuple(self.builder.shapes[w.key])
            return shape[::-1] if w.transposed else shape

        if key is F.linear:
            value, w = self.folded(node, weight("weight"))
            out_features, in_features = stored(w)
            bias = weight("bias", required=False)
            self.check_bias(bias, node)
            return converters.linear(self.builder, path, value, in_features, out_features, w,
                                     bias)
        if key in (F.conv1d, F.conv2d):
            value, w = self.folded(node, weight("weight"))
            if w.transposed:
                raise ConversionError(f"{name} {self.describe(node)}: a transposed kernel")
            bias = weight("bias", required=False)
            self.check_bias(bias, node)
            return converters.conv(self.builder, path, value, w, bias, stored(w),
                                   bound["stride"], bound["padding"], bound["dilation"],
                                   bound["groups"])
        value = self.first(node)
        if key is F.embedding:
            if bound["max_norm"] is not None:
                raise ConversionError(f"{name} {self.describe(node)} with max_norm")
            w = weight("weight")
            if w.transform is not None or w.transposed:
                raise ConversionError(f"{name} {self.describe(node)}: a transformed table")
            return converters.embedding(self.builder, path, value, w, stored(w))
        if key is F.prelu:
            raise ConversionError(f"{name} {self.describe(node)}: use nn.PReLU")
        return self.functional_norm(node, key, bound, value, weight)

    def model_dtype(self) -> torch.dtype:
        return next((p.dtype for p in self.model.parameters()), torch.get_default_dtype())

    def check_bias(self, bias: Weight | None, node: fx.Node) -> None:
        if bias is not None and (bias.transposed or bias.transform is not None and (
                bias.transform[0] != "scale")):
            raise ConversionError(f"the bias of {self.describe(node)} is transformed; only a "
                                  "constant scale of a stored bias is supported")

    def functional_norm(self, node: fx.Node, key, bound: dict, value: Value, weight) -> Value:
        name = key.__name__
        keys = {}
        for arg_name in ("weight", "bias", "running_mean", "running_var"):
            if arg_name in bound:
                found = weight(arg_name, required=False)
                if found is not None and (found.transform is not None or found.transposed):
                    raise ConversionError(f"the {arg_name} of {name} {self.describe(node)} is "
                                          "transformed before use; not supported")
                keys[arg_name] = found.key if found is not None else None
        if key in (F.layer_norm, F.rms_norm):
            shape = tuple(bound["normalized_shape"])
            if len(shape) != 1 or (value.spatial and not value.channels_last):
                raise ConversionError(f"{name} {self.describe(node)} over {shape}: only over "
                                      "the feature dimension (the last one) is supported")
            kind = "layernorm" if key is F.layer_norm else "rmsnorm"
            eps = bound["eps"]
            if eps is None:  # rms_norm: the machine epsilon of the input's dtype
                eps = torch.finfo(self.model_dtype()).eps
            return converters.normalise(self.builder, self.builder.path, value,
                                        Norm(kind, shape[0], eps, **keys))
        channels = value.group.size
        if key is F.group_norm:
            out = converters.normalise(self.builder, self.builder.path, value, Norm(
                "groupnorm", channels, bound["eps"], groups=bound["num_groups"], **keys))
            self.builder.constrain_permutation(out.group, channels // bound["num_groups"])
            return out
        statistics = bound["training"] if key is F.batch_norm else bound["use_input_stats"]
        if statistics:  # running statistics passed in are updated, not used: left unused
            kind = "batchnorm_batchstats" if key is F.batch_norm else "instancenorm"
            keys["running_mean"] = keys["running_var"] = None
        else:
            kind = "batchnorm"
        return converters.normalise(self.builder, self.builder.path, value,
                                    Norm(kind, channels, bound["eps"], **keys))


def _channel_position(value: Value) -> int:
    """Where the channel dimension is, counted from the end."""
    if value.channels_last or not _extent(value):
        return -1
    return -(1 + _extent(value))


def _channel_shape(value: Value, group: NeuronGroup) -> tuple:
    return (group.size,) + (1,) * (-1 - _channel_position(value))


__all__ = ["trace_into", "where", "flatten_to"]
