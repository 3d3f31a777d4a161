"""Procrustes, CCA/SVCCA/PWCCA, RSA and p-value corrections against independent code."""

import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import pdist
from scipy.stats import rankdata, spearmanr

from gmn.cka import (
    CKAGrid,
    CKAMatrix,
    adjust_p_values,
    canonical_correlations,
    cka_matrix,
    mean_cca,
    plot_cka,
    procrustes_distance,
    procrustes_similarity,
    pwcca,
    rsa,
    similarity_matrix,
    svcca,
)
from gmn.cka.measures import average_ranks


def data(n=200, p=6, q=4, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, p)) + 5
    y = np.tanh(x[:, :q] - 5) @ g.normal(size=(q, q)) + 0.5 * g.normal(size=(n, q))
    return x, y


def normalised(a):
    a = a - a.mean(axis=0)
    return a / np.linalg.norm(a)


def test_procrustes_matches_scipy_orthogonal_procrustes():
    x, y = data()
    nx, ny = normalised(x), np.pad(normalised(y), ((0, 0), (0, 2)))  # same width for scipy
    rotation, _ = orthogonal_procrustes(ny, nx)
    expected = np.linalg.norm(nx - ny @ rotation)
    assert float(procrustes_distance(x, y)) == pytest.approx(expected, abs=1e-12)
    angular = np.arccos(1 - expected**2 / 2)
    assert float(procrustes_distance(x, y, angular=True)) == pytest.approx(angular, abs=1e-10)


def test_procrustes_is_zero_up_to_rotation_translation_and_scale():
    x, _ = data()
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    assert float(procrustes_similarity(x, 3 * x @ q - 7)) == pytest.approx(1, abs=1e-12)
    assert float(procrustes_distance(x, 3 * x @ q - 7)) == pytest.approx(0, abs=1e-6)
    stretched = x * np.array([1, 1, 1, 1, 1, 10])  # not invariant to anisotropic scaling
    assert float(procrustes_distance(x, stretched)) > 0.1


def numpy_canonical_correlations(x, y):
    """ρ² are the eigenvalues of Σxx⁻¹ Σxy Σyy⁻¹ Σyx (Hotelling)."""
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    sxx, syy, sxy = x.T @ x, y.T @ y, x.T @ y
    matrix = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    squared = np.sort(np.linalg.eigvals(matrix).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(squared, 0, 1))


def test_canonical_correlations_match_hotelling():
    x, y = data()
    expected = numpy_canonical_correlations(x, y)
    got = canonical_correlations(x, y).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)
    assert float(mean_cca(x, y)) == pytest.approx(expected.mean(), abs=1e-10)
    mixed = x @ np.random.default_rng(2).normal(size=(6, 6))  # invertible map: all ρ = 1
    np.testing.assert_allclose(canonical_correlations(x, mixed).numpy(), 1, atol=1e-10)


def test_svcca_reduces_to_the_directions_explaining_99_percent_first():
    g = np.random.default_rng(3)
    x = g.normal(size=(300, 8)) * np.array([10, 8, 6, 5, 4, 3, 0.01, 0.01])
    y = x[:, :5] @ g.normal(size=(5, 5)) + g.normal(size=(300, 5))

    def reduced(a):
        a = a - a.mean(axis=0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99) + 1)
        return u[:, :k] * s[:k]

    expected = numpy_canonical_correlations(reduced(x), reduced(y)).mean()
    assert float(svcca(x, y)) == pytest.approx(expected, abs=1e-10)
    assert reduced(x).shape[1] == 6  # the two near-silent directions are dropped


def test_pwcca_matches_morcos_weights():
    x, y = data(seed=4)
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    # canonical directions of x from the whitened cross-covariance
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    inv_sqrt_x = evecs @ np.diag(evals**-0.5) @ evecs.T
    evals, evecs = np.linalg.eigh(yc.T @ yc)
    inv_sqrt_y = evecs @ np.diag(evals**-0.5) @ evecs.T
    u, rho, _ = np.linalg.svd(inv_sqrt_x @ xc.T @ yc @ inv_sqrt_y)
    k = len(rho)
    variates = xc @ inv_sqrt_x @ u[:, :k]  # unit-norm canonical variates of x
    weights = np.abs(variates.T @ xc).sum(axis=1)
    expected = (weights * rho).sum() / weights.sum()
    assert float(pwcca(x, y)) == pytest.approx(expected, abs=1e-10)
    assert float(pwcca(x, x @ np.random.default_rng(5).normal(size=(6, 6)))) == pytest.approx(1)


