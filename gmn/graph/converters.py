"""Built-in converters: Linear, Conv1d/Conv2d, the norms, Embedding, MultiheadAttention.

Each returns the :class:`Value` its module produces. The layer functions below them
(:func:`linear`, :func:`conv`, :func:`normalise`, :func:`embedding`) also record the
functional forms (``F.linear(x, self.weight, self.bias)`` …) that a module's own ``forward``
calls on its parameters. Layouts the graph cannot express raise :class:`ConversionError`
naming the module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .builder import Axis, GraphBuilder, NeuronGroup, Value
from .errors import ConversionError
from .registry import register_converter
from .vocab import NODE_TYPE


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass(frozen=True)
class Weight:
    """A state_dict entry a layer uses as its weight (or bias), and how it is used.

    ``transposed``: stored [in, out] (``x @ W``) instead of [out, in]. ``transform``: applied
    to the stored values before use (``None``, ``("scale", c)`` or ``("standardize", eps,
    unbiased)``, see :func:`gmn.graph.param_tensors.identify`); the graph keeps the stored
    values, so the inverse stays exact, and records the transform in ``node_spec``.
    """

    key: str
    transposed: bool = False
    transform: tuple | None = None


def _set_input_size(value: Value, size: int, spatial: int) -> None:
    """The network input's size and layout are known once a layer reads it."""
    if value.group.op == "input":
        if value.group.size is None:
            value.group.size = size
        if not value.flattened and not value.channels_last:
            value.spatial = value.group.input_spatial = spatial


def _bias(builder: GraphBuilder, out: NeuronGroup, bias: Weight | None) -> None:
    if bias is not None:
        out.features["bias"] = builder.param(bias.key, (Axis(out.gid),))
        out.spec["bias_scale"] = _scale_of(bias)


def _scale_of(weight: Weight) -> float:
    transform = weight.transform
    return transform[1] if transform and transform[0] == "scale" else 0.0


def _transform_spec(group: NeuronGroup, weight: Weight) -> None:
    transform = weight.transform
    if transform is None:
        return
    if transform[0] == "scale":
        group.spec["weight_scale"] = transform[1]
    else:
        group.spec["weight_standardize"] = transform[1]


def linear(builder: GraphBuilder, path: str, value: Value, in_features: int, out_features: int,
           weight: Weight, bias: Weight | None) -> Value:
    """Dense edges in → out; a flattened C×S feature map gives S parallel edges per channel.
    On a channels-last map ([B, H, W, C], after ``permute(0, 2, 3, 1)``) it is a 1×1
    convolution: the neurons are channels, the map keeps its layout."""
    _set_input_size(value, in_features, 0)
    source = value.group
    if (value.spatial or value.singleton) and not value.channels_last:
        raise ConversionError(
            f"linear layer {path!r} reads a map [B, C, *S] (or a token sequence transposed to "
            "[B, D, T]) along its last dimension: it would mix positions or tokens (MLP-Mixer's "
            "token mixing), which a parameter graph, whose neurons are channels, cannot "
            "express; pool or flatten first")
    out = builder.new_group(out_features, "linear", source.layer + 1)
    positions = in_features // source.size
    if in_features != positions * source.size or (positions > 1 and not value.flattened):
        raise ConversionError(
            f"linear layer {path!r} expects {in_features} input features but its input has "
            f"{source.size} neurons")
    axes = (Axis(out.gid), Axis(source.gid, positions))
    index = builder.param(weight.key, axes[::-1] if weight.transposed else axes)
    index = index.T if weight.transposed else index
    edge_type = "linear_from_spatial" if positions > 1 else "linear"
    index = index.reshape(out_features, source.size, 1, positions)
    builder.connect(source, out, index, edge_type, reads=value.reads,
                    op=_layer_op(value, weight))
    _transform_spec(out, weight)
    _bias(builder, out, bias)
    return value.produced(out)


def _layer_op(value: Value, weight: Weight, **settings) -> dict:
    """What ``gmn.graph.execute`` needs to compute a layer's weighted sum."""
    return dict(settings, spatial=value.spatial + value.singleton,
                channels_last=value.channels_last, transform=weight.transform)


def folded(value: Value, weight: Weight) -> tuple[Value, Weight]:
    """A pending constant multiplication of a layer's input folded into the layer's weight
    scale (``(2π x) @ B`` is ``x @ (2π B)``)."""
    if value.scale == 1.0:
        return value, weight
    if value.scale_param is not None or weight.transform is not None and (
            weight.transform[0] != "scale"):
        raise ConversionError("a multiplied input of a layer whose weight is also standardised "
                              "or multiplied by a parameter is not supported")
    scale = value.scale * (weight.transform[1] if weight.transform else 1.0)
    return replace(value, scale=1.0), replace(weight, transform=("scale", scale))


