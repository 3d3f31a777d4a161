"""Permutation test, shuffled-row baseline and jackknife interval."""

import pytest
import torch

from gmn.cka import cka, jackknife_interval, permutation_test


def related(n=80, seed=0, noise=1.0, d=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, x + noise * torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_null_values_are_cka_with_shuffled_rows_and_p_value_counts_them(kernel):
    x, y = related(noise=3.0)
    test = permutation_test(x, y, n_permutations=15, seed=4, debiased=True, kernel=kernel)
    g = torch.Generator().manual_seed(4)
    expected = [
        float(cka(x, y[torch.randperm(80, generator=g)], debiased=True, kernel=kernel))
        for _ in range(15)
    ]
    assert test.null.tolist() == pytest.approx(expected, abs=1e-12)
    exceed = sum(v >= float(test.value) for v in expected)
    assert test.p_value == (1 + exceed) / 16
    assert test.baseline == pytest.approx(sum(expected) / 15)


def test_dependent_data_gets_the_smallest_p_value():
    x, y = related(noise=0.5)
    test = permutation_test(x, y, n_permutations=49)
    assert test.p_value == pytest.approx(1 / 50)


def test_shuffled_baseline_is_near_zero_only_for_the_debiased_estimator():
    x, y = related(n=60, d=500, seed=1)
    biased = permutation_test(x, y, n_permutations=10)
    debiased = permutation_test(x, y, n_permutations=10, debiased=True)
    assert biased.baseline > 0.5
    assert abs(debiased.baseline) < 0.02


def test_jackknife_interval_brackets_the_value_and_narrows_with_more_samples():
    small = jackknife_interval(*related(n=100, seed=2), groups=10, level=0.9)
    large = jackknife_interval(*related(n=1600, seed=2), groups=10, level=0.9)
    for interval in (small, large):
        assert interval.low < interval.value < interval.high
        assert interval.level == 0.9
    assert large.standard_error < small.standard_error / 2


def test_jackknife_interval_is_a_point_for_a_perfect_match():
    x, _ = related(n=50, seed=3)
    interval = jackknife_interval(x, 2 * x + 1, groups=5)
    assert interval.low == pytest.approx(1.0, abs=1e-12)
    assert interval.high == pytest.approx(1.0, abs=1e-12)


def test_statistics_errors_name_what_is_wrong():
    x, y = related(n=20)
    with pytest.raises(ValueError, match="groups must be between 2 and n=20, got 21"):
        jackknife_interval(x, y, groups=21)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        jackknife_interval(x, y, level=1.5)
    with pytest.raises(ValueError, match="n_permutations must be at least 1"):
        permutation_test(x, y, n_permutations=0)
    with pytest.raises(ValueError, match="at least 4 samples, got n=3"):
        jackknife_interval(x[:6], y[:6], groups=2, debiased=True)
