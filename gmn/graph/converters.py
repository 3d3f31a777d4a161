"""Built-in converters: Linear, Conv1d/Conv2d, BatchNorm, LayerNorm, GroupNorm, MultiheadAttention.

Each returns the :class:`Value` its module produces. Layouts the graph cannot express raise
:class:`ConversionError` naming the module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .builder import Axis, GraphBuilder, NeuronGroup, Value
from .errors import ConversionError
from .registry import register_converter
from .vocab import NODE_TYPE


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _set_input_size(value: Value, size: int, spatial: int) -> None:
    """The network input's size and layout are known once a layer reads it."""
    if value.group.op == "input":
        if value.group.size is None:
            value.group.size = size
        if not value.flattened:
            value.spatial = spatial


@register_converter(nn.Linear)
def convert_linear(builder: GraphBuilder, path: str, module: nn.Linear, value: Value) -> Value:
    """Dense edges in → out; a flattened C×S feature map gives S parallel edges per channel."""
    _set_input_size(value, module.in_features, 0)
    source = value.group
    if value.spatial or value.singleton:
        raise ConversionError(
            f"nn.Linear {path!r} reads a feature map with spatial dimensions; pool or flatten first"
        )
    out = builder.new_group(module.out_features, "linear", source.layer + 1)
    positions = module.in_features // source.size
    if module.in_features != positions * source.size or (positions > 1 and not value.flattened):
        raise ConversionError(
            f"nn.Linear {path!r} expects {module.in_features} input features but its input has "
            f"{source.size} neurons"
        )
    axes = (Axis(out.gid), Axis(source.gid, positions))
    weight = builder.param(_key(path, "weight"), axes)
    edge_type = "linear_from_spatial" if positions > 1 else "linear"
    weight = weight.reshape(module.out_features, source.size, 1, positions)
    builder.connect(source, out, weight, edge_type, reads=value.reads)
    if module.bias is not None:
        out.features["bias"] = builder.param(_key(path, "bias"), (Axis(out.gid),))
    return Value(out, tokens=value.tokens)


@register_converter(nn.Conv1d)
@register_converter(nn.Conv2d)
def convert_conv(builder: GraphBuilder, path: str, module: nn.Conv2d, value: Value) -> Value:
    """One block of edges in-channel → out-channel, each carrying a kh×kw kernel."""
    spatial = 2 if isinstance(module, nn.Conv2d) else 1
    _set_input_size(value, module.in_channels, spatial)
    source = value.group
    if value.flattened or value.spatial != spatial or source.size != module.in_channels:
        raise ConversionError(
            f"convolution {path!r} expects {module.in_channels} channels with {spatial} spatial "
            f"dimension(s); its input has {source.size} neurons with {value.spatial}"
        )
    op = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
              padding_mode=module.padding_mode, spatial=spatial)
    out = builder.new_group(module.out_channels, "conv", source.layer + 1)
    groups = module.groups
    # a grouped weight's dim 1 indexes channels within a group: those cannot move
    in_axis = Axis(source.gid) if groups == 1 else None
    weight = builder.param(_key(path, "weight"), (Axis(out.gid), in_axis, None, None)[
        : spatial + 2])
    if spatial == 1:
        weight = weight.unsqueeze(2)
    if groups == 1:
        builder.connect(source, out, weight, "conv", reads=value.reads, op=op)
    else:  # grouped/depthwise: out-channel block g reads in-channel block g only
        per_out, per_in = module.out_channels // groups, module.in_channels // groups
        for g in range(groups):
            rows = weight[g * per_out:(g + 1) * per_out]
            src = torch.arange(g * per_in, (g + 1) * per_in).repeat(per_out)
            dst = torch.arange(g * per_out, (g + 1) * per_out).repeat_interleave(per_in)
            builder.connect_pairs(source, out, rows.reshape(per_out * per_in, *rows.shape[2:]),
                                  "conv", src, dst, reads=value.reads, op=op)
        builder.constrain_permutation(out, per_out)
        builder.constrain_permutation(source, 1)
    if module.bias is not None:
        out.features["bias"] = builder.param(_key(path, "bias"), (Axis(out.gid),))
    return Value(out, spatial=spatial)