@register_converter(nn.Linear)
def convert_linear(builder: GraphBuilder, path: str, module: nn.Linear, value: Value) -> Value:
    bias = Weight(_key(path, "bias")) if module.bias is not None else None
    value, weight = folded(value, Weight(_key(path, "weight")))
    return linear(builder, path, value, module.in_features, module.out_features, weight, bias)


def conv(builder: GraphBuilder, path: str, value: Value, weight: Weight, bias: Weight | None,
         shape: tuple[int, ...], stride, padding, dilation, groups: int,
         padding_mode: str = "zeros") -> Value:
    """One block of edges in-channel → out-channel, each carrying a kernel; ``shape`` is the
    stored weight's [out, in / groups, *kernel]."""
    spatial = len(shape) - 2
    out_channels, in_channels = shape[0], shape[1] * groups
    _set_input_size(value, in_channels, spatial)
    source = value.group
    if value.flattened or value.channels_last or value.tokens or (
            value.spatial + value.singleton != spatial) or source.size != in_channels:
        raise ConversionError(
            f"convolution {path!r} expects {in_channels} channels with {spatial} spatial "
            f"dimension(s); its input has {source.size} neurons with "
            f"{value.spatial + value.singleton}" + (" (channels last)" if value.channels_last
                                                    else ""))
    stride, dilation = _tuple(stride, spatial), _tuple(dilation, spatial)
    padding = padding if isinstance(padding, str) else _tuple(padding, spatial)
    if padding == "valid":
        padding = (0,) * spatial
    op = _layer_op(value, weight, stride=stride, padding=padding, dilation=dilation,
                   padding_mode=padding_mode)
    out = builder.new_group(out_channels, "conv", source.layer + 1)
    # a grouped weight's dim 1 indexes channels within a group: those cannot move
    in_axis = Axis(source.gid) if groups == 1 else None
    index = builder.param(weight.key, (Axis(out.gid), in_axis, None, None)[:spatial + 2])
    if spatial == 1:
        index = index.unsqueeze(2)
    if groups == 1:
        builder.connect(source, out, index, "conv", reads=value.reads, op=op)
    else:  # grouped/depthwise: out-channel block g reads in-channel block g only
        per_out, per_in = out_channels // groups, in_channels // groups
        for g in range(groups):
            rows = index[g * per_out:(g + 1) * per_out]
            src = torch.arange(g * per_in, (g + 1) * per_in).repeat(per_out)
            dst = torch.arange(g * per_out, (g + 1) * per_out).repeat_interleave(per_in)
            builder.connect_pairs(source, out, rows.reshape(per_out * per_in, *rows.shape[2:]),
                                  "conv", src, dst, reads=value.reads, op=op)
        builder.constrain_permutation(out, per_out)
        builder.constrain_permutation(source, 1)
    out.spec.update(_conv_spec(stride, padding, dilation, padding_mode, shape[2:]))
    _transform_spec(out, weight)
    _bias(builder, out, bias)
    return value.produced(out, spatial=value.spatial, singleton=value.singleton)


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, size: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return values * size if len(values) == 1 else values


