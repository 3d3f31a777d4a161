"""Image baselines (MLP, CNN, ViT) and the weight-space MLP: shapes, seeded determinism,
errors, and that each can fit a small labelled set (it really learns)."""

import pytest
import torch

from gmn.models.cnn import CNN
from gmn.models.mlp import MLP
from gmn.models.vit import ViT
from gmn.models.weight_mlp import WeightMLP

GREY = (1, 8, 8)
COLOUR = (3, 32, 32)


def _image_model(kind, in_shape, num_classes=10):
    if kind == "mlp":
        return MLP(in_shape, num_classes, hidden=(64, 64))
    if kind == "cnn":
        return CNN(in_shape, num_classes, channels=(8, 16, 16))
    return ViT(in_shape, num_classes, patch_size=4 if in_shape[1] >= 32 else 2, dim=32, depth=2)


def _seeded(factory, seed):
    torch.manual_seed(seed)
    return factory()


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
@pytest.mark.parametrize("in_shape", [GREY, COLOUR])
def test_image_model_shapes(kind, in_shape):
    model = _image_model(kind, in_shape, num_classes=7)
    assert model(torch.randn(5, *in_shape)).shape == (5, 7)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
def test_same_seed_same_model_and_output(kind):
    images = torch.randn(4, *GREY)
    a = _seeded(lambda: _image_model(kind, GREY), 3)
    b = _seeded(lambda: _image_model(kind, GREY), 3)
    c = _seeded(lambda: _image_model(kind, GREY), 4)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    a.eval(), b.eval(), c.eval()
    assert torch.equal(a(images), b(images))
    assert not torch.allclose(a(images), c(images))


def _fit(model, inputs, labels, steps=150, lr=3e-3):
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        return (model(inputs).argmax(1) == labels).float().mean().item()


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
def test_image_model_overfits_random_labels(kind):
    torch.manual_seed(0)
    images, labels = torch.randn(32, *GREY), torch.randint(0, 4, (32,))
    model = _image_model(kind, GREY, num_classes=4)
    assert _fit(model, images, labels) == 1.0


def test_weight_mlp_overfits_and_standardises():
    torch.manual_seed(0)
    params, labels = torch.randn(32, 50) * 5 + 3, torch.randint(0, 4, (32,))
    mean, std = params.mean(0), params.std(0)
    model = WeightMLP(50, 4, hidden=(64,), mean=mean, std=std)
    assert model(params).shape == (32, 4)
    assert _fit(model, params, labels) == 1.0
    # the statistics travel with the state_dict
    clone = WeightMLP(50, 4, hidden=(64,))
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone(params), model(params))


def test_weight_mlp_standardisation_is_applied():
    torch.manual_seed(0)
    params = torch.randn(6, 5)
    shifted = WeightMLP(5, 2, hidden=(4,), mean=torch.full((5,), 2.0), std=torch.full((5,), 3.0))
    plain = WeightMLP(5, 2, hidden=(4,))
    weights = dict(shifted.state_dict(), mean=torch.zeros(5), std=torch.ones(5))
    plain.load_state_dict(weights)
    assert torch.allclose(shifted(params * 3.0 + 2.0), plain(params), atol=1e-5)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="in_shape"):
        MLP((8, 8), 10)
    with pytest.raises(ValueError, match="patch_size"):
        ViT((1, 9, 9), 10, patch_size=2)
    with pytest.raises(ValueError, match="divide"):
        ViT(GREY, 10, dim=30, heads=4)
    with pytest.raises(ValueError, match="std must be positive"):
        WeightMLP(3, 2, std=torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        WeightMLP(3, 2)(torch.randn(2, 4))
