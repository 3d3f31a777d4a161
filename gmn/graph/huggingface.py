"""Hugging Face ``transformers`` modules whose ``forward`` plain ``torch.fx`` cannot trace.

Their forwards check input shapes (``if num_channels != self.num_channels``) and return
``ModelOutput`` objects; tracing them through the equivalent functions below records the same
dataflow. Keyed by qualified class name, so ``transformers`` is never imported here. Each
function computes what the module's forward returns in eval mode (for the image-classification
models: the logits; for the base models: the pooled features, or a ViT without a pooler: the
last hidden states [B, T, D]).

Two ViT modules get converters instead: ``ViTAttention`` (q/k/v/o projections, recorded as
self-attention) and ``ViTEmbeddings``, whose class token and position embeddings are
parameters used directly in forward: they become ``token_embedding`` edges from ``token``
nodes (one-hot token positions) to the embedding neurons, beside ``identity`` edges from the
patch projection's channels (its tokens shifted by one for the class token).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .builder import Axis, GraphBuilder, NeuronGroup, Value
from .converters import Weight, convert_conv, self_attention
from .errors import ConversionError
from .registry import register_named_converter
from .shapes import prepend_tokens


def _resnet_embeddings(m: nn.Module, pixel_values, *args, **kwargs):
    return m.pooler(m.embedder(pixel_values))


def _resnet_encoder(m: nn.Module, hidden_state, *args, **kwargs):
    for stage in m.stages:
        hidden_state = stage(hidden_state)
    return hidden_state


def _resnet_model(m: nn.Module, pixel_values, *args, **kwargs):
    return m.pooler(m.encoder(m.embedder(pixel_values)))


def _resnet_for_classification(m: nn.Module, pixel_values, *args, **kwargs):
    return m.classifier(m.resnet(pixel_values))


def _vit_layer(m: nn.Module, hidden_states, *args, **kwargs):
    """``ViTLayer`` (pre-norm) without its gradient-checkpointing call and attention mask."""
    h = m.dropout(m.attention(m.layernorm_before(hidden_states))[0]) + hidden_states
    return m.dropout(m.mlp(m.layernorm_after(h))) + h


def _vit_model(m: nn.Module, pixel_values, *args, **kwargs):
    hidden_states = m.embeddings(pixel_values)
    for layer in m.layers:
        hidden_states = layer(hidden_states)
    hidden_states = m.layernorm(hidden_states)
    return m.pooler(hidden_states) if m.pooler is not None else hidden_states


def _vit_for_classification(m: nn.Module, pixel_values, *args, **kwargs):
    return m.classifier(m.vit(pixel_values)[:, 0, :])  # the class token's features


def convert_vit_embeddings(builder: GraphBuilder, path: str, module: nn.Module, value: Value
                           ) -> Value:
    """``ViTEmbeddings``: the patch projection (a strided conv) gives tokens [B, T, D]; the
    embedding neurons add, per token, the class token (token 0) and the position embeddings,
    as ``token_embedding`` edges from ``token`` nodes."""
    projection = module.patch_embeddings.projection
    patches = convert_conv(builder, f"{path}.patch_embeddings.projection", projection, value)
    dim, length = projection.out_channels, module.position_embeddings.shape[1]
    out = builder.new_group(dim, "sum", patches.group.layer + 1)
    reads = ((torch.flatten, (2,), {}), (torch.transpose, (1, 2), {}), (prepend_tokens, (1,), {}))
    builder.identity(patches.group, out, "identity", reads=reads)
    for name, count in (("cls_token", 1), ("position_embeddings", length)):
        tokens = builder.new_group(count, "token", 0)
        tokens.token = True
        weight = builder.param(f"{path}.{name}", (None, None, Axis(out.gid)))  # [1, count, D]
        builder.connect(tokens, out, weight[0].T.reshape(dim, count, 1, 1), "token_embedding")
    out.stage = "sum"
    return Value(out, tokens=True)


def convert_vit_attention(builder: GraphBuilder, path: str, module: nn.Module, value: Value
                          ) -> tuple[Value, None]:
    """``ViTAttention``: self-attention with separate q, k, v projections and ``o_proj``."""
    embed = module.q_proj.in_features
    if module.q_proj.out_features != embed or module.is_causal:
        raise ConversionError(f"ViTAttention {path!r}: only non-causal attention whose heads "
                              "span the hidden size is supported")

    def project(qkv: tuple[NeuronGroup, ...], source: NeuronGroup):
        names = [f"{path}.{n}_proj" for n in "qkv"]
        weights = [builder.param(f"{n}.weight", (Axis(g.gid), Axis(source.gid)))
                   for n, g in zip(names, qkv)]
        biases = None if module.q_proj.bias is None else [
            builder.param(f"{n}.bias", (Axis(g.gid),)) for n, g in zip(names, qkv)]
        return weights, biases

    bias = Weight(f"{path}.o_proj.bias") if module.o_proj.bias is not None else None
    out = self_attention(builder, path, value, embed, module.num_attention_heads, True, project,
                         Weight(f"{path}.o_proj.weight"), bias)
    return out, None


_RESNET = "transformers.models.resnet.modeling_resnet."
_VIT = "transformers.models.vit.modeling_vit."
SUBSTITUTES: dict[str, Callable] = {
    _RESNET + "ResNetEmbeddings": _resnet_embeddings,
    _RESNET + "ResNetEncoder": _resnet_encoder,
    _RESNET + "ResNetModel": _resnet_model,
    _RESNET + "ResNetForImageClassification": _resnet_for_classification,
    _VIT + "ViTLayer": _vit_layer,
    _VIT + "ViTModel": _vit_model,
    _VIT + "ViTForImageClassification": _vit_for_classification,
}
CONVERTERS = {_VIT + "ViTEmbeddings": convert_vit_embeddings,
              _VIT + "ViTAttention": convert_vit_attention}
for _name_, _converter in CONVERTERS.items():
    register_named_converter(_name_, _converter)

REFUSED: dict[str, tuple[str, str]] = {  # class -> (path of the culprit below it, why)
    _VIT + "ViTForMaskedImageModeling": (
        "vit.embeddings", "its mask token replaces masked patches (a product with the mask "
        "input), and its decoder reshapes tokens into an image, which a parameter graph has no "
        "place for"),
}


def _name(module: nn.Module) -> str | None:
    cls = type(module)
    if not cls.__module__.startswith("transformers."):
        return None
    return f"{cls.__module__}.{cls.__qualname__}"


def refusal(module: nn.Module) -> tuple[str, str] | None:
    """``(relative path, reason)`` when ``module`` is a transformers class known to be
    inexpressible as a parameter graph."""
    name = _name(module)
    return REFUSED.get(name) if name else None


def substitute_for(module: nn.Module) -> Callable | None:
    """The traceable equivalent of ``module``'s forward, if it is a known transformers class."""
    name = _name(module)
    return SUBSTITUTES.get(name) if name else None