def same_padding(kernel: tuple[int, ...], dilation: tuple[int, ...]
                 ) -> tuple[tuple[int, int], ...]:
    """``padding='same'`` as torch computes it: per dimension, (before, after) with the odd
    pixel after."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)


def _conv_spec(stride, padding, dilation, padding_mode: str, kernel) -> dict:
    """The ``node_spec`` columns of a convolution's output neurons (the last two spatial
    dimensions; a Conv1d fills the x columns)."""
    if isinstance(padding, str):
        padding = tuple(sum(p) for p in same_padding(tuple(kernel), dilation))
    else:
        padding = tuple(2 * p for p in padding)
    spec = {}
    for name, values in (("stride", stride), ("dilation", dilation), ("padding", padding)):
        values = (0,) * (2 - len(values)) + tuple(values)
        spec[f"{name}_y"], spec[f"{name}_x"] = float(values[-2]), float(values[-1])
    spec["padding_mode"] = float(PADDING_MODES.index(padding_mode))
    return spec


@register_converter(nn.Conv1d)
@register_converter(nn.Conv2d)
def convert_conv(builder: GraphBuilder, path: str, module: nn.Conv2d, value: Value) -> Value:
    bias = Weight(_key(path, "bias")) if module.bias is not None else None
    value, weight = folded(value, Weight(_key(path, "weight")))
    return conv(builder, path, value, weight, bias,
                tuple(module.weight.shape), module.stride, module.padding, module.dilation,
                module.groups, module.padding_mode)


@register_converter(nn.ConvTranspose1d)
@register_converter(nn.ConvTranspose2d)
def convert_conv_transpose(builder: GraphBuilder, path: str, module: nn.ConvTranspose2d,
                           value: Value) -> Value:
    """A transposed convolution (DCGAN generators): ``conv_transpose`` edges in-channel →
    out-channel, each carrying the kernel ``weight[in, out]``."""
    spatial = module.weight.dim() - 2
    _set_input_size(value, module.in_channels, spatial)
    source = value.group
    if module.groups != 1 or module.padding_mode != "zeros":
        raise ConversionError(f"{type(module).__name__} {path!r}: only groups=1 and zero "
                              "padding are supported")
    if value.flattened or value.channels_last or value.tokens or (
            value.spatial + value.singleton != spatial) or source.size != module.in_channels:
        raise ConversionError(
            f"{type(module).__name__} {path!r} expects {module.in_channels} channels with "
            f"{spatial} spatial dimension(s); its input has {source.size} neurons")
    out = builder.new_group(module.out_channels, "conv", source.layer + 1)
    index = builder.param(_key(path, "weight"), (Axis(source.gid), Axis(out.gid), None,
                                                 None)[:spatial + 2]).transpose(0, 1)
    if spatial == 1:
        index = index.unsqueeze(2)
    op = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
              output_padding=module.output_padding, spatial=value.spatial + value.singleton,
              channels_last=False, transform=None)
    builder.connect(source, out, index, "conv_transpose", reads=value.reads, op=op)
    padding = tuple(2 * p + o for p, o in zip(module.padding, module.output_padding))
    out.spec.update(_conv_spec(module.stride, (0,) * spatial, module.dilation, "zeros",
                               module.kernel_size))
    out.spec["padding_y"], out.spec["padding_x"] = (float(v) for v in (
        (0,) * (2 - spatial) + padding)[-2:])
    if module.bias is not None:
        out.features["bias"] = builder.param(_key(path, "bias"), (Axis(out.gid),))
    return value.produced(out, spatial=value.spatial, singleton=value.singleton)


@dataclass(frozen=True)
class Norm:
    """A normalisation as ``gmn.graph.execute`` computes it.

    ``kind``: ``"batchnorm"`` (per-channel running statistics: BatchNorm in eval mode,
    InstanceNorm with ``track_running_stats``), ``"batchnorm_batchstats"`` (statistics of the
    batch: ``track_running_stats=False``), ``"instancenorm"`` (per sample and channel, over
    the spatial positions), ``"layernorm"``, ``"groupnorm"``, ``"rmsnorm"``. Missing affine
    parameters are the constants γ = 1, β = 0 in the graph (the same function).
    """

    kind: str
    channels: int
    eps: float
    weight: str | None = None
    bias: str | None = None
    running_mean: str | None = None
    running_var: str | None = None
    groups: int = 1


def normalise(builder: GraphBuilder, path: str, value: Value, norm: Norm) -> Value:
    """Record a per-channel normalisation: fused onto the neurons of the layer it directly
    follows, else on new ``norm.kind`` nodes fed one to one by ``identity`` edges."""
    if value.group.size is None:  # a norm on the network input
        _set_input_size(value, norm.channels, value.spatial)
    source = value.group
    if source.size != norm.channels:
        raise ConversionError(f"{norm.kind} {path!r} has {norm.channels} channels but its "
                              f"input has {source.size} neurons")
    fused = f"{source.op}+{norm.kind}"
    if value.exclusive and source.stage == "fresh" and fused in NODE_TYPE and not value.reads:
        target, target.norm = source, norm.kind
    else:
        target = builder.new_group(norm.channels, norm.kind, source.layer + 1)
        builder.identity(source, target, "identity", reads=value.reads,
                         spatial=value.spatial + value.singleton,
                         channels_last=value.channels_last)
    target.stage = "norm"
    target.norm_spec = dict(kind=norm.kind, eps=float(norm.eps), groups=norm.groups,
                            channels_last=value.channels_last)
    target.spec["norm_eps"] = float(norm.eps)
    for column, key in (("norm_weight", norm.weight), ("norm_bias", norm.bias),
                        ("running_mean", norm.running_mean), ("running_var", norm.running_var)):
        if key is not None:
            target.features[column] = builder.param(key, (Axis(target.gid),))
    if norm.weight is None:
        target.constant_features["norm_weight"] = 1.0
    return Value(target, spatial=value.spatial, flattened=value.flattened,
                 singleton=value.singleton, tokens=value.tokens,
                 channels_last=value.channels_last)


def _norm_keys(path: str, module: nn.Module, names=("weight", "bias", "running_mean",
                                                    "running_var")) -> dict:
    return {name: _key(path, name) if getattr(module, name, None) is not None else None
            for name in names}


@register_converter(nn.modules.batchnorm._BatchNorm)
def convert_batchnorm(builder: GraphBuilder, path: str, module: nn.Module, value: Value) -> Value:
    """Eval mode: the running statistics, or the batch's without ``track_running_stats``."""
    keys = _norm_keys(path, module)
    kind = "batchnorm" if keys["running_mean"] else "batchnorm_batchstats"
    if isinstance(module, nn.BatchNorm2d) and value.group.size is None:
        value.spatial = 2
    return normalise(builder, path, value, Norm(kind, module.num_features, module.eps, **keys))


