"""Known answers, invariances and input checks of the one-pair CKA estimators."""

import math

import numpy as np
import pytest
import torch

from gmn.cka import CKAGrid, MinibatchGrid, cka, cka_matrix
from gmn.cka.estimators import median_squared_distance, squared_distances

ESTIMATORS = [
    dict(kernel="linear", debiased=False),
    dict(kernel="linear", debiased=True),
    dict(kernel="rbf", debiased=False, threshold=0.5),
    dict(kernel="rbf", debiased=True),
]


@pytest.fixture(scope="module")
def kornblith_demo():
    """The demo data of Kornblith et al.'s CKA notebook."""
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return torch.from_numpy(x), torch.from_numpy(y)


def test_known_answers_of_kornblith_demo(kornblith_demo):
    x, y = kornblith_demo
    assert float(cka(x, y)) == pytest.approx(0.55761, abs=1e-5)
    assert float(cka(x, y, debiased=True)) == pytest.approx(0.51346, abs=1e-5)
    assert float(cka(x, y, kernel="rbf", threshold=0.5)) == pytest.approx(0.65483, abs=1e-5)


@pytest.mark.parametrize("debiased", [False, True])
def test_feature_and_gram_forms_agree(kornblith_demo, debiased):
    x, y = kornblith_demo
    features = cka(x, y, debiased=debiased, method="features")
    gram = cka(x, y, debiased=debiased, method="gram")
    assert float(features) == pytest.approx(float(gram), abs=1e-12)


def test_auto_picks_gram_when_features_outnumber_samples():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 200, generator=g, dtype=torch.float64)
    y = x[:, :50] + torch.randn(30, 50, generator=g, dtype=torch.float64)
    for debiased in (False, True):
        auto = cka(x, y, debiased=debiased)
        assert float(auto) == pytest.approx(
            float(cka(x, y, debiased=debiased, method="features")), abs=1e-12
        )


@pytest.mark.parametrize("options", ESTIMATORS)
def test_self_similarity_is_one_and_cka_is_symmetric(options):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 8, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(8, 5, generator=g, dtype=torch.float64))
    assert float(cka(x, x, **options)) == pytest.approx(1.0, abs=1e-12)
    assert float(cka(x, y, **options)) == pytest.approx(float(cka(y, x, **options)), abs=1e-12)


@pytest.mark.parametrize("options", ESTIMATORS)
def test_invariant_to_orthogonal_maps_isotropic_scaling_and_translation(options):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(80, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 0.5 * torch.randn(
        80, 6, generator=g, dtype=torch.float64
    )
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    reference = float(cka(x, y, **options))
    assert 0.05 < reference < 0.99
    for transformed in (x @ q, 7.5 * x, x + 3.0):
        assert float(cka(transformed, y, **options)) == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("options", ESTIMATORS)
def test_not_invariant_to_anisotropic_scaling(options):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(80, 6, generator=g, dtype=torch.float64)
    stretch = torch.tensor([10.0, 1.0, 1.0, 1.0, 1.0, 0.1], dtype=torch.float64)
    assert abs(float(cka(x, x * stretch, **options)) - 1.0) > 0.05


def test_debiased_is_near_zero_on_independent_data_while_biased_is_not():
    g = torch.Generator().manual_seed(4)
    biased, debiased = [], []
    for _ in range(20):
        x = torch.randn(100, 1000, generator=g, dtype=torch.float64)
        y = torch.randn(100, 1000, generator=g, dtype=torch.float64)
        biased.append(float(cka(x, y)))
        debiased.append(float(cka(x, y, debiased=True)))
    standard_error = np.std(debiased) / np.sqrt(len(debiased))
    assert abs(np.mean(debiased)) < 4 * standard_error < 0.02
    assert np.mean(biased) > 0.8


def test_float32_input_matches_float64_at_n10000_d512():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(10_000, 512, generator=g)
    y = torch.relu(x @ torch.randn(512, 512, generator=g) / 20) + torch.randn(
        10_000, 512, generator=g
    )
    for debiased in (False, True):
        single = cka(x, y, debiased=debiased)
        double = cka(x.double(), y.double(), debiased=debiased)
        assert single.dtype == torch.float64
        assert float(single) == pytest.approx(float(double), abs=1e-5)


@pytest.mark.parametrize("shape", [(40, 12), (40, 3, 4), (40, 2, 3, 2)])
def test_activations_of_any_rank_are_flattened_per_sample(shape):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64) + x.reshape(40, -1)[:, :5]
    for options in ESTIMATORS:
        flat = cka(x.reshape(40, -1), y, **options)
        assert float(cka(x, y, **options)) == pytest.approx(float(flat), abs=1e-14)


