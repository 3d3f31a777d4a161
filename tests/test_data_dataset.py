"""INRDataset: graphs come from one template.batch call per minibatch and hold the parameters."""

import pytest
import torch

from gmn.data.augment import GaussianNoise
from gmn.data.batched_siren import init_params
from gmn.data.dataset import INRDataset
from gmn.graph.weights import Weights
from gmn.models.siren import SirenLayout


@pytest.fixture
def dataset():
    layout = SirenLayout(hidden=(8, 8))
    params = init_params(layout, list(range(10)))
    splits = {"train": torch.arange(6), "val": torch.tensor([6, 7]), "test": torch.tensor([8, 9])}
    return INRDataset(params, torch.arange(10) % 3, layout, splits)


def test_loader_batches_with_one_template_call(dataset, monkeypatch):
    calls = []
    batch_of = dataset.template.batch
    monkeypatch.setattr(dataset.template, "batch",
                        lambda params, y=None, **kwargs: calls.append(len(y))
                        or batch_of(params, y=y, **kwargs))
    batches = list(dataset.loader("train", batch_size=4, shuffle=False, normalize=False))
    assert calls == [4, 2]
    first = batches[0]
    assert first.y.tolist() == [0, 1, 2, 0]
    stacked = Weights.from_graphs(first).stacked()
    for key, value in dataset.weights(torch.arange(4)).stacked().items():
        assert torch.equal(stacked[key], value), key


def test_loader_normalises_with_train_statistics_and_shuffles_by_seed(dataset):
    batch = next(iter(dataset.loader("test", batch_size=2)))
    stacked = Weights.from_graphs(batch).stacked()
    expected = dataset.normalization(dataset.weights(torch.tensor([8, 9]))).stacked()
    assert all(torch.allclose(stacked[k], expected[k]) for k in expected)
    order = [next(iter(dataset.loader("train", batch_size=6, seed=s))).y.tolist() for s in (1, 1)]
    assert order[0] == order[1]


def test_augmentation_is_applied_per_minibatch(dataset):
    loader = dataset.loader("val", batch_size=2, transform=GaussianNoise(0.1), normalize=False)
    first, second = (Weights.from_graphs(next(iter(loader))).stacked() for _ in range(2))
    assert not torch.equal(first["seq.1.weight"], second["seq.1.weight"])


def test_unknown_split_and_wrong_labels_are_named(dataset):
    with pytest.raises(KeyError, match="validation"):
        dataset.split_indices("validation")
    with pytest.raises(ValueError, match="10 INRs but labels"):
        INRDataset(dataset.weights().stacked(), torch.zeros(3), dataset.layout, dataset.splits)
