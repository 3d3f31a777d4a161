"""Augmentations: what each one does to the rendered image, and that random ones are random."""

import math

import pytest
import torch

from gmn.data.augment import (
    Compose,
    GaussianNoise,
    RandomPermutation,
    RandomPixelShift,
    RandomRotation,
    RandomScale,
    RandomTranslation,
    WeightDropout,
    mixup,
    rotate_inputs,
    scale_inputs,
    translate_inputs,
)
from gmn.data.batched_siren import init_params, render
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import SirenLayout

LAYOUT = SirenLayout(w0=5.0)  # smooth enough that a shifted grid is a shifted picture
TEMPLATE = GraphTemplate.from_module(LAYOUT.build())


def sirens(stacked: dict) -> Weights:
    return Weights.from_stacked(TEMPLATE, stacked)


def draw(weights: Weights, height: int, width: int) -> torch.Tensor:
    return render(weights, height, width)


@pytest.fixture
def params():
    return sirens(init_params(LAYOUT, [1, 2, 3, 4]))


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_permutation_keeps_the_image_and_moves_the_weights(params):
    permuted = RandomPermutation()(params, generator())
    assert torch.allclose(draw(permuted, 9, 9), draw(params, 9, 9), atol=1e-5)
    assert not torch.equal(permuted.stacked()["seq.1.weight"], params.stacked()["seq.1.weight"])
    again = RandomPermutation()(params, generator())
    assert torch.equal(again.params, permuted.params), "seeded"


def test_translation_shifts_the_image_by_whole_pixels(params):
    height, k = 11, 3
    shift = torch.tensor([[2 * k / (height - 1), 0.0]]).repeat(4, 1)  # k rows along y
    before = draw(params, height, height)
    after = draw(translate_inputs(params, shift), height, height)
    assert torch.allclose(after[:, :, : height - k], before[:, :, k:], atol=1e-5)
    assert not torch.allclose(after, before, atol=1e-3)


def test_random_pixel_shift_moves_each_image_by_whole_pixels_within_the_range(params):
    height, width, reach = 9, 12, 2
    before = draw(params, height, width)
    after = draw(RandomPixelShift(height, width, reach)(
        params, torch.Generator().manual_seed(3)), height, width)
    seen = set()
    for b in range(len(before)):  # find the (dy, dx) whose overlap agrees: exactly one does
        matches = [
            (dy, dx)
            for dy in range(-reach, reach + 1)
            for dx in range(-reach, reach + 1)
            if torch.allclose(
                after[b, :, max(0, -dy): height - max(0, dy), max(0, -dx): width - max(0, dx)],
                before[b, :, max(0, dy): height + min(0, dy), max(0, dx): width + min(0, dx)],
                atol=1e-4,
            )
        ]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 1, "every INR got the same shift"
    with pytest.raises(ValueError, match="max_pixels"):
        RandomPixelShift(8, 8, -1)


def test_scaling_by_minus_one_flips_and_a_quarter_turn_rotates(params):
    before = draw(params, 8, 8)
    flipped = draw(scale_inputs(params, -torch.ones(4)), 8, 8)
    assert torch.allclose(flipped, before.flip(-1, -2), atol=1e-5)
    turned = draw(rotate_inputs(params, torch.full((4,), math.pi / 2)), 8, 8)
    # pixel (y, x) shows the old (−x, y): new[i, j] = old[H−1−j, i], a clockwise quarter turn
    assert torch.allclose(turned, torch.rot90(before, -1, dims=(-2, -1)), atol=1e-5)


def test_gaussian_noise_is_random_with_the_requested_std():
    params = sirens({k: torch.zeros(64, *v.shape[1:]) for k, v in init_params(LAYOUT, [0]).items()})
    noise = GaussianNoise(0.05)
    shared = generator()
    first, second = noise(params, shared), noise(params, shared)
    assert not torch.equal(first.stacked()["seq.1.weight"], second.stacked()["seq.1.weight"])
    values = first.params.flatten()
    assert abs(values.std().item() - 0.05) < 0.002 and abs(values.mean().item()) < 0.002


def test_gaussian_noise_takes_one_std_per_parameter():
    zeros = {k: torch.zeros(512, *v.shape[1:]) for k, v in init_params(LAYOUT, [0]).items()}
    params = sirens(zeros)
    std = torch.zeros(params.params.shape[1])
    std[:3] = torch.tensor([0.5, 1.0, 2.0])
    noisy = GaussianNoise(std)(params, generator()).params
    assert torch.equal(noisy[:, 3:], params.params[:, 3:])  # std 0: untouched
    assert torch.allclose(noisy[:, :3].std(0), std[:3], rtol=0.1)
    with pytest.raises(ValueError, match="2 stds for networks of"):
        GaussianNoise(torch.ones(2))(params, generator())


