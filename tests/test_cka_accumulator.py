"""The streaming accumulator equals the direct computation; the minibatch estimator."""

import pytest
import torch

from gmn.cka import CKAAccumulator, MinibatchCKA, linear_cka


def paired_data(n=120, seed=0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, generator=g, dtype=torch.float64)
    y = torch.tanh(x.reshape(n, -1) @ torch.randn(12, 7, generator=g, dtype=torch.float64))
    y = y + 0.3 * torch.randn(n, 7, generator=g, dtype=torch.float64)
    return x + offset, y - offset


def stream(x, y, sizes):
    accumulator = CKAAccumulator()
    start = 0
    for size in sizes:
        accumulator.update(x[start : start + size], y[start : start + size])
        start += size
    assert start == x.shape[0]
    return accumulator


def random_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    cuts = torch.randperm(n - 1, generator=g)[: 1 + seed % 9].add(1).sort().values.tolist()
    bounds = [0, *cuts, n]
    return [b - a for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_equals_direct_for_any_split(seed, debiased):
    x, y = paired_data(seed=seed)
    direct = linear_cka(x, y, debiased=debiased)
    sizes = random_split(x.shape[0], seed)
    assert float(stream(x, y, sizes).compute(debiased)) == pytest.approx(float(direct), abs=1e-10)


def test_single_sample_batches_equal_direct():
    x, y = paired_data(n=30)
    streamed = stream(x, y, [1] * 30)
    for debiased in (False, True):
        assert float(streamed.compute(debiased)) == pytest.approx(
            float(linear_cka(x, y, debiased=debiased)), abs=1e-10
        )


def test_large_feature_means_do_not_cancel():
    x, y = paired_data(n=200, seed=7)
    offset_x, offset_y = paired_data(n=200, seed=7, offset=1e4)
    for debiased in (False, True):
        reference = float(linear_cka(x, y, debiased=debiased))
        streamed = stream(offset_x, offset_y, [50, 50, 100]).compute(debiased)
        assert float(streamed) == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_merge_equals_one_accumulator_even_with_distant_origins(debiased):
    x, y = paired_data(n=150, seed=8)
    x[:60] += 50.0  # the two accumulators start from very different first-batch means
    left, right = stream(x[:60], y[:60], [20, 40]), stream(x[60:], y[60:], [45, 45])
    merged = CKAAccumulator().merge(left).merge(right).merge(CKAAccumulator())
    assert merged.n == 150
    assert float(merged.compute(debiased)) == pytest.approx(
        float(linear_cka(x, y, debiased=debiased)), abs=1e-10
    )


def test_state_size_does_not_grow_with_samples():
    x, y = paired_data(n=400, seed=9)
    small, large = stream(x[:8], y[:8], [8]), stream(x, y, [100] * 4)
    size = {k: v.numel() for k, v in small.sums.items()}
    assert size == {k: v.numel() for k, v in large.sums.items()}
    # Σxxᵀ, Σyyᵀ, Σxyᵀ; Σx, Σx‖x‖², Σx‖y‖² (and y's); five scalars: O(d²), no n
    assert sum(size.values()) == 12 * 12 + 7 * 7 + 12 * 7 + 3 * (12 + 7) + 5


def test_float32_batches_give_float64_result():
    x, y = paired_data(n=500, seed=10)
    streamed = stream(x.float(), y.float(), [128, 128, 244]).compute(debiased=True)
    assert streamed.dtype == torch.float64
    assert float(streamed) == pytest.approx(float(linear_cka(x, y, debiased=True)), abs=1e-5)


def test_accumulator_errors_name_what_is_wrong():
    x, y = paired_data(n=20)
    accumulator = CKAAccumulator().update(x[:10], y[:10])
    with pytest.raises(ValueError, match="x has 8 features per sample in this batch but 12"):
        accumulator.update(x[10:, :2], y[10:])
    with pytest.raises(ValueError, match="batch sizes differ: x has 10 rows, y has 9"):
        accumulator.update(x[10:], y[11:])
    with pytest.raises(ValueError, match="at least 4 samples, got n=3"):
        CKAAccumulator().update(x[:3], y[:3]).compute(debiased=True)
    other = CKAAccumulator().update(x[:5, :1], y[:5])
    with pytest.raises(ValueError, match="cannot merge: x has 4 features"):
        accumulator.merge(other)


def test_minibatch_estimator_with_one_batch_is_the_debiased_value():
    x, y = paired_data(n=64, seed=11)
    value = MinibatchCKA().update(x, y).compute()
    assert float(value) == pytest.approx(float(linear_cka(x, y, debiased=True)), abs=1e-12)


def test_minibatch_estimator_averages_per_batch_hsic_and_merges():
    x, y = paired_data(n=400, seed=12)
    halves = [MinibatchCKA().update(x[i : i + 100], y[i : i + 100]) for i in (0, 100, 200, 300)]
    merged = halves[0].merge(halves[1]).merge(halves[2]).merge(halves[3])
    exact = float(linear_cka(x, y, debiased=True))
    approx = float(merged.compute())
    assert merged.batches == 4
    assert approx != pytest.approx(exact, abs=1e-6)  # an approximation of the full-data value
    assert approx == pytest.approx(exact, abs=0.05)
    with pytest.raises(ValueError, match="before any update"):
        MinibatchCKA().compute()


def test_a_side_without_variance_gives_nan_with_a_warning():
    x, _ = paired_data(n=40)
    constant = torch.full((40, 5), 0.1, dtype=torch.float64)
    left, right = stream(x[:20], constant[:20], [20]), stream(x[20:], constant[20:], [7, 13])
    with pytest.warns(RuntimeWarning, match="y has zero variance"):
        assert torch.isnan(left.merge(right).compute(debiased=True))
    varied = constant.clone()
    varied[39, 2] = 0.2  # one differing value in the last batch is variance
    assert not torch.isnan(stream(x, varied, [20, 20]).compute())
