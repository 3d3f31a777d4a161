"""Modules whose ``forward`` torch.fx cannot trace, traced through equivalent forwards.

Each function below computes what a known module's forward returns in eval mode, calling its
submodules, so the tracer records their real dataflow:

* ``nn.TransformerEncoderLayer`` / ``nn.TransformerEncoder`` (their fast path and mask
  handling are not traceable), keyed by class;
* Hugging Face ``transformers`` models, keyed by qualified class name (``transformers`` is
  never imported here). transformers 5 ships no fx tracer of its own, and its forwards check
  input shapes, build attention masks, read ``**kwargs`` and return ``ModelOutput`` objects.
  The base models return the pooled features where the model has a pooler, else the last
  hidden states [B, T, D] (GPT-2) or the pooled map (ConvNeXt, MobileNetV2); the
  classification models return the logits.

Hugging Face attention modules get converters (``register_named_converter``): ``ViTAttention`` /
``DeiTAttention`` (q/k/v/o projections), ``BertSelfAttention`` (q/k/v; its output projection is
the ``BertSelfOutput`` that follows), ``GPT2Attention`` (causal; the q/k/v columns of one
``Conv1D``) and ``Conv1D`` itself (a linear layer storing its weight [in, out]). Class tokens and
position embeddings held as parameters are recorded by the tracer (``torch.cat`` of parameters
before the tokens, ``x + self.position_embeddings``); position and token-type tables of
``nn.Embedding`` go through :func:`add_positions` and :func:`add_first_row`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import fx, nn

from .builder import Axis, GraphBuilder, NeuronGroup, Value
from .converters import Weight, linear, self_attention
from .errors import ConversionError
from .param_tensors import add_first_row, add_positions
from .registry import register_named_converter
from .shapes import tf_same_pad

for _name in ("add_positions", "add_first_row", "tf_same_pad"):
    fx.wrap(_name)  # recorded as calls, not traced into


# --- forwards ----------------------------------------------------------------------------------
def _encoder_layer(m: nn.TransformerEncoderLayer, src, src_mask=None,
                   src_key_padding_mask=None, is_causal=False):
    """``nn.TransformerEncoderLayer.forward`` without its fast path and mask handling (which
    torch.fx cannot trace); the same function in eval mode without masks."""
    if src_mask is not None or src_key_padding_mask is not None or is_causal:
        raise ConversionError("a TransformerEncoderLayer called with a mask or is_causal is "
                              "not supported")

    def attend(x):
        return m.dropout1(m.self_attn(x, x, x, need_weights=False)[0])

    def feed_forward(x):
        return m.dropout2(m.linear2(m.dropout(m.activation(m.linear1(x)))))

    if m.norm_first:
        x = src + attend(m.norm1(src))
        return x + feed_forward(m.norm2(x))
    x = m.norm1(src + attend(src))
    return m.norm2(x + feed_forward(x))


def _encoder(m: nn.TransformerEncoder, src, mask=None, src_key_padding_mask=None,
             is_causal=None):
    if mask is not None or src_key_padding_mask is not None or is_causal:
        raise ConversionError("a TransformerEncoder called with a mask or is_causal is not "
                              "supported")
    for layer in m.layers:
        src = layer(src)
    return m.norm(src) if m.norm is not None else src


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


def _vit_embeddings(m: nn.Module, pixel_values, *args, **kwargs):
    """ViT / DeiT: patches, the class (and distillation) tokens first, position embeddings."""
    x = m.patch_embeddings.projection(pixel_values).flatten(2).transpose(1, 2)
    extra = [getattr(m, name) for name in ("cls_token", "distillation_token") if hasattr(m, name)]
    x = torch.cat((*(t.expand(x.shape[0], -1, -1) for t in extra), x), dim=1)
    return m.dropout(x + m.position_embeddings)


def _vit_layer(m: nn.Module, hidden_states, *args, **kwargs):
    """``ViTLayer``/``DeiTLayer`` (pre-norm) without gradient checkpointing and masks."""
    h = m.dropout(m.attention(m.layernorm_before(hidden_states))[0]) + hidden_states
    return m.dropout(m.mlp(m.layernorm_after(h))) + h


def _vit_model(m: nn.Module, pixel_values, *args, **kwargs):
    hidden_states = m.embeddings(pixel_values)
    for layer in m.layers:
        hidden_states = layer(hidden_states)
    hidden_states = m.layernorm(hidden_states)
    return m.pooler(hidden_states) if m.pooler is not None else hidden_states


def _vit_for_classification(m: nn.Module, pixel_values, *args, **kwargs):
    base = m.vit if hasattr(m, "vit") else m.deit
    return m.classifier(base(pixel_values)[:, 0, :])  # the class token's features


def _deit_with_teacher(m: nn.Module, pixel_values, *args, **kwargs):
    """The mean of the class-token and the distillation-token heads (eval mode)."""
    h = m.deit(pixel_values)
    return (m.cls_classifier(h[:, 0, :]) + m.distillation_classifier(h[:, 1, :])) / 2


def _bert_embeddings(m: nn.Module, input_ids, *args, **kwargs):
    """Word, token-type (the default ids: 0) and position embeddings, LayerNorm."""
    x = add_first_row(m.word_embeddings(input_ids), m.token_type_embeddings.weight)
    return m.dropout(m.LayerNorm(add_positions(x, m.position_embeddings.weight)))


def _bert_layer(m: nn.Module, hidden_states, *args, **kwargs):
    attention = m.attention.output(m.attention.self(hidden_states)[0], hidden_states)
    return m.output(m.intermediate(attention), attention)


def _bert_encoder(m: nn.Module, hidden_states, *args, **kwargs):
    for layer in m.layer:
        hidden_states = layer(hidden_states)
    return hidden_states


def _bert_model(m: nn.Module, input_ids, *args, **kwargs):
    if m.config.is_decoder:
        raise ConversionError("a BertModel configured as a decoder (causal attention, cache) is "
                              "not supported; use is_decoder=False")
    hidden_states = m.encoder(m.embeddings(input_ids))
    return m.pooler(hidden_states) if m.pooler is not None else hidden_states


def _bert_for_sequence_classification(m: nn.Module, input_ids, *args, **kwargs):
    return m.classifier(m.dropout(m.bert(input_ids)))


def _gpt2_block(m: nn.Module, hidden_states, *args, **kwargs):
    h = hidden_states + m.attn(m.ln_1(hidden_states))[0]
    return h + m.mlp(m.ln_2(h))


def _gpt2_model(m: nn.Module, input_ids, *args, **kwargs):
    hidden_states = m.drop(add_positions(m.wte(input_ids), m.wpe.weight))
    for block in m.h:
        hidden_states = block(hidden_states)
    return m.ln_f(hidden_states)


def _convnext_embeddings(m: nn.Module, pixel_values, *args, **kwargs):
    return m.layernorm(m.patch_embeddings(pixel_values))


def _convnext_model(m: nn.Module, pixel_values, *args, **kwargs):
    hidden_states = m.embeddings(pixel_values)
    for stage in m.encoder.stages:
        hidden_states = stage(hidden_states)
    return m.layernorm(hidden_states.mean([-2, -1]))


def _convnext_for_classification(m: nn.Module, pixel_values, *args, **kwargs):
    return m.classifier(m.convnext(pixel_values))


def _mobilenet_v2_conv_layer(m: nn.Module, features, *args, **kwargs):
    conv = m.convolution
    if m.config.tf_padding:
        features = tf_same_pad(features, conv.kernel_size, conv.stride, conv.dilation)
    features = conv(features)
    if m.normalization is not None:
        features = m.normalization(features)
    return m.activation(features) if m.activation is not None else features


def _mobilenet_v2_model(m: nn.Module, pixel_values, *args, **kwargs):
    hidden_states = m.conv_stem(pixel_values)
    for layer in m.layer:
        hidden_states = layer(hidden_states)
    hidden_states = m.conv_1x1(hidden_states)
    return torch.flatten(m.pooler(hidden_states), 1) if m.pooler is not None else hidden_states


def _mobilenet_v2_for_classification(m: nn.Module, pixel_values, *args, **kwargs):
    return m.classifier(m.dropout(m.mobilenet_v2(pixel_values)))


# --- converters --------------------------------------------------------------------------------
def convert_qkvo_attention(builder: GraphBuilder, path: str, module: nn.Module, value: Value
                           ) -> tuple[Value, None]:
    """``ViTAttention``/``DeiTAttention``: self-attention with separate q, k, v projections
    and ``o_proj``."""
    embed = module.q_proj.in_features
    if module.q_proj.out_features != embed or module.is_causal:
        raise ConversionError(f"{type(module).__name__} {path!r}: only non-causal attention whose "
                              "heads span the hidden size is supported")
    out = self_attention(builder, path, value, embed, module.num_attention_heads, True,
                         _separate_projections(builder, path, module, "{}_proj"),
                         Weight(f"{path}.o_proj.weight"), _bias_of(module.o_proj,
                                                                   f"{path}.o_proj"))
    return out, None


def convert_bert_self_attention(builder: GraphBuilder, path: str, module: nn.Module,
                                value: Value) -> tuple[Value, None]:
    """``BertSelfAttention``: q, k, v projections; the output projection follows outside."""
    embed = module.query.in_features
    if module.all_head_size != embed or module.is_causal or module.is_decoder:
        raise ConversionError(f"BertSelfAttention {path!r}: only non-causal encoder attention "
                              "whose heads span the hidden size is supported")
    names = {"q": "query", "k": "key", "v": "value"}
    project = _separate_projections(builder, path, module, "{}", names)
    return self_attention(builder, path, value, embed, module.num_attention_heads, True,
                          project, None, None), None


def convert_gpt2_attention(builder: GraphBuilder, path: str, module: nn.Module, value: Value
                           ) -> tuple[Value, None]:
    """``GPT2Attention``: causal self-attention; ``c_attn`` ([D, 3D], a ``Conv1D``) holds the
    q, k, v columns, ``c_proj`` is the output projection."""
    embed = module.embed_dim
    if module.is_cross_attention or module.scaling != (embed // module.num_heads) ** -0.5:
        raise ConversionError(f"GPT2Attention {path!r}: only causal self-attention scaled by "
                              "1/sqrt(head_dim) is supported (no cross-attention, "
                              "scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False)")

    def project(qkv: tuple[NeuronGroup, ...], source: NeuronGroup):
        weight = builder.param(f"{path}.c_attn.weight", (Axis(source.gid), Axis(qkv[0].gid,
                                                                                outer=3)))
        bias = builder.param(f"{path}.c_attn.bias", (Axis(qkv[0].gid, outer=3),))
        return weight.T.reshape(3, embed, embed), bias.reshape(3, embed)

    out = self_attention(builder, path, value, embed, module.num_heads, True, project,
                         Weight(f"{path}.c_proj.weight", transposed=True),
                         Weight(f"{path}.c_proj.bias"), causal=True)
    return out, None


def convert_conv1d(builder: GraphBuilder, path: str, module: nn.Module, value: Value) -> Value:
    """``transformers.pytorch_utils.Conv1D``: a linear layer whose weight is stored [in, out]."""
    return linear(builder, path, value, module.nx, module.nf,
                  Weight(f"{path}.weight", transposed=True), Weight(f"{path}.bias"))


def _separate_projections(builder: GraphBuilder, path: str, module: nn.Module, pattern: str,
                          names: dict[str, str] | None = None):
    names = names or {r: r for r in "qkv"}

    def project(qkv: tuple[NeuronGroup, ...], source: NeuronGroup):
        paths = [f"{path}.{pattern.format(names[r])}" for r in "qkv"]
        weights = [builder.param(f"{p}.weight", (Axis(g.gid), Axis(source.gid)))
                   for p, g in zip(paths, qkv)]
        first = getattr(module, pattern.format(names["q"]))
        biases = None if first.bias is None else [
            builder.param(f"{p}.bias", (Axis(g.gid),)) for p, g in zip(paths, qkv)]
        return weights, biases

    return project


def _bias_of(layer: nn.Linear, path: str) -> Weight | None:
    return Weight(f"{path}.bias") if layer.bias is not None else None


_RESNET = "transformers.models.resnet.modeling_resnet."
_VIT = "transformers.models.vit.modeling_vit."
_DEIT = "transformers.models.deit.modeling_deit."
_BERT = "transformers.models.bert.modeling_bert."
_GPT2 = "transformers.models.gpt2.modeling_gpt2."
_CONVNEXT = "transformers.models.convnext.modeling_convnext."
_MOBILENET = "transformers.models.mobilenet_v2.modeling_mobilenet_v2."
TORCH_SUBSTITUTES = {nn.TransformerEncoderLayer: _encoder_layer, nn.TransformerEncoder: _encoder}
SUBSTITUTES: dict[str, Callable] = {
    _RESNET + "ResNetEmbeddings": _resnet_embeddings,
    _RESNET + "ResNetEncoder": _resnet_encoder,
    _RESNET + "ResNetModel": _resnet_model,
    _RESNET + "ResNetForImageClassification": _resnet_for_classification,
    _VIT + "ViTEmbeddings": _vit_embeddings,
    _VIT + "ViTLayer": _vit_layer,
    _VIT + "ViTModel": _vit_model,
    _VIT + "ViTForImageClassification": _vit_for_classification,
    _DEIT + "DeiTEmbeddings": _vit_embeddings,
    _DEIT + "DeiTLayer": _vit_layer,
    _DEIT + "DeiTModel": _vit_model,
    _DEIT + "DeiTForImageClassification": _vit_for_classification,
    _DEIT + "DeiTForImageClassificationWithTeacher": _deit_with_teacher,
    _BERT + "BertEmbeddings": _bert_embeddings,
    _BERT + "BertLayer": _bert_layer,
    _BERT + "BertEncoder": _bert_encoder,
    _BERT + "BertModel": _bert_model,
    _BERT + "BertForSequenceClassification": _bert_for_sequence_classification,
    _GPT2 + "GPT2Block": _gpt2_block,
    _GPT2 + "GPT2Model": _gpt2_model,
    _CONVNEXT + "ConvNextEmbeddings": _convnext_embeddings,
    _CONVNEXT + "ConvNextModel": _convnext_model,
    _CONVNEXT + "ConvNextForImageClassification": _convnext_for_classification,
    _MOBILENET + "MobileNetV2ConvLayer": _mobilenet_v2_conv_layer,
    _MOBILENET + "MobileNetV2Model": _mobilenet_v2_model,
    _MOBILENET + "MobileNetV2ForImageClassification": _mobilenet_v2_for_classification,
}
CONVERTERS = {_VIT + "ViTAttention": convert_qkvo_attention,
              _DEIT + "DeiTAttention": convert_qkvo_attention,
              _BERT + "BertSelfAttention": convert_bert_self_attention,
              _GPT2 + "GPT2Attention": convert_gpt2_attention,
              "transformers.pytorch_utils.Conv1D": convert_conv1d}
for _name_, _converter in CONVERTERS.items():
    register_named_converter(_name_, _converter)

_MASK = ("its mask token replaces masked patches (a product with the mask input), and its "
         "decoder reshapes tokens into an image, which a parameter graph has no place for")
REFUSED: dict[str, tuple[str, str]] = {  # class -> (path of the culprit below it, why)
    _VIT + "ViTForMaskedImageModeling": ("vit.embeddings", _MASK),
    _DEIT + "DeiTForMaskedImageModeling": ("deit.embeddings", _MASK),
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
    """The traceable equivalent of ``module``'s forward, if it is a known class."""
    name = _name(module)
    return TORCH_SUBSTITUTES.get(type(module)) or (SUBSTITUTES.get(name) if name else None)