def test_weight_dropout_zeroes_weights_only_and_keeps_the_mean(params):
    ones = Weights(TEMPLATE, torch.ones(256, TEMPLATE.num_params))
    dropped = WeightDropout(0.3)(ones, generator())
    weights = dropped.stacked()["seq.1.weight"]
    assert abs((weights == 0).float().mean().item() - 0.3) < 0.01
    assert abs(weights.mean().item() - 1.0) < 0.02
    assert torch.equal(dropped.stacked()["seq.1.bias"], ones.stacked()["seq.1.bias"])
    with pytest.raises(ValueError, match="probability"):
        WeightDropout(1.0)


def test_random_input_transforms_differ_per_inr_and_follow_the_seed(params):
    augment = Compose([RandomScale(0.5, 1.5), RandomRotation(30), RandomTranslation(0.2)])
    first = augment(params, generator(5)).stacked()
    assert torch.equal(first["seq.0.bias"], augment(params, generator(5)).stacked()["seq.0.bias"])
    before = params.stacked()
    assert torch.equal(first["seq.1.weight"], before["seq.1.weight"]), "first layer only"
    norms = first["seq.0.weight"].norm(dim=(1, 2)) / before["seq.0.weight"].norm(dim=(1, 2))
    assert len(set(norms.round(decimals=4).tolist())) == 4


def test_mixup_mixes_parameters_and_labels_with_one_weight_per_inr(params):
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = mixup(params, labels, 5, generator(), strength=1.0)
    assert targets.shape == (4, 5)
    assert torch.allclose(targets.sum(1), torch.ones(4))
    assert bool((targets[:, 4] == 0).all())  # no INR carries class 4
    # each INR's own weight lam is its label's share; the other share names its partner
    theta = params.params
    for i in range(4):
        lam = float(targets[i, labels[i]])
        partner = [j for j in range(4) if j != i and targets[i, labels[j]] > 0]
        expected = theta[i] if not partner else lam * theta[i] + (1 - lam) * theta[partner[0]]
        assert torch.allclose(mixed.params[i], expected, atol=1e-6)
    again, again_targets = mixup(params, labels, 5, generator(), strength=1.0)
    assert torch.equal(again.params, mixed.params) and torch.equal(again_targets, targets)


def test_mixup_strength_bounds_the_partner_share_and_is_checked(params):
    labels = torch.tensor([0, 1, 2, 3])
    _, targets = mixup(params, labels, 4, generator(3), strength=0.25)
    own = targets[torch.arange(4), labels]
    assert bool((own >= 0.75 - 1e-6).all()) and bool((own <= 1.0).all())
    with pytest.raises(ValueError, match="mixup strength"):
        mixup(params, labels, 4, generator(), strength=0.0)


def test_an_augmentation_is_a_trainer_transform_of_parameter_batches(params, tmp_path):
    """On a ``(params [B, P], labels)`` batch, ``Compose(..., template=)`` gives bit for bit
    what it gives on ``Weights`` and keeps the labels; the Trainer takes it as its transform."""
    from torch import nn
    from torch.utils.data import TensorDataset

    from gmn.train import TrainConfig, Trainer

    flat = params.params
    labels = torch.arange(len(flat))
    steps = [GaussianNoise(0.1), RandomPixelShift(7, 7), RandomPermutation()]
    want = Compose(steps)(params, generator(3)).params
    got, same_labels = Compose(steps, template=TEMPLATE)((flat, labels), generator(3))
    assert torch.equal(got, want) and torch.equal(same_labels, labels)
    pair = RandomPermutation()((params, labels), generator(3))
    assert torch.equal(pair[0].params, RandomPermutation()(params, generator(3)).params)
    with pytest.raises(TypeError, match="template"):
        GaussianNoise(0.1)(flat, generator())
    with pytest.raises(TypeError, match="got str"):
        GaussianNoise(0.1)("params", generator())

    data = TensorDataset(flat, labels % 2)
    trained = []
    for name, transform in (("plain", None), ("noisy", Compose([GaussianNoise(1.0)], TEMPLATE))):
        config = TrainConfig(run_dir=str(tmp_path / name), epochs=1, batch_size=2, lr=1e-2,
                             progress=False)
        trainer = Trainer(lambda: nn.Linear(flat.shape[1], 2), data, data, config=config,
                          transform=transform)
        trainer.fit()
        trained.append(trainer.model.weight.detach().clone())
    assert not torch.equal(*trained)  # the transform was applied