@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_rsa_is_spearman_of_the_scipy_rdms(distance):
    x, y = data(n=60)
    expected = spearmanr(pdist(x, distance), pdist(y, distance)).statistic
    assert float(rsa(x, y, distance=distance)) == pytest.approx(expected, abs=1e-12)


def test_average_ranks_of_ties_match_scipy():
    values = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], dtype=float)
    np.testing.assert_array_equal(average_ranks(torch.from_numpy(values)).numpy(), rankdata(values))


def loop_holm(p):
    order = np.argsort(p)
    m, out, running = len(p), np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def loop_bh(p):
    order = np.argsort(p)[::-1]
    m, out, running = len(p), np.empty(len(p)), 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, m / rank * p[i])
        out[i] = running
    return out


def test_corrections_known_answers_and_loops():
    p = torch.tensor([0.01, 0.04, 0.03, 0.005], dtype=torch.float64)
    assert adjust_p_values(p, "holm").tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_p_values(p, "bh").tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    g = np.random.default_rng(6)
    matrix = g.uniform(size=(5, 7)) ** 3
    for method, loop in (("holm", loop_holm), ("bh", loop_bh)):
        got = adjust_p_values(torch.from_numpy(matrix), method)
        assert got.shape == (5, 7)
        np.testing.assert_allclose(got.numpy().ravel(), loop(matrix.ravel()), atol=1e-15)
    with_nan = torch.from_numpy(matrix.copy())
    with_nan[1, 2] = float("nan")
    adjusted = adjust_p_values(with_nan, "holm")
    assert torch.isnan(adjusted[1, 2]) and int(torch.isnan(adjusted).sum()) == 1
    kept = np.delete(matrix.ravel(), 1 * 7 + 2)
    np.testing.assert_allclose(
        adjusted.numpy().ravel()[~np.isnan(adjusted.numpy().ravel())], loop_holm(kept)
    )
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_p_values(p, "bonferroni")


def test_cka_matrix_p_values_are_corrected_per_matrix():
    x, y = data()
    result = cka_matrix({"x": x, "x2": x**2}, {"y": y}, debiased=True, permutations=19)
    adjusted = result.adjusted_p_values("holm")
    assert bool((adjusted >= result.p_values).all())
    expected = loop_holm(result.p_values.numpy().ravel()).reshape(2, 1)
    np.testing.assert_allclose(adjusted.numpy(), expected)
    with pytest.raises(ValueError, match="permutations > 0"):
        cka_matrix([x], [y]).adjusted_p_values()


def test_grid_procrustes_and_cca_equal_the_in_memory_measures():
    x, y = data(n=240)
    reps_a, reps_b = {"x": x, "x3": x[:, :3] ** 2}, {"y": y}
    grid = CKAGrid()
    for rows in np.array_split(np.arange(240), 5):
        grid.update(
            {k: v[rows] for k, v in reps_a.items()}, {k: v[rows] for k, v in reps_b.items()}
        )
    for measure, streamed in (("procrustes", grid.procrustes()), ("cca", grid.cca())):
        direct = similarity_matrix(reps_a, reps_b, measure=measure)
        assert streamed.row_names == direct.row_names == ["x", "x3"]
        torch.testing.assert_close(streamed.values, direct.values, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="measure must be one of"):
        similarity_matrix(reps_a, measure="cosine")


