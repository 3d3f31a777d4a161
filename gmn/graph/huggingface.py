"""Hugging Face ``transformers`` modules whose ``forward`` plain ``torch.fx`` cannot trace.

Their forwards check input shapes (``if num_channels != self.num_channels``) and return
``ModelOutput`` objects; tracing them through the equivalent functions below records the same
dataflow. Keyed by qualified class name, so ``transformers`` is never imported here. Each
function computes what the module's forward returns in eval mode (for the image-classification
models: the logits; for the base models: the pooled features).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


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


_PREFIX = "transformers.models.resnet.modeling_resnet."
SUBSTITUTES: dict[str, Callable] = {
    _PREFIX + "ResNetEmbeddings": _resnet_embeddings,
    _PREFIX + "ResNetEncoder": _resnet_encoder,
    _PREFIX + "ResNetModel": _resnet_model,
    _PREFIX + "ResNetForImageClassification": _resnet_for_classification,
}


_VIT = "transformers.models.vit.modeling_vit."
_VIT_WHY = ("its class token and position embeddings are parameters used directly in forward, "
            "which a parameter graph has no place for")
REFUSED: dict[str, tuple[str, str]] = {  # class -> (path of the culprit below it, why)
    _VIT + "ViTForImageClassification": ("vit.embeddings", _VIT_WHY),
    _VIT + "ViTModel": ("embeddings", _VIT_WHY),
    _VIT + "ViTEmbeddings": ("", _VIT_WHY),
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
