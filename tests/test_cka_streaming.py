"""The exact streaming grid, one pair at a time, equals the direct computation."""

import math

import pytest
import torch

from gmn.cka import CKAGrid, cka


def paired_data(n=120, seed=0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, generator=g, dtype=torch.float64)
    y = torch.tanh(x.reshape(n, -1) @ torch.randn(12, 7, generator=g, dtype=torch.float64))
    y = y + 0.3 * torch.randn(n, 7, generator=g, dtype=torch.float64)
    return x + offset, y - offset


def stream(x, y, sizes):
    grid = CKAGrid()
    start = 0
    for size in sizes:
        grid.update({"x": x[start : start + size]}, {"y": y[start : start + size]})
        start += size
    assert start == x.shape[0]
    return grid


def value(grid, debiased=False) -> float:
    return grid.compute(debiased)["x", "y"]


def random_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    cuts = torch.randperm(n - 1, generator=g)[: 1 + seed % 9].add(1).sort().values.tolist()
    bounds = [0, *cuts, n]
    return [b - a for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_equals_direct_for_any_split(seed, debiased):
    x, y = paired_data(seed=seed)
    direct = cka(x, y, debiased=debiased)
    sizes = random_split(x.shape[0], seed)
    assert value(stream(x, y, sizes), debiased) == pytest.approx(float(direct), abs=1e-10)


def test_single_sample_batches_equal_direct():
    x, y = paired_data(n=30)
    streamed = stream(x, y, [1] * 30)
    for debiased in (False, True):
        assert value(streamed, debiased) == pytest.approx(
            float(cka(x, y, debiased=debiased)), abs=1e-10
        )


def test_large_feature_means_do_not_cancel():
    x, y = paired_data(n=200, seed=7)
    offset_x, offset_y = paired_data(n=200, seed=7, offset=1e4)
    for debiased in (False, True):
        reference = float(cka(x, y, debiased=debiased))
        streamed = value(stream(offset_x, offset_y, [50, 50, 100]), debiased)
        assert streamed == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_merge_equals_one_accumulator_even_with_distant_origins(debiased):
    x, y = paired_data(n=150, seed=8)
    x[:60] += 50.0  # the two accumulators start from very different first-batch means
    left, right = stream(x[:60], y[:60], [20, 40]), stream(x[60:], y[60:], [45, 45])
    merged = CKAGrid().merge(left).merge(right).merge(CKAGrid())
    assert merged.n == 150
    assert value(merged, debiased) == pytest.approx(
        float(cka(x, y, debiased=debiased)), abs=1e-10
    )


def test_float32_batches_give_float64_result():
    x, y = paired_data(n=500, seed=10)
    streamed = stream(x.float(), y.float(), [128, 128, 244]).compute(debiased=True).values
    assert streamed.dtype == torch.float64
    assert float(streamed[0, 0]) == pytest.approx(float(cka(x, y, debiased=True)), abs=1e-5)


def test_grid_errors_name_what_is_wrong():
    x, y = paired_data(n=20)
    grid = CKAGrid().update({"x": x[:10]}, {"y": y[:10]})
    with pytest.raises(ValueError, match=r"rows\['x'\] has 8 features per sample in this batch"):
        grid.update({"x": x[10:, :2]}, {"y": y[10:]})
    with pytest.raises(ValueError, match=r"cols\['y'\] has 9 rows in this batch, not 10"):
        grid.update({"x": x[10:]}, {"y": y[11:]})
    with pytest.raises(ValueError, match="this batch's rows layers are \\['z'\\], earlier ones"):
        grid.update({"z": x[10:]}, {"y": y[10:]})
    with pytest.raises(ValueError, match="at least 4 samples, got n=3"):
        CKAGrid().update({"x": x[:3]}, {"y": y[:3]}).compute(debiased=True)
    other = CKAGrid().update({"x": x[:5, :1]}, {"y": y[:5]})
    with pytest.raises(ValueError, match=r"cannot merge: rows\['x'\] has 4 features"):
        grid.merge(other)
    with pytest.raises(TypeError, match="rows must be a dict"):
        CKAGrid().update(x, {"y": y})


def test_a_side_without_variance_gives_nan_with_a_warning():
    x, _ = paired_data(n=40)
    constant = torch.full((40, 5), 0.1, dtype=torch.float64)
    left, right = stream(x[:20], constant[:20], [20]), stream(x[20:], constant[20:], [7, 13])
    with pytest.warns(RuntimeWarning, match=r"cols\['y'\] has zero variance"):
        assert math.isnan(value(left.merge(right), debiased=True))
    varied = constant.clone()
    varied[39, 2] = 0.2  # one differing value in the last batch is variance
    assert not math.isnan(value(stream(x, varied, [20, 20])))
