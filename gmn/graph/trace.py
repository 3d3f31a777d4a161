"""Follow a network's real dataflow with ``torch.fx`` and record it in a :class:`GraphBuilder`.

Modules with a registered converter and activation modules are kept whole; everything else is
traced through, so residual additions written in ``forward`` (``x + self.block(x)``) are seen.
Parameter-free operations are handled explicitly (activations, dropout, pooling, flatten,
additions, in-place versions of them); any other operation raises :class:`ConversionError`
naming it and the module it sits in, so a graph is never silently wrong.
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
from .errors import ConversionError, UnsupportedModuleError
from .registry import find_converter, supported_types
from .substitutes import substitute_for

PASSTHROUGH_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
POOL_MODULES = {
    nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d, nn.AvgPool1d: F.avg_pool1d,
    nn.AvgPool2d: F.avg_pool2d, nn.AdaptiveAvgPool1d: F.adaptive_avg_pool1d,
    nn.AdaptiveAvgPool2d: F.adaptive_avg_pool2d, nn.AdaptiveMaxPool1d: F.adaptive_max_pool1d,
    nn.AdaptiveMaxPool2d: F.adaptive_max_pool2d,
}
POOL_SETTINGS = {  # the functional arguments of each pooling module, in order
    nn.MaxPool1d: ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    nn.MaxPool2d: ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    nn.AvgPool1d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    nn.AvgPool2d: ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                   "divisor_override"),
}
PASSTHROUGH_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, "contiguous", "clone", "detach"}
LOCAL_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d}
ADAPTIVE_POOL_FUNCTIONS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d,
                           F.adaptive_max_pool2d}
ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
INPLACE_ARITHMETIC = {operator.iadd, operator.isub, operator.imul, "add_", "sub_", "mul_"}
SHAPE_QUERIES = {"size", "dim"}
HEADS = {F.softmax: "softmax", F.log_softmax: "log_softmax", torch.softmax: "softmax",
         torch.log_softmax: "log_softmax", "softmax": "softmax", "log_softmax": "log_softmax"}
HEAD_MODULES = {nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}


class _Shape:
    """A non-tensor value derived from a tensor's shape (``x.size(0)``, ``x.shape``)."""


class _InPlaceProxy(fx.Proxy):
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


class _Tracer(fx.Tracer):
    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _InPlaceProxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if substitute_for(m) is not None:
            return False
        known = find_converter(m) is not None or act_table.is_activation_module(m)
        return known or super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward, args, kwargs):
        _refuse_known(m, self.path_of_module(m))
        substitute = substitute_for(m)
        if substitute is not None:
            return super().call_module(m, lambda *a, **k: substitute(m, *a, **k), args, kwargs)
        return super().call_module(m, forward, args, kwargs)


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
    try:
        graph = _Tracer().trace(model, concrete_args=concrete_args)
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001 - fx raises many types; report them as one
        raise ConversionError(
            f"torch.fx could not trace {type(model).__name__}.forward ({type(error).__name__}: "
            f"{error}). torch.fx cannot follow data-dependent control flow (if/for on tensor "
            "values), item assignment (x[...] = ...) or calls it cannot record; rewrite that "
            "part of forward, or register a converter for the module that contains it"
        ) from error
    return _Walker(builder, model, concrete_args).run(graph)


def flatten_to(x: Tensor, features: int) -> Tensor:
    """``x.view(-1, features)`` as recorded: [B, C, *S] → [B, features]. It is a flatten only
    when C·ΠS = ``features`` (the spatial size is not traced), so another size raises."""
    out = torch.flatten(x, 1)
    if out.shape[1] != features:
        raise ConversionError(f"x.view(-1, {features}) was recorded as a flatten, which it is "
                              f"only for inputs whose C·H·W is {features}; this input gives "
                              f"{out.shape[1]}")
    return out


LAYOUT = (torch.flatten, torch.squeeze, flatten_to)
TRANSPOSES = {torch.transpose, "transpose", torch.permute, "permute"}
BUILTIN_CONVERTERS = converters.BUILTIN | set(huggingface.CONVERTERS.values())  # execute knows


def _extent(value: Value) -> int:
    """Dimensions after the channel one of ``value``'s tensor (as far as layout matters)."""
    return value.spatial + value.singleton