@register_converter(nn.modules.instancenorm._InstanceNorm)
def convert_instancenorm(builder: GraphBuilder, path: str, module: nn.Module,
                         value: Value) -> Value:
    """Per sample and channel over the positions; with ``track_running_stats`` eval mode uses
    the running statistics, the function of a BatchNorm in eval mode."""
    keys = _norm_keys(path, module)
    if not (value.spatial or value.singleton) and value.group.size is not None:
        raise ConversionError(f"InstanceNorm {path!r} reads features without spatial "
                              "dimensions; it normalises over positions")
    if value.group.size is None:
        value.spatial = 2 if isinstance(module, nn.InstanceNorm2d) else 1
    kind = "batchnorm" if keys["running_mean"] else "instancenorm"
    return normalise(builder, path, value, Norm(kind, module.num_features, module.eps, **keys))


def _last_dim_norm(path: str, module: nn.Module, value: Value, what: str) -> None:
    shape = tuple(module.normalized_shape)
    if len(shape) != 1 or (value.spatial and not value.channels_last):
        raise ConversionError(
            f"{what} {path!r} normalises over {shape}; only a {what} over the feature "
            "dimension (the last one: features, tokens or a channels-last map) is supported")


@register_converter(nn.LayerNorm)
def convert_layernorm(builder: GraphBuilder, path: str, module: nn.LayerNorm,
                      value: Value) -> Value:
    _last_dim_norm(path, module, value, "LayerNorm")
    keys = _norm_keys(path, module, ("weight", "bias"))
    return normalise(builder, path, value,
                     Norm("layernorm", module.normalized_shape[0], module.eps, **keys))


@register_converter(nn.RMSNorm)
def convert_rmsnorm(builder: GraphBuilder, path: str, module: nn.RMSNorm, value: Value) -> Value:
    _last_dim_norm(path, module, value, "RMSNorm")
    eps = module.eps
    if eps is None:  # torch uses the machine epsilon of the input's dtype
        dtype = module.weight.dtype if module.weight is not None else torch.get_default_dtype()
        eps = torch.finfo(dtype).eps
    keys = _norm_keys(path, module, ("weight",))
    return normalise(builder, path, value,
                     Norm("rmsnorm", module.normalized_shape[0], eps, **keys))


