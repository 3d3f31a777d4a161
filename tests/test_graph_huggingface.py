"""Hugging Face transformers models, built offline from config objects: ResNet and ViT convert
and run as their graphs (also permuted) and give their state_dicts back bit for bit; ViT for
masked image modelling is refused naming its embeddings."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTForMaskedImageModeling,
    ViTModel,
)

import gmn
from gmn.graph.vocab import EDGE_TYPE, NODE_TYPE
from gmn.testing import randomise_norm_stats
from tests.test_graph_convert import assert_same_state_dict
from tests.test_graph_corpus import assert_same_function
from tests.test_graph_permutation import permute_state

VIT = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=8, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=16, num_labels=3)


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


@pytest.mark.parametrize("cls", [ViTForImageClassification, ViTModel])
def test_hf_vit_runs_as_its_graph(cls):
    """Class token and position embeddings are token_embedding edges; the classifier reads the
    class token (x[:, 0, :]), ViTModel's pooler too."""
    torch.manual_seed(0)
    model = cls(VIT).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # larger than the 0.02 initialisation: attention is not uniform
        for p in model.parameters():
            p.normal_(0.0, 0.5, generator=generator)

    def run(m, x):
        out = m(x)
        return out.logits if cls is ViTForImageClassification else out.pooler_output

    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = run(model, x)
        graph = gmn.from_state_dict(model)
        assert_same_function(gmn.graph.execute(graph, x), expected)
        assert_same_state_dict(gmn.to_state_dict(graph), model.state_dict())
        tokens = 1 + (16 // 4) ** 2
        assert int((graph.node_type == NODE_TYPE["token"]).sum()) == 1 + tokens
        assert int((graph.edge_type == EDGE_TYPE["token_embedding"]).sum()) == 8 * (1 + tokens)
        permuted = permute_state(model, model.state_dict(), torch.Generator().manual_seed(3))
        key = "layers.0.attention.q_proj.weight"
        key = key if cls is ViTModel else "vit." + key
        assert not torch.equal(permuted[key], model.state_dict()[key])
        clone = copy.deepcopy(model)
        clone.load_state_dict(permuted)
        assert_same_function(run(clone, x), expected)
        assert_same_function(gmn.graph.execute(gmn.from_state_dict(permuted, like=model), x),
                             expected)


def test_hf_vit_masked_image_modelling_is_refused_naming_its_embeddings():
    with pytest.raises(gmn.UnsupportedModuleError, match=r"'vit.embeddings' of type "
                                                         r"ViTEmbeddings.*mask token"):
        gmn.from_state_dict(ViTForMaskedImageModeling(VIT).eval())