def _unrelated(n, p, q, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, p, generator=g, dtype=torch.float64), torch.randn(
        n, q, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_biased_cka_of_two_samples_is_one_for_anything_and_says_so(kernel):
    from gmn.cka import cka

    x, y = _unrelated(2, 5, 7)
    with pytest.warns(RuntimeWarning, match="n=2 samples is 1 for any two"):
        assert float(cka(x, y, kernel=kernel)) == pytest.approx(1.0, abs=1e-12)
    grid = CKAGrid().update({"x": x}, {"y": y})
    with pytest.warns(RuntimeWarning, match="n=2 samples"):
        assert float(grid.compute().values[0, 0]) == pytest.approx(1.0, abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three samples: a real value, no warning
        assert float(cka(*_unrelated(3, 5, 7), kernel=kernel)) < 0.999


@pytest.mark.parametrize("measure", [mean_cca, svcca, pwcca])
def test_cca_with_fewer_samples_than_dimensions_is_one_by_construction_and_says_so(measure):
    x, y = _unrelated(10, 20, 20)  # independent: any true correlation is near 0
    with pytest.warns(RuntimeWarning, match=r"at least \d+ of \d+ are 1 by construction"):
        assert float(measure(x, y)) == pytest.approx(1.0, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(measure(*_unrelated(400, 5, 5))) < 0.3


def test_the_streamed_cca_warns_as_the_in_memory_one():
    x, y = _unrelated(10, 20, 20)
    grid = CKAGrid().update({"x": x}, {"y": y})
    with pytest.warns(RuntimeWarning, match="1 by construction"):
        assert float(grid.cca().values[0, 0]) == pytest.approx(1.0, abs=1e-9)


def numpy_cca_above_cut_off(x, y, relative_std=1e-5):
    """Independent reference for the cut-off: numpy SVD of the centred data keeps the
    directions whose singular value exceeds ``relative_std`` × the largest (the eigenvalue
    cut-off RANK_TOLERANCE = 1e-10 of the covariance), then ρ = singular values of U_xᵀU_y."""

    def basis(a):
        u, s, _ = np.linalg.svd(a - a.mean(axis=0), full_matrices=False)
        return u[:, s > relative_std * s[0]]

    return np.linalg.svd(basis(x).T @ basis(y), compute_uv=False)


def test_streamed_and_in_memory_cca_keep_the_same_directions():
    """A direction of x with 1e-7 of the largest standard deviation, which y follows exactly:
    below the cut-off, so neither computation keeps it (they used to differ on it)."""
    g = np.random.default_rng(7)
    x = g.normal(size=(240, 5))
    x[:, 4] = x[:, 0] + 1e-7 * g.normal(size=240)
    y = np.stack([(x[:, 4] - x[:, 0]) * 1e7, x[:, 1] + g.normal(size=240), g.normal(size=240)], 1)
    expected = numpy_cca_above_cut_off(x, y)
    assert len(expected) == 3 and expected[0] < 0.99  # the perfect correlation is not kept
    np.testing.assert_allclose(canonical_correlations(x, y).numpy(), expected, atol=1e-8)
    grid = CKAGrid()
    for rows in np.array_split(np.arange(240), 4):
        grid.update({"x": x[rows]}, {"y": y[rows]})
    assert grid.cca()["x", "y"] == pytest.approx(float(mean_cca(x, y)), abs=1e-9)
    assert float(mean_cca(x, y)) == pytest.approx(expected.mean(), abs=1e-8)


def test_cca_against_numpy_on_random_data_of_many_shapes():
    g = np.random.default_rng(8)
    for n, p, q in ((50, 3, 7), (300, 12, 4), (120, 20, 20)):
        x = g.normal(size=(n, p)) @ g.normal(size=(p, p)) + 3
        y = np.tanh(x[:, : min(p, q)]) @ g.normal(size=(min(p, q), q)) + g.normal(size=(n, q))
        np.testing.assert_allclose(
            canonical_correlations(x, y).numpy(), numpy_cca_above_cut_off(x, y), atol=1e-9
        )


def test_every_measure_gives_the_one_matrix_type_which_saves_loads_and_plots(tmp_path):
    x, y = data()
    reps_a, reps_b = {"x": x, "x2": x**2}, {"y": y}
    grid = CKAGrid().update(reps_a, reps_b)
    for matrix in (similarity_matrix(reps_a, reps_b, measure="procrustes"), grid.procrustes()):
        assert isinstance(matrix, CKAMatrix) and matrix.estimator is None
        matrix.save(tmp_path / "p")
        loaded = CKAMatrix.load(tmp_path / "p")
        assert loaded.measure == loaded.label == "procrustes" and loaded.row_names == ["x", "x2"]
        assert torch.equal(loaded.values, matrix.values)
        assert loaded.to_dict() == matrix.to_dict()
        assert plot_cka(loaded).axes[1].get_ylabel() == "procrustes"  # the colour bar
    assert grid.compute().label == "biased linear CKA"
    with pytest.raises(ValueError, match="a CKA matrix names its estimator"):
        CKAMatrix(grid.compute().values, ["x", "x2"], ["y"])