@register_converter(nn.GroupNorm)
def convert_groupnorm(builder: GraphBuilder, path: str, module: nn.GroupNorm,
                      value: Value) -> Value:
    """Channels may only be permuted within their group (the statistics are per group)."""
    keys = _norm_keys(path, module, ("weight", "bias"))
    out = normalise(builder, path, value, Norm("groupnorm", module.num_channels, module.eps,
                                               groups=module.num_groups, **keys))
    builder.constrain_permutation(out.group, module.num_channels // module.num_groups)
    return out


def embedding(builder: GraphBuilder, path: str, value: Value, weight: Weight,
              shape: tuple[int, int]) -> Value:
    """A lookup table read with integer ids: the input neurons are the ``V`` entries (a one-hot
    code of the id), each sending ``embedding`` edges of weight ``W[v, d]`` to the ``D``
    embedding neurons."""
    vocabulary, dim = shape
    source = value.group
    if source.op != "input" or value.reads or value.spatial:
        raise ConversionError(f"embedding {path!r} must read the network's input ids directly")
    source.size = source.size or vocabulary
    source.input_kind = "ids"
    if source.size != vocabulary:
        raise ConversionError(f"embedding {path!r} has {vocabulary} entries; the input has "
                              f"{source.size}")
    out = builder.new_group(dim, "linear", source.layer + 1)
    index = builder.param(weight.key, (Axis(source.gid), Axis(out.gid)))
    builder.connect(source, out, index.T.reshape(dim, vocabulary, 1, 1), "embedding",
                    op=dict(spatial=0, channels_last=False, transform=None))
    return Value(out, tokens=True)


@register_converter(nn.Embedding)
def convert_embedding(builder: GraphBuilder, path: str, module: nn.Embedding,
                      value: Value) -> Value:
    if module.max_norm is not None:
        raise ConversionError(f"Embedding {path!r} has max_norm={module.max_norm}: it renormalises "
                              "the rows it reads; not supported")
    return embedding(builder, path, value, Weight(_key(path, "weight")),
                     tuple(module.weight.shape))


@register_converter(nn.MultiheadAttention)
def convert_attention(builder: GraphBuilder, path: str, module: nn.MultiheadAttention,
                      value: Value) -> tuple[Value, None]:
    """Self-attention (see :func:`self_attention`), the q, k, v rows stacked in
    ``in_proj_weight``. Returns ``(output, None)`` like the module (no attention weights)."""
    embed = module.embed_dim
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise ConversionError(f"MultiheadAttention {path!r}: only kdim = vdim = embed_dim, "
                              "without add_bias_kv or add_zero_attn, is supported")

    def project(qkv: tuple[NeuronGroup, ...], source: NeuronGroup
                ) -> tuple[Tensor, Tensor | None]:
        q = qkv[0]  # the three groups share one permutation: q's, repeated for k and v
        weight = builder.param(_key(path, "in_proj_weight"),
                               (Axis(q.gid, outer=3), Axis(source.gid)))
        bias = None if module.in_proj_bias is None else builder.param(
            _key(path, "in_proj_bias"), (Axis(q.gid, outer=3),))
        return weight.reshape(3, embed, embed), bias if bias is None else bias.reshape(3, embed)

    out = self_attention(builder, path, value, embed, module.num_heads, module.batch_first,
                         project, Weight(_key(path, "out_proj.weight")),
                         Weight(_key(path, "out_proj.bias"))
                         if module.out_proj.bias is not None else None)
    return out, None


def self_attention(builder: GraphBuilder, path: str, value: Value, embed: int, heads: int,
                   batch_first: bool, project, out_weight: Weight | None,
                   out_bias: Weight | None, causal: bool = False) -> Value:
    """Query, key and value neurons fed by the input projections, output neurons fed by the
    values through the output projection (``out_weight``; ``None``: the value neurons are the
    output), and ``attention`` edges from query and key dimension ``i`` to value dimension
    ``i``. Dimensions move only within their head, q, k and v together.

    ``project((q, k, v), source)`` returns the projections' flat indices: weights
    [3, embed, embed] (q, k, v rows) and biases [3, embed] or ``None``. ``causal``: each
    position attends to itself and the positions before it (GPT-2).
    """
    _set_input_size(value, embed, 0)
    source = value.group
    if value.spatial or source.size != embed:
        raise ConversionError(f"attention {path!r} expects {embed} features; its input has "
                              f"{source.size} neurons")
    layer = source.layer + 1
    q, k, v = (builder.new_group(embed, f"attention_{role}", layer)
               for role in ("query", "key", "value"))
    weights, biases = project((q, k, v), source)
    for group, rows in zip((q, k, v), weights):
        builder.connect(source, group, rows.reshape(embed, embed, 1, 1), "linear",
                        reads=value.reads)
    if biases is not None:
        for group, rows in zip((q, k, v), biases):
            group.features["bias"] = rows
    for group in (q, k):
        builder.identity(group, v, "attention")
    builder.constrain_permutation(v, embed // heads)
    v.attention = dict(heads=heads, query=q.gid, key=k.gid, batch_first=batch_first,
                       causal=causal)
    v.spec.update(heads=float(heads), causal=float(causal))
    if out_weight is None:
        return Value(v, tokens=value.tokens)
    return linear(builder, path, Value(v, tokens=value.tokens), embed, embed, out_weight,
                  out_bias)


FOLDING = {convert_linear, convert_conv}  # read a pending input scale into their weight
BUILTIN = {convert_linear, convert_conv, convert_conv_transpose, convert_batchnorm,
           convert_instancenorm,
           convert_layernorm, convert_rmsnorm, convert_groupnorm, convert_embedding,
           convert_attention}
