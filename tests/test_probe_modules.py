"""Probes on ordinary image models: known answers, copies at capture, order, cleanup."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gmn
from gmn.models.vit import ViT


def image_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_states_are_copied_before_an_inplace_relu():
    model = image_mlp()
    images = torch.randn(5, 1, 4, 4)
    expected = model[1](images.flatten(1))
    assert (expected < 0).any()  # the in-place ReLU would zero these
    with gmn.probe(model, layers=["1"]) as p:
        model(images)
    torch.testing.assert_close(p.states()["1"], expected)


def test_collect_follows_loader_order_and_flattens_per_sample():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    images, labels = torch.randn(10, 1, 4, 4), torch.arange(10)
    loader = DataLoader(TensorDataset(images, labels), batch_size=3, shuffle=False)
    with gmn.probe(model) as p:
        states = p.collect(loader)
    assert list(states) == ["0", "1", "2", "3"]
    torch.testing.assert_close(states["0"], model[0](images).flatten(1))
    torch.testing.assert_close(states["3"], model(images))
    assert all(s.shape[0] == 10 and s.dim() == 2 for s in states.values())
    assert all_hooks(model) == 0


def test_vit_blocks_are_probed_by_default_as_token_sequences():
    torch.manual_seed(0)
    model = ViT((1, 4, 4), num_classes=3, patch_size=2, dim=8, depth=2, heads=2).eval()
    images = torch.randn(4, 1, 4, 4)
    with gmn.probe(model, to_cpu=True) as p:
        states = p.run(images)
    assert {"blocks.0", "blocks.1", "head"} <= set(states)
    assert states["blocks.1"].shape == (4, 5 * 8)  # 1 class token + 4 patches, dim 8
    torch.testing.assert_close(states["head"], model(images))


def test_hooks_are_removed_after_an_exception():
    model = image_mlp()
    with pytest.raises(RuntimeError, match="boom"):
        with gmn.probe(model, layers=["1", "3"]):
            assert all_hooks(model) == 2
            raise RuntimeError("boom")
    assert all_hooks(model) == 0


def test_bad_layer_names_and_repeated_modules_are_reported():
    model = image_mlp()
    with pytest.raises(KeyError, match="'fc9'"):
        with gmn.probe(model, layers=["fc9"]):
            pass
    relu = nn.ReLU()
    twice = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    with gmn.probe(twice, layers=["1"]) as p:
        with pytest.raises(RuntimeError, match="'1' ran 2 times"):
            p.run(torch.randn(3, 2))


def test_an_unbatched_input_is_refused_not_read_as_samples():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    with pytest.raises(ValueError, match=r"module '0' returned a 1-D tensor of shape \(8,\)"):
        with gmn.probe(model):
            model(torch.randn(8))
    assert all_hooks(model) == 0


def test_one_value_per_sample_from_a_batched_input_is_kept():
    class RowSum(nn.Module):
        def forward(self, x):
            return x.sum(dim=1)

    model = nn.Sequential(nn.Linear(8, 4), RowSum())
    inputs = torch.randn(5, 8)
    with gmn.probe(model) as p:
        model(inputs)
    torch.testing.assert_close(p.states()["1"], model(inputs)[:, None])