def normalise(builder: GraphBuilder, path: str, module: nn.Module, value: Value, kind: str,
              channels: int) -> Value:
    """Record a per-channel normalisation: fused onto the neurons of the layer it directly
    follows, else on new ``kind`` nodes fed one to one by ``identity`` edges."""
    if value.group.size is None:  # a norm on the network input
        _set_input_size(value, channels, 2 if isinstance(module, nn.BatchNorm2d) else 0)
    source = value.group
    if source.size != channels:
        raise ConversionError(
            f"{type(module).__name__} {path!r} has {channels} channels but its input has "
            f"{source.size} neurons"
        )
    fused = f"{source.op}+{kind}"
    if value.exclusive and source.stage == "fresh" and fused in NODE_TYPE and not value.reads:
        target, target.norm = source, kind
    else:
        target = builder.new_group(channels, kind, source.layer + 1)
        builder.identity(source, target, "identity", reads=value.reads,
                         spatial=value.spatial + value.singleton)
    target.stage = "norm"
    target.norm_spec = dict(
        kind=kind, eps=float(module.eps),
        affine=getattr(module, "weight", None) is not None,
        bias=getattr(module, "bias", None) is not None,
        stats=getattr(module, "running_mean", None) is not None,
        groups=getattr(module, "num_groups", 1))
    for column, name in (("norm_weight", "weight"), ("norm_bias", "bias"),
                         ("running_mean", "running_mean"), ("running_var", "running_var")):
        if getattr(module, name, None) is not None:
            target.features[column] = builder.param(_key(path, name), (Axis(target.gid),))
    return Value(target, spatial=value.spatial, flattened=value.flattened,
                 singleton=value.singleton, tokens=value.tokens)


@register_converter(nn.modules.batchnorm._BatchNorm)
def convert_batchnorm(builder: GraphBuilder, path: str, module: nn.Module, value: Value) -> Value:
    return normalise(builder, path, module, value, "batchnorm", module.num_features)


@register_converter(nn.LayerNorm)
def convert_layernorm(builder: GraphBuilder, path: str, module: nn.LayerNorm,
                      value: Value) -> Value:
    if len(module.normalized_shape) != 1 or value.spatial:
        raise ConversionError(
            f"LayerNorm {path!r} normalises over {tuple(module.normalized_shape)}; only a "
            "LayerNorm over the feature dimension of a linear layer's output is supported"
        )
    return normalise(builder, path, module, value, "layernorm", module.normalized_shape[0])


@register_converter(nn.GroupNorm)
def convert_groupnorm(builder: GraphBuilder, path: str, module: nn.GroupNorm,
                      value: Value) -> Value:
    """Channels may only be permuted within their group (the statistics are per group)."""
    out = normalise(builder, path, module, value, "groupnorm", module.num_channels)
    builder.constrain_permutation(out.group, module.num_channels // module.num_groups)
    return out


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
                         project, _key(path, "out_proj"), module.out_proj)
    return out, None


def self_attention(builder: GraphBuilder, path: str, value: Value, embed: int, heads: int,
                   batch_first: bool, project, out_path: str, out_proj: nn.Linear) -> Value:
    """Query, key and value neurons fed by the input projections, output neurons fed by the
    values through ``out_proj``, and ``attention`` edges from query and key dimension ``i`` to
    value dimension ``i``. Dimensions move only within their head, q, k and v together.

    ``project((q, k, v), source)`` returns the projections' flat indices: weights
    [3, embed, embed] (q, k, v rows) and biases [3, embed] or ``None``.
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
    v.attention = dict(heads=heads, query=q.gid, key=k.gid, batch_first=batch_first)
    out = builder.new_group(embed, "linear", layer + 1)
    weight = builder.param(_key(out_path, "weight"), (Axis(out.gid), Axis(v.gid)))
    builder.connect(v, out, weight.reshape(embed, embed, 1, 1), "linear")
    if out_proj.bias is not None:
        out.features["bias"] = builder.param(_key(out_path, "bias"), (Axis(out.gid),))
    return Value(out, tokens=value.tokens)


BUILTIN = {convert_linear, convert_conv, convert_batchnorm, convert_layernorm, convert_groupnorm,
           convert_attention}