@pytest.mark.parametrize("options", ESTIMATORS)
def test_gradients_match_finite_differences(options):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cka(a, b, **options), (x, y))


def test_median_rules_follow_numpy_and_torch_semantics():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    distances = squared_distances(x @ x.T)
    numpy_distances = distances.numpy()
    upper = numpy_distances[np.triu_indices(10, k=1)]
    assert float(median_squared_distance(distances, "numpy")) == pytest.approx(
        float(np.median(numpy_distances)), abs=1e-14
    )
    assert float(median_squared_distance(distances, "offdiagonal")) == pytest.approx(
        float(np.median(upper)), abs=1e-14
    )
    assert float(median_squared_distance(distances, "lower")) == float(distances.median())
    assert float(cka(x, x**2, kernel="rbf", median="lower")) != float(cka(x, x**2, kernel="rbf"))


def test_errors_name_what_is_wrong():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="same samples.*10 rows.*9"):
        cka(x, torch.randn(9, 3))
    with pytest.raises(ValueError, match="at least 4 samples, got n=3"):
        cka(x[:3], x[:3], debiased=True)
    with pytest.raises(ValueError, match="at least 2 samples, got n=1"):
        cka(x[:1], x[:1])
    bad = x.clone()
    bad[2, 1] = float("nan")
    bad[4, 0] = float("inf")
    with pytest.raises(ValueError, match=r"y \(shape \(10, 3\)\) contains 2 NaN or Inf"):
        cka(x, bad)
    with pytest.raises(ValueError, match="kernel must be one of"):
        cka(x, x, kernel="cosine")
    with pytest.raises(ValueError, match="no feature-space form"):
        cka(x, x, kernel="rbf", method="features")
    with pytest.raises(ValueError, match="threshold must be positive"):
        cka(x, x, kernel="rbf", threshold=0.0)
    with pytest.raises(TypeError, match="x must be a torch.Tensor or numpy.ndarray.*got list"):
        cka(x.tolist(), x)


@pytest.mark.parametrize("options", ESTIMATORS)
def test_zero_variance_gives_nan_with_a_warning(options):
    x = torch.randn(10, 3, dtype=torch.float64)
    constant = torch.full((10, 4), 0.1, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="zero variance"):
        assert torch.isnan(cka(x, constant, **options))


@pytest.mark.parametrize("magnitude", [1e-30, 1e30, 3e36])
def test_float32_extremes_neither_overflow_nor_underflow(magnitude):
    g = torch.Generator().manual_seed(9)
    x = torch.randn(9000, 4, generator=g)
    y = x + torch.randn(9000, 4, generator=g)
    reference = float(cka(x.double(), y.double(), debiased=True))
    value = cka(x * magnitude, y, debiased=True)  # 3e36 · 9000 overflows a float32 sum
    assert float(value) == pytest.approx(reference, abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_low_precision_and_integer_inputs_are_computed_in_float(dtype):
    g = torch.Generator().manual_seed(10)
    x = (4 * torch.randn(50, 6, generator=g)).to(dtype)
    y = x[:, :3] + (4 * torch.randn(50, 3, generator=g)).to(dtype)
    exact = torch.float64 if dtype == torch.int64 else torch.float32
    for options in ESTIMATORS:
        value = cka(x, y, **options)
        assert value.dtype == torch.float64
        assert float(value) == pytest.approx(float(cka(x.to(exact), y.to(exact), **options)))


def test_every_estimator_says_undefined_cka_the_same_way():
    """On 4 samples, [0, 0, 0, 1] varies but its debiased self-HSIC is exactly 0: CKA against
    it is undefined for the in-memory, the matrix, the streamed and the minibatch estimator
    alike, each returning NaN with one warning that names the layer."""
    x = torch.tensor([[0.0], [0.0], [0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [2.0], [0.0], [5.0]], dtype=torch.float64)
    estimators = {
        "x": lambda: cka(x, y, debiased=True),
        "a['x']": lambda: cka_matrix({"x": x}, {"y": y}, debiased=True).values[0, 0],
        "rows['x']": lambda: CKAGrid().update({"x": x}, {"y": y}).compute(True).values[0, 0],
        "rows['x'] ": lambda: MinibatchGrid().update({"x": x}, {"y": y}).compute().values[0, 0],
    }
    for name, estimator in estimators.items():
        with pytest.warns(RuntimeWarning) as caught:
            assert math.isnan(float(estimator()))
        assert [str(w.message) for w in caught] == [
            f"{name.strip()} has no usable variance (self-HSIC 0, not positive); its CKA is "
            "undefined and returned as NaN"
        ]
    assert float(cka(x, y)) == pytest.approx(6 / 7)  # the biased estimator is defined
