"""cka_matrix: entries, names, one preparation per layer, statistics, gradients."""

import json

import pytest
import torch

import gmn.cka.matrix as matrix_module
from gmn.cka import CKAMatrix, cka, cka_matrix


def probe_like(seed=0, n=64):
    """Two {layer_name: Tensor[n, ...]} dicts shaped like gmn.probe output."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 5, generator=g, dtype=torch.float64)
    reps_a, h = {}, inputs
    for name in ("conv1", "conv2", "fc"):
        h = torch.tanh(h @ torch.randn(h.shape[-1], 6, generator=g, dtype=torch.float64))
        reps_a[name] = h.reshape(n, 2, 3) if name != "fc" else h
    reps_b = {
        "mlp.0": inputs @ torch.randn(5, 4, generator=g, dtype=torch.float64),
        "mlp.1": torch.randn(n, 3, 2, 2, generator=g, dtype=torch.float64),
    }
    return reps_a, reps_b


@pytest.mark.parametrize("options", [dict(), dict(debiased=True), dict(kernel="rbf")])
def test_entries_equal_pairwise_cka_and_names_follow_dict_order(options):
    reps_a, reps_b = probe_like()
    result = cka_matrix(reps_a, reps_b, **options)
    assert result.values.shape == (3, 2)
    assert result.row_names == ["conv1", "conv2", "fc"]
    assert result.col_names == ["mlp.0", "mlp.1"]
    for i, a in enumerate(result.row_names):
        for j, b in enumerate(result.col_names):
            expected = float(cka(reps_a[a], reps_b[b], **options))
            assert float(result.values[i, j]) == pytest.approx(expected, abs=1e-12)
            assert result[a, b] == float(result.values[i, j])


def test_lists_and_self_comparison():
    reps_a, _ = probe_like(seed=1)
    layers = list(reps_a.values())
    result = cka_matrix(layers)
    assert result.row_names == result.col_names == ["0", "1", "2"]
    assert torch.allclose(result.values, result.values.T, atol=0)
    assert torch.allclose(torch.diagonal(result.values), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(result.values, cka_matrix(layers, layers).values, atol=1e-12)


def test_each_layer_is_prepared_once(monkeypatch):
    prepared = []
    original = matrix_module.LayerStatistics

    def counting(x, estimator, name):
        prepared.append(name)
        return original(x, estimator, name)

    monkeypatch.setattr(matrix_module, "LayerStatistics", counting)
    reps_a, reps_b = probe_like(seed=2)
    cka_matrix(reps_a, reps_b, debiased=True, permutations=3)
    assert sorted(prepared) == sorted(
        ["a['conv1']", "a['conv2']", "a['fc']", "b['mlp.0']", "b['mlp.1']"]
    )


def test_statistics_fields_are_filled_on_request():
    reps_a, reps_b = probe_like(seed=3)
    plain = cka_matrix(reps_a, reps_b)
    assert plain.p_values is None and plain.baseline is None and plain.ci_low is None
    full = cka_matrix(reps_a, reps_b, permutations=19, confidence=0.9, jackknife_groups=8)
    assert isinstance(full, CKAMatrix)
    assert torch.equal(full.values, plain.values)
    assert ((full.p_values >= 1 / 20) & (full.p_values <= 1)).all()
    assert (full.ci_low <= full.values).all() and (full.values <= full.ci_high).all()
    assert full.baseline.shape == (3, 2)
    assert full.p_values[result_index(full, "conv1", "mlp.0")] == pytest.approx(1 / 20)
    assert full.label == "biased linear CKA"


def result_index(result, row, col):
    return result.row_names.index(row), result.col_names.index(col)


def test_matrix_values_are_differentiable():
    reps_a, reps_b = probe_like(seed=4)
    leaf = reps_a["conv1"].clone().requires_grad_(True)
    result = cka_matrix({**reps_a, "conv1": leaf}, reps_b, debiased=True)
    result.values.sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_matrix_errors_name_the_layer():
    reps_a, reps_b = probe_like(seed=5)
    reps_b["short"] = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"same samples.*\"b\['short'\]\": 10"):
        cka_matrix(reps_a, reps_b)
    with pytest.raises(ValueError, match=r"a\['fc'\].*contains 64 NaN"):
        cka_matrix({**reps_a, "fc": torch.tensor([[float("nan")]] * 64)}, reps_b)
    with pytest.raises(TypeError, match="reps_a must be a dict"):
        cka_matrix(torch.randn(4, 4))
    with pytest.raises(ValueError, match="reps_b holds no layers"):
        cka_matrix(reps_a, {})


@pytest.mark.parametrize("debiased", [False, True])
def test_wide_gram_form_layers_meet_narrow_feature_form_layers(debiased):
    reps_a, reps_b = probe_like(seed=6)
    g = torch.Generator().manual_seed(6)
    reps_b["wide"] = torch.randn(64, 100, generator=g, dtype=torch.float64)  # d > n: Gram form
    reps_b["wide"][:, :6] += 3 * reps_a["fc"]
    result = cka_matrix(reps_a, reps_b, debiased=debiased)
    for i, a in enumerate(result.row_names):
        for j, b in enumerate(result.col_names):
            expected = cka(reps_a[a], reps_b[b], debiased=debiased, method="features")
            assert float(result.values[i, j]) == pytest.approx(float(expected), abs=1e-12)


def test_to_dict_is_json_round_trippable():
    reps_a, reps_b = probe_like(seed=7)
    result = cka_matrix(reps_a, reps_b, debiased=True, permutations=4)
    loaded = json.loads(json.dumps(result.to_dict()))
    assert loaded["estimator"] == "debiased linear CKA"
    assert loaded["row_names"] == result.row_names and loaded["col_names"] == result.col_names
    assert torch.equal(torch.tensor(loaded["values"], dtype=torch.float64), result.values)
    assert torch.equal(torch.tensor(loaded["p_values"], dtype=torch.float64), result.p_values)
    assert loaded["ci_low"] is None and loaded["confidence"] is None