def _refuse_known(m: nn.Module, path: str) -> None:
    known = huggingface.refusal(m)
    if known:
        below, why = known
        culprit = ".".join(p for p in (path, below) if p)
        raise UnsupportedModuleError(culprit, type(m.get_submodule(below)), supported_types(),
                                     why)


def _trace_layer(builder: GraphBuilder, model: nn.Module) -> tuple[NeuronGroup, NeuronGroup]:
    """A converted layer as the whole model: its parameters' keys have no module prefix."""
    graph = _Tracer().trace(_Root(model))
    walker = _Walker(builder, model)
    for node in graph.nodes:
        if node.op == "call_module" and node.target.startswith("model"):
            node.target = node.target[len("model."):] if node.target != "model" else ""
    return walker.run(graph)


def where(node: fx.Node) -> str:
    """``"in module 'block.1' (UserSine)"`` from fx's module stack, or ``"in forward"``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "in the top-level forward"
    path, module_type = list(stack.values())[-1]
    name = getattr(module_type, "__name__", str(module_type))
    return f"in module {path!r} ({name})"


class _Walker:
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
                    raise ConversionError("the network must return a single tensor")
                if result.scale != 1.0:
                    raise ConversionError(f"the output is multiplied by {result.scale} "
                                          f"{result.scaled_at} (mul); only a multiplication "
                                          "before an activation is supported")
                self.builder.metadata["output_reads"] = result.reads
                return self.inputs, result.group
            self.builder.path = next(iter(reversed(node.meta.get("nn_module_stack") or {"": 0})))
            self.env[node] = self.visit(node)
        raise ConversionError("the traced network has no output")

    # --- arguments ------------------------------------------------------------------------
    def value(self, arg, node: fx.Node, scaled: bool = False) -> Value:
        """The tensor ``arg`` as read by ``node``; exclusive only if ``node`` is its sole reader."""
        found = self.env.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(found, Value):
            raise ConversionError(f"operation {self.describe(node)} expects a tensor input")
        if found.scale != 1.0 and not scaled:
            raise ConversionError(
                f"mul by the constant {found.scale} {found.scaled_at} is read by "
                f"{self.describe(node)}; a multiplication by a constant is only supported just "
                "before an elementwise activation such as sin (register yours with "
                "gmn.register_activation(..., scaled=True))")
        return dataclasses.replace(found, exclusive=found.exclusive and len(arg.users) == 1)

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

    def is_constant(self, node: fx.Node) -> bool:
        """All inputs are plain Python values (the guards torch.fx adds for concrete_args)."""
        inputs = fx.node.map_arg((node.args, node.kwargs), lambda n: n)
        found = []
        fx.node.map_arg(inputs, found.append)
        return all(not isinstance(self.env.get(n), (Value, _Shape, tuple)) and n in self.env
                   for n in found) and node.target in (operator.eq, operator.ne, operator.is_,
                                                       operator.is_not, torch._assert,
                                                       operator.not_)

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
            owner_path, _, name = node.target.rpartition(".")
            owner = self.model.get_submodule(owner_path)
            if name in owner._parameters or name in owner._buffers:
                raise UnsupportedModuleError(owner_path, type(owner), supported_types(),
                                             f"its forward uses its own parameter {name!r} "
                                             f"{where(node)}")
            raise ConversionError(f"tensor constant {node.target!r} used {where(node)} is not "
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
            if isinstance(module, nn.MultiheadAttention):
                self.check_attention_call(node)
            if converter not in BUILTIN_CONVERTERS:
                self.builder.metadata.setdefault("custom_converters", []).append(node.target)
            self.builder.path = node.target
            return converter(self.builder, node.target, module, self.first(node))
        if act_table.is_activation_module(module):
            what = f"module {node.target!r} ({type(module).__name__})"
            record, argument, inplace = act_table.match_module(module, what)
            return self.activation(node, record, argument, inplace, module)
        if type(module) in HEAD_MODULES:
            return self.head(node, HEAD_MODULES[type(module)], module.dim)
        if any(True for _ in module.parameters()):
            raise UnsupportedModuleError(node.target, type(module), supported_types())
        value = self.first(node)
        if isinstance(module, PASSTHROUGH_MODULES):
            self.alias(node)
            return value
        if isinstance(module, nn.Flatten):
            self.alias(node)
            if module.end_dim != -1:
                raise ConversionError(f"flatten {self.describe(node)} must flatten to the end")
            return self.flatten(value, module.start_dim, node)
        if type(module) in POOL_MODULES:
            function = POOL_MODULES[type(module)]
            settings = POOL_SETTINGS.get(type(module), ("output_size",))
            if getattr(module, "return_indices", False):
                raise ConversionError(f"pooling {self.describe(node)} returns indices")
            args = tuple(getattr(module, k) for k in settings)
            if "output_size" in settings:
                return self.adaptive_pool(value, function, args[0], node)
            return self.local_pool(value, function, args, {}, node)
        raise ConversionError(
            f"module {node.target!r} of type {type(module).__name__} is not supported "
            "(no parameters, but an operation the graph cannot express)"
        )

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

    def call_function(self, node: fx.Node, key):
        """``key``: the function, or the Tensor method's name."""
        if node.op == "call_function" and self.is_constant(node):
            return key(*self.constant(node.args), **self.constant(dict(node.kwargs)))
        head = node.args[0] if node.args else None
        source = self.env.get(head) if isinstance(head, fx.Node) else None
        if key is operator.getitem and isinstance(source, tuple):
            return source[node.args[1]]
        if key is operator.getitem and isinstance(source, Value):
            return self.select_token(node)
        shape_query = key in SHAPE_QUERIES or key is getattr and node.args[1] == "shape"
        if shape_query and isinstance(source, Value) or isinstance(source, _Shape):
            return _Shape()
        if act_table.is_activation_function(key):
            rest = self.constant(tuple(node.args[1:]))
            kwargs = {k: self.constant(v) for k, v in node.kwargs.items() if k != "input"}
            record, argument, inplace = act_table.match_function(
                key, rest, kwargs, f"operation {self.describe(node)}")
            return self.activation(node, record, argument, inplace)
        if key in HEADS:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            return self.head(node, HEADS[key], self.constant(dim))
        if key in PASSTHROUGH_FUNCTIONS:
            self.alias(node)
            return self.first(node)
        if key in ADD or key in SUB:
            result = self.add(node, sign=-1.0 if key in SUB else 1.0)
            return self.mutate(node, result) if key in INPLACE_ARITHMETIC else result
        if key in MUL:
            result = self.multiply(node)
            return self.mutate(node, result) if key in INPLACE_ARITHMETIC else result
        if key in (torch.flatten, "flatten"):
            start = self.constant(node.kwargs.get("start_dim",
                                                  node.args[1] if len(node.args) > 1 else 0))
            end = self.constant(node.kwargs.get("end_dim",
                                                node.args[2] if len(node.args) > 2 else -1))
            if end != -1:
                raise ConversionError(f"flatten {self.describe(node)} must flatten to the end")
            self.alias(node)
            return self.flatten(self.first(node), start, node)
        if key in ("view", "reshape", torch.reshape):
            return self.reshape(node)
        if key in TRANSPOSES:
            return self.transpose(node)
        if key in ("squeeze", torch.squeeze):
            return self.squeeze(node)
        if key in LOCAL_POOL_FUNCTIONS:
            rest = self.constant(tuple(node.args[1:]))
            kwargs = {k: self.constant(v) for k, v in node.kwargs.items() if k != "input"}
            if kwargs.get("return_indices"):
                raise ConversionError(f"pooling {self.describe(node)} returns indices")
            return self.local_pool(self.first(node), key, rest, kwargs, node)
        if key in ADAPTIVE_POOL_FUNCTIONS:
            size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
            return self.adaptive_pool(self.first(node), key, self.constant(size), node)
        if key in (torch.mean, "mean", torch.amax, "amax"):
            return self.reduce(node, key)
        if key in (F.linear, F.conv1d, F.conv2d, torch.matmul, operator.matmul):
            raise ConversionError(
                f"operation {self.describe(node)} computes a layer from raw tensors; use the "
                "nn.Linear/nn.Conv module, or register a converter for the module that owns "
                "the weights")
        raise ConversionError(f"operation {self.describe(node)} is not supported in a network "
                              "converted to a parameter graph")

    # --- parameter-free operations --------------------------------------------------------
    def activation(self, node: fx.Node, record, argument: float, inplace: bool,
                   module: nn.Module | None = None) -> Value:
        value = self.first(node, scaled=record.scaled)
        if value.scale != 1.0:
            argument = argument * value.scale
        group = value.group
        if group.size is None:
            raise ConversionError(f"activation {record.name!r} applied to the raw network input "
                                  f"{where(node)}")
        # an elementwise function commutes with trailing flatten/squeeze: apply it before them
        cut = len(value.reads)
        while cut and value.reads[cut - 1][0] in LAYOUT:
            cut -= 1
        before, after = value.reads[:cut], value.reads[cut:]
        spatial = value.layout_from if after else _extent(value)
        if not (value.exclusive and group.act == "identity" and not before):
            new = self.builder.new_group(group.size, "activation", group.layer + 1)
            self.builder.identity(group, new, "identity", reads=before, spatial=spatial)
            group = new
        if record.parameter:
            argument = self.learned_argument(node.target, module, record, group, value)
        group.act, group.act_arg, group.stage = record.name, argument, "act"
        result = Value(group, True, value.spatial, value.flattened, after,
                       singleton=value.singleton, layout_from=value.layout_from,
                       tokens=value.tokens)
        return self.mutate(node, result) if inplace else result

    def learned_argument(self, path: str, module: nn.Module, record, group: NeuronGroup,
                         value: Value) -> Tensor:
        """[size] flat indices of an activation's parameter (PReLU's slopes): one per neuron,
        moving with it under permutations, or one shared by all neurons."""
        key = f"{path}.{record.parameter}" if path else record.parameter
        count = getattr(module, record.parameter).numel()
        if count == 1:
            return self.builder.param(key, (None,)).expand(group.size)
        if count != group.size or value.tokens:
            raise ConversionError(
                f"{type(module).__name__} {path!r} has {count} parameters for {group.size} "
                "neurons" + (" of a token sequence (they would index its tokens)"
                             if value.tokens else "") + "; one per channel or one is supported")
        return self.builder.param(key, (Axis(group.gid),))

    def multiply(self, node: fx.Node) -> Value:
        """``c * x``: a pending scale, folded into the next (scaled) activation."""
        left, right = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs["other"]
        tensors = [a for a in (left, right)
                   if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)]
        other = right if tensors and tensors[0] is left else left
        constant = self.constant(other) if len(tensors) == 1 else None
        if not act_table.is_finite_number(constant):
            raise ConversionError(f"operation {self.describe(node)} (mul) is not supported; only "
                                  "a multiplication by a constant just before an activation is")
        found = self.value(tensors[0], node, scaled=True)
        found.scale = found.scale * float(constant)
        found.scaled_at = where(node)
        return found

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
        if not act_table.is_finite_number(alpha):
            raise ConversionError(f"operation {self.describe(node)}: alpha={alpha!r} is not a "
                                  "number")
        weight = sign * float(alpha)
        tensors = [a for a in (left, right)
                   if isinstance(a, fx.Node) and isinstance(self.env.get(a), Value)]
        if len(tensors) == 1:
            if tensors[0] is not left:
                raise ConversionError(f"operation {self.describe(node)} subtracts or adds a "
                                      "tensor to a constant; not supported")
            return self.add_constant(node, tensors[0], weight * self.constant(right)
                                     if act_table.is_finite_number(self.constant(right))
                                     else right)
        a, b = self.value(left, node), self.value(right, node)
        if a.group.size != b.group.size or a.spatial != b.spatial or a.flattened or b.flattened \
                or a.singleton or b.singleton:
            raise ConversionError(
                f"addition {self.describe(node)} of {a.group.size} and {b.group.size} neurons "
                "(or different layouts) is not supported"
            )
        carriers = [v for v in (a, b) if v.exclusive and v.group.stage in ("fresh", "norm")
                    and not v.reads and (v is a or weight == 1.0)]
        if a.group is not b.group and carriers:
            result = max(carriers, key=lambda v: v.group.layer)
            skip = b if result is a else a
            self.builder.identity(skip.group, result.group, "residual", reads=skip.reads,
                                  constant=weight if skip is b else 1.0, spatial=_extent(a))
            result.group.layer = max(result.group.layer, skip.group.layer + 1)
        else:
            layer = max(a.group.layer, b.group.layer) + 1
            result = Value(self.builder.new_group(a.group.size, "sum", layer), True,
                           a.spatial, a.flattened)
            self.builder.identity(a.group, result.group, "residual", reads=a.reads,
                                  spatial=_extent(a))
            self.builder.identity(b.group, result.group, "residual", reads=b.reads,
                                  constant=weight, spatial=_extent(b))
        result.group.stage = "sum"
        return Value(result.group, True, result.spatial, result.flattened,
                     tokens=a.tokens or b.tokens)

    def add_constant(self, node: fx.Node, tensor: fx.Node, constant) -> Value:
        """A constant added to the network's output is architecture: recorded, not a weight."""
        if not (act_table.is_finite_number(constant)
                and all(u.op == "output" for u in node.users)):
            raise ConversionError(
                f"operation {self.describe(node)} adds a constant inside the network; only a "
                "constant offset on the output is supported"
            )
        found = self.value(tensor, node)
        if found.reads:
            raise ConversionError(f"operation {self.describe(node)}: an output offset must "
                                  "follow the last layer directly")
        offset = self.builder.metadata.get("output_offset", 0.0) + float(constant)
        self.builder.metadata["output_offset"] = offset
        found = self.env[tensor]
        return Value(found.group, found.exclusive, found.spatial, found.flattened)

    def shaped(self, value: Value, reads_entry, **layout) -> Value:
        fields = dict(spatial=value.spatial, flattened=value.flattened, singleton=value.singleton,
                      layout_from=value.layout_from, tokens=value.tokens)
        if reads_entry[0] in LAYOUT and not (value.reads and value.reads[-1][0] in LAYOUT):
            fields["layout_from"] = _extent(value)
        fields.update(layout)
        return Value(value.group, value.exclusive, reads=(*value.reads, reads_entry), **fields)

    def flatten(self, value: Value, start_dim: int, node: fx.Node, features: int | None = None
                ) -> Value:
        """From dimension 1: features (``features``: the size ``x.view(-1, features)`` gives,
        checked when run); from dimension 2 of a map: its spatial dimensions merged into one."""
        if start_dim == 2 and value.spatial and not value.singleton and features is None:
            return self.shaped(value, (torch.flatten, (2,), {}), spatial=1)
        if start_dim != 1 or value.tokens:
            raise ConversionError(f"flatten {self.describe(node)} from dimension {start_dim} is "
                                  "not supported: only from dimension 1 (2 of a feature map), "
                                  "and never across the tokens of a sequence")
        read = (torch.flatten, (1,), {}) if features is None else (flatten_to, (features,), {})
        return self.shaped(value, read, spatial=0, singleton=0,
                           flattened=value.flattened or value.spatial > 0)

    def reshape(self, node: fx.Node) -> Value:
        """``x.view(x.size(0), -1)`` and friends: a flatten from dimension 1. ``x.view(-1, N)``
        (CNN-zoo style) is a flatten when N = C·H·W; N must be a whole number of positions
        per channel, and ``execute`` checks the rest (the spatial size is not traced)."""
        value = self.first(node)
        shape = self.constant(node.args[1:])
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        batch, features = shape if len(shape) == 2 else (None, None)
        exact = isinstance(batch, _Shape) and features == -1
        sized = (batch == -1 or isinstance(batch, _Shape)) and type(features) is int and (
            features > 0)
        if not (exact or sized):
            raise ConversionError(f"reshape {self.describe(node)} is not supported; only "
                                  "x.view(x.size(0), -1), x.view(-1, C*H*W) and "
                                  "torch.flatten(x, 1) are")
        if sized and value.group.size and features % value.group.size:
            raise ConversionError(
                f"reshape {self.describe(node)} to {features} features is no flatten: its "
                f"input has {value.group.size} channels, and {features} is not a multiple")
        self.alias(node)
        return self.flatten(value, 1, node, features if sized else None)

    def transpose(self, node: fx.Node) -> Value:
        """``x.flatten(2).transpose(1, 2)`` (a patch embedding): the map [B, C, L] becomes the
        token sequence [B, L, C], whose features are the channels."""
        value = self.first(node)
        dims = self.constant(tuple(node.args[1:]))
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        swap = len(dims) == 2 and {d % 3 for d in dims if isinstance(d, int)} == {1, 2}
        if not (value.spatial == 1 and not value.singleton and not value.flattened and (
                swap or tuple(dims) == (0, 2, 1))):
            raise ConversionError(f"transpose {self.describe(node)} is not supported; only a "
                                  "map [B, C, L] to tokens [B, L, C] (x.flatten(2).transpose(1, "
                                  "2), a patch embedding) is")
        self.alias(node)
        return self.shaped(value, (torch.transpose, (1, 2), {}), spatial=0, tokens=True)

    def squeeze(self, node: fx.Node) -> Value:
        """``x.squeeze(-1)`` after a global pool: drops singleton spatial dimensions."""
        value = self.first(node)
        dims = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        if dims is None:
            raise ConversionError(
                f"squeeze {self.describe(node)} without dims also drops a batch of one; write "
                "x.flatten(1) or squeeze the spatial dims explicitly (x.squeeze(-1))")
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if tuple(dims) == (-1,) and value.group.size == 1 and not value.spatial and all(
                u.op == "output" for u in node.users):  # a one-output head: [B, 1] -> [B]
            self.alias(node)
            return self.shaped(value, (torch.squeeze, (-1,), {}))
        rank = value.spatial + value.singleton + 2
        resolved = sorted({d % rank for d in dims if isinstance(d, int)})
        if not resolved or resolved[0] < 2 + value.spatial or len(resolved) != len(dims):
            raise ConversionError(f"squeeze {self.describe(node)} over dims {dims} is not "
                                  "supported; only the size-1 dimensions a global pool leaves "
                                  "may go")
        self.alias(node)
        return self.shaped(value, (torch.squeeze, (tuple(resolved),), {}),
                           singleton=value.singleton - len(resolved))

    def select_token(self, node: fx.Node) -> Value:
        """``x[:, i]`` (ViT's class token ``x[:, 0, :]``) of a sequence known to be [B, T, D]:
        the features of one token."""
        value = self.first(node)
        index = self.constant(node.args[1])
        index = index if isinstance(index, tuple) else (index,)
        every = slice(None)
        if not (value.tokens and len(index) in (2, 3) and index[0] == every
                and type(index[1]) is int and index[2:] in ((), (every,))):
            raise ConversionError(f"indexing {self.describe(node)} is not supported; only "
                                  "x[:, i] of a token sequence [B, T, D] (after a patch "
                                  "embedding) is")
        self.alias(node)
        return self.shaped(value, (operator.getitem, ((every, index[1]),), {}), tokens=False)

    def local_pool(self, value: Value, function, args: tuple, kwargs: dict, node: fx.Node
                   ) -> Value:
        if not value.spatial:
            raise ConversionError(f"pooling {self.describe(node)} reads features, not a map")
        return self.shaped(value, (function, tuple(args), dict(kwargs)))

    def adaptive_pool(self, value: Value, function, size, node: fx.Node) -> Value:
        if not value.spatial:
            raise ConversionError(f"pooling {self.describe(node)} reads features, not a map")
        sizes = size if isinstance(size, (tuple, list)) else (size,)
        if all(s == 1 for s in sizes):  # a global pool: features, with size-1 dims left
            return self.shaped(value, (function, (size,), {}), spatial=0,
                               singleton=value.spatial)
        return self.shaped(value, (function, (size,), {}))

    def reduce(self, node: fx.Node, key) -> Value:
        """A mean or max over all spatial dimensions is global pooling; a mean over the token
        dimension of a sequence of features keeps the features: ``dim=1`` of a sequence known
        to be [B, T, D] (``Value.tokens``), or ``dim=-2`` (the rank of the network input is
        not traced, so there ``dim=1`` could be the features)."""
        value = self.first(node)
        dims = self.constant(node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None))
        keepdim = self.constant(node.kwargs.get("keepdim",
                                                node.args[2] if len(node.args) > 2 else False))
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        function = torch.amax if key in (torch.amax, "amax") else torch.mean
        over_tokens = value.tokens and len(dims) == 1 and dims[0] in (1, -2)
        if value.spatial == 0 and not keepdim and (over_tokens or all(
                isinstance(d, int) and d < -1 for d in dims)):
            return self.shaped(value, (function, (tuple(dims),), {}), tokens=False)
        rank = value.spatial + 2
        resolved = sorted({d % rank for d in dims if isinstance(d, int)})
        if value.spatial == 0 or resolved != list(range(2, rank)):
            raise ConversionError(
                f"reduction {self.describe(node)} over dims {dims} is not supported; only a "
                "mean/max over all spatial dimensions of a map, or over the tokens of a "
                "sequence: dim=1 where it is known to be [B, T, D] (after a patch embedding "
                "x.flatten(2).transpose(1, 2)), else written dim=-2")
        return self.shaped(value, (function, (tuple(dims),), {"keepdim": bool(keepdim)}),
                           spatial=0, singleton=value.spatial if keepdim else 0)
