"""MinibatchGrid is Nguyen et al.'s minibatch CKA, checked against a numpy implementation."""

import numpy as np
import pytest
import torch

from gmn.cka import MinibatchGrid, cka


def unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC from two Gram matrices (numpy, float64)."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    ones = np.ones(n)
    trace = np.sum(k * l)
    middle = ones @ k @ ones * (ones @ l @ ones) / ((n - 1) * (n - 2))
    last = 2 / (n - 2) * ones @ k @ l @ ones
    return (trace + middle - last) / (n * (n - 3))


def nguyen_minibatch_cka(xs, ys) -> float:
    """Σ_b HSIC₁(K_b, L_b) / sqrt(Σ_b HSIC₁(K_b, K_b) · Σ_b HSIC₁(L_b, L_b)), linear kernel."""
    cross = self_x = self_y = 0.0
    for x, y in zip(xs, ys):
        k, l = x @ x.T, y @ y.T
        cross += unbiased_hsic(k, l)
        self_x += unbiased_hsic(k, k)
        self_y += unbiased_hsic(l, l)
    return cross / np.sqrt(self_x * self_y)


def test_the_issue_repro_batches_of_different_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g, dtype=torch.float64)
    y = x + torch.randn(512, 16, generator=g, dtype=torch.float64)
    x[256:] *= 3  # the two batches get different power-of-two scalings
    estimator = MinibatchGrid()
    for a, b in zip(x.split(256), y.split(256)):
        estimator.update({"x": a}, {"y": b})
    reference = nguyen_minibatch_cka(
        [a.numpy() for a in x.split(256)], [b.numpy() for b in y.split(256)]
    )
    assert estimator.compute()["x", "y"] == pytest.approx(reference, abs=1e-10)
    assert reference == pytest.approx(0.3812, abs=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_uneven_batches_with_offsets_and_scales(dtype):
    g = torch.Generator().manual_seed(1)
    sizes = [7, 60, 33, 100]
    xs = [
        torch.randn(s, 12, generator=g, dtype=torch.float64) * 10.0**k + 5
        for k, s in enumerate(sizes)
    ]
    ys = [
        torch.tanh(x[:, :5]) + 0.3 * torch.randn(len(x), 5, generator=g, dtype=torch.float64)
        for x in xs
    ]
    estimator = MinibatchGrid()
    for x, y in zip(xs, ys):
        estimator.update([x.to(dtype)], [y.to(dtype)])
    reference = nguyen_minibatch_cka(
        [x.to(dtype).double().numpy() - x.to(dtype).double().numpy().mean(0) for x in xs],
        [y.to(dtype).double().numpy() for y in ys],
    )
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    assert estimator.compute()["0", "0"] == pytest.approx(reference, abs=tolerance)

def paired_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, generator=g, dtype=torch.float64)
    y = torch.tanh(x.reshape(n, -1) @ torch.randn(12, 7, generator=g, dtype=torch.float64))
    return x, y + 0.3 * torch.randn(n, 7, generator=g, dtype=torch.float64)


def test_minibatch_estimator_with_one_batch_is_the_debiased_value():
    x, y = paired_data(n=64, seed=11)
    value = MinibatchGrid().update({"x": x}, {"y": y}).compute()["x", "y"]
    assert value == pytest.approx(float(cka(x, y, debiased=True)), abs=1e-12)


def test_minibatch_estimator_averages_per_batch_hsic_and_merges():
    x, y = paired_data(n=400, seed=12)
    halves = [MinibatchGrid().update([x[i : i + 100]], [y[i : i + 100]])
              for i in range(0, 400, 100)]
    merged = halves[0].merge(halves[1]).merge(halves[2]).merge(halves[3])
    exact = float(cka(x, y, debiased=True))
    approx = merged.compute()["0", "0"]
    assert merged.batches == 4
    assert approx != pytest.approx(exact, abs=1e-6)  # an approximation of the full-data value
    assert approx == pytest.approx(exact, abs=0.05)
    with pytest.raises(ValueError, match="before any update"):
        MinibatchGrid().compute()
