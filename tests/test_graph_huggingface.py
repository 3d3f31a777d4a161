"""Hugging Face transformers models, built offline from config objects: ResNet converts and
runs as its graph (also permuted), ViT is refused naming its embeddings."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

import gmn
from gmn.testing import randomise_norm_stats
from tests.test_graph_corpus import assert_same_function
from tests.test_graph_permutation import permute_state


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_hf_resnet_runs_as_its_graph(layer_type):
    torch.manual_seed(0)
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 2],
                          layer_type=layer_type, num_labels=4)
    model = ResNetForImageClassification(config)
    randomise_norm_stats(model, torch.Generator().manual_seed(1))
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(x).logits
        graph = gmn.from_state_dict(model)
        assert_same_function(gmn.graph.execute(graph, x), expected)
        permuted = permute_state(model, model.state_dict(), torch.Generator().manual_seed(3))
        clone = copy.deepcopy(model)
        clone.load_state_dict(permuted)
        assert_same_function(clone(x).logits, expected)
        assert_same_function(gmn.graph.execute(gmn.from_state_dict(permuted, like=model), x),
                             expected)


def test_hf_vit_is_refused_naming_its_embeddings():
    config = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=8,
                       num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                       num_labels=3)
    with pytest.raises(gmn.UnsupportedModuleError, match=r"'vit.embeddings' of type "
                                                         r"ViTEmbeddings.*class token"):
        gmn.from_state_dict(ViTForImageClassification(config).eval())
