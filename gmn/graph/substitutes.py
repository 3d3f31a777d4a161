"""Modules whose ``forward`` torch.fx cannot trace, traced through equivalent functions.

``nn.TransformerEncoderLayer``/``nn.TransformerEncoder`` (fast path and mask handling) here;
Hugging Face classes in :mod:`gmn.graph.huggingface`. Each function computes the module's
forward in eval mode, calling its submodules, so the tracer records their real dataflow.
"""

from __future__ import annotations

from torch import nn

from . import huggingface
from .errors import ConversionError


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


# modules whose forward torch.fx cannot trace, traced through an equivalent function instead
SUBSTITUTES = {nn.TransformerEncoderLayer: _encoder_layer, nn.TransformerEncoder: _encoder}


def substitute_for(m: nn.Module):
    return SUBSTITUTES.get(type(m)) or huggingface.substitute_for(m)
