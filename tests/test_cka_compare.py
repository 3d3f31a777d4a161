"""compare streams two models over loaders into the same matrix cka_matrix gives in memory."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gmn
from gmn.cka import CKAGrid, CKAMatrix, MinibatchGrid, cka_matrix, compare
from gmn.cka.comparison import stream


def models():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 3))
    b = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    return a.double(), b.double()


def loader(offset=3.0, n=300, batch_size=64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64) + offset
    return DataLoader(TensorDataset(x, torch.zeros(n)), batch_size=batch_size)


def in_memory(model, data):
    with gmn.probe(model) as recorder:
        return recorder.collect(data)


@pytest.mark.parametrize("debiased", [False, True])
def test_compare_equals_cka_matrix_on_collected_states(debiased):
    a, b = models()
    data = loader()
    streamed = compare(a, b, data, debiased=debiased)
    reference = cka_matrix(in_memory(a, data), in_memory(b, data), debiased=debiased)
    assert streamed.row_names == ["0", "1", "2", "3", "4"]
    assert streamed.col_names == ["0", "1", "2"]
    torch.testing.assert_close(streamed.values, reference.values, rtol=0, atol=1e-10)


def test_two_loaders_hold_the_same_samples_for_different_inputs():
    a, b = models()
    data = loader()
    doubled = DataLoader(
        TensorDataset(2 * data.dataset.tensors[0], data.dataset.tensors[1]), batch_size=64
    )
    first_b = b[0]
    scaled = nn.Sequential(nn.Linear(10, 20), *b[1:]).double()
    with torch.no_grad():  # scaled(2x) == b(x) layer by layer
        scaled[0].weight.copy_(first_b.weight / 2)
        scaled[0].bias.copy_(first_b.bias)
    same = compare(a, b, data, layers=(["0", "2"], ["0", "2"]))
    other = compare(a, scaled, data, doubled, layers=(["0", "2"], ["0", "2"]))
    torch.testing.assert_close(other.values, same.values, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="loader_b ran out of batches"):
        compare(a, b, data, loader(n=256))


def test_grid_merge_and_splits_give_the_direct_value():
    g = torch.Generator().manual_seed(2)
    rows = {"r0": torch.randn(90, 6, generator=g, dtype=torch.float64) + 1e4}
    rows["r1"] = torch.tanh(rows["r0"] - 1e4) @ torch.randn(6, 3, generator=g, dtype=torch.float64)
    cols = {"c0": rows["r1"] + torch.randn(90, 3, generator=g, dtype=torch.float64)}
    cols["c1"] = torch.randn(90, 4, generator=g, dtype=torch.float64)
    reference = {d: cka_matrix(rows, cols, debiased=d).values for d in (False, True)}
    left, right = CKAGrid(), CKAGrid()
    for start, stop in ((0, 7), (7, 40)):
        left.update(
            {k: v[start:stop] for k, v in rows.items()}, {k: v[start:stop] for k, v in cols.items()}
        )
    right.update({k: v[40:] - 0 for k, v in rows.items()}, {k: v[40:] for k, v in cols.items()})
    merged = CKAGrid().merge(left).merge(right)
    for debiased, values in reference.items():
        torch.testing.assert_close(merged.compute(debiased).values, values, rtol=0, atol=1e-10)


def test_grid_memory_does_not_depend_on_n():
    g = torch.Generator().manual_seed(3)

    def state_size(n):
        grid = CKAGrid()
        for _ in range(n // 50):
            grid.update([torch.randn(50, 8, generator=g)], [torch.randn(50, 5, generator=g)])
        tensors = [t for side in grid.layers.values() for s in side.values() for t in s.values()]
        tensors += [t for sums in grid.cells.values() for t in sums.values()]
        return sum(t.numel() for t in tensors)

    assert state_size(100) == state_size(1000) == 8 * 8 + 5 * 5 + 8 * 5 + 3 * (8 + 5) + 5


def test_minibatch_method_matches_one_pair_estimators():
    a, b = models()
    data = loader()
    grid = compare(a, b, data, method="minibatch")
    states_a, states_b = in_memory(a, data), in_memory(b, data)
    one = MinibatchGrid()
    for x, y in zip(states_a["2"].split(64), states_b["1"].split(64)):
        one.update({"2": x}, {"1": y})
    assert grid["2", "1"] == pytest.approx(one.compute()["2", "1"], abs=1e-12)


def test_random_features_approximate_the_rbf_kernel():
    """Independent check: linear CKA of the features against RBF CKA computed from an
    explicit Gram matrix with the same bandwidth (the first batch's median rule)."""
    a, b = models()
    data = loader(n=256, batch_size=256)  # one batch: the bandwidth is the full-data one
    approx = compare(a, b, data, layers=(["1"], ["1"]), method="rff", rff_features=8192)
    states_a, states_b = in_memory(a, data)["1"].numpy(), in_memory(b, data)["1"].numpy()

    def rbf(x):
        distances = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        return np.exp(-distances / (2 * np.median(distances)))

    def centred(k):
        h = np.eye(len(k)) - 1 / len(k)
        return h @ k @ h

    k, l = centred(rbf(states_a)), centred(rbf(states_b))
    exact = (k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum())
    # measured: error -0.0073 at this seed (n = 256, 8,192 features; exact 0.4742); over seeds
    # 0-19 mean -0.0022, std 0.0031, |error| <= 0.0092 (docs/cka.md's 0.0013 is at n = 2,000)
    assert float(approx.values[0, 0]) == pytest.approx(exact, abs=0.01)
    assert approx.label == "biased RBF (threshold 1) CKA"


def test_save_load_round_trip_and_verification(tmp_path):
    g = torch.Generator().manual_seed(4)
    reps = {"a": torch.randn(40, 3, generator=g), "b": torch.randn(40, 2, generator=g)}
    matrix = cka_matrix(reps, debiased=True, permutations=5, confidence=0.9)
    tensors, meta = matrix.save(tmp_path / "m")
    loaded = CKAMatrix.load(tmp_path / "m")
    assert loaded.to_dict() == matrix.to_dict()
    assert loaded.estimator == matrix.estimator
    tensors.write_bytes(tensors.read_bytes()[:-8])
    with pytest.raises(ValueError, match="changed or truncated"):
        CKAMatrix.load(meta)
    meta.write_text("{")
    with pytest.raises(ValueError, match="m.json is not valid JSON"):
        CKAMatrix.load(tensors)
    with pytest.raises(FileNotFoundError, match="other.safetensors"):
        CKAMatrix.load(tmp_path / "other")
    saved = json.loads((matrix.save(tmp_path / "n")[1]).read_text())
    assert saved["row_names"] == ["a", "b"]


def test_on_batch_sees_the_probed_states_and_dtype_makes_the_sums_float64():
    a, b = (model.float() for model in models())
    x = loader().dataset.tensors[0].float()
    data = DataLoader(TensorDataset(x, torch.zeros(300)), batch_size=64)
    seen = []
    grid = stream(a, b, data, keep=lambda name: name != "1", dtype=torch.float64,
                  on_batch=lambda rows, cols: seen.append((rows, cols)))
    assert [rows["0"].shape[0] for rows, _ in seen] == [64, 64, 64, 64, 44]
    assert all(
        list(rows) == ["0", "2", "3", "4"] and list(cols) == ["0", "2"]
        and all(v.dtype == torch.float32 for v in (*rows.values(), *cols.values()))
        for rows, cols in seen
    )
    rows, cols = ({k: torch.cat([batch[side][k] for batch in seen]) for k in seen[0][side]}
                  for side in (0, 1))
    collected_a, collected_b = in_memory(a, data), in_memory(b, data)
    assert all(torch.equal(rows[k], collected_a[k]) for k in rows)
    assert all(torch.equal(cols[k], collected_b[k]) for k in cols)
    rows64 = {k: v.double() for k, v in rows.items()}
    cols64 = {k: v.double() for k, v in cols.items()}
    centred = grid.centred()
    for debiased in (False, True):
        reference = cka_matrix(rows64, cols64, debiased=debiased).values
        torch.testing.assert_close(grid.compute(debiased).values, reference, rtol=0, atol=1e-10)
        reused = grid.compute(debiased, centred=centred).values
        assert torch.equal(reused, grid.compute(debiased).values)
    assert torch.equal(grid.procrustes(centred=centred).values, grid.procrustes().values)
    assert torch.equal(grid.cca(centred=centred).values, grid.cca().values)


def test_compare_offers_the_permutation_test_of_cka_matrix_on_the_first_samples(tmp_path):
    a, b = models()
    data = loader()  # 300 samples in batches of 64: the first 100 end inside the second
    tested = compare(a, b, data, debiased=True, permutations=19, permutation_samples=100,
                     seed=3)
    plain = compare(a, b, data, debiased=True)
    assert torch.equal(tested.values, plain.values)  # the values use every sample
    first = {k: v[:100] for k, v in in_memory(a, data).items()}
    first_b = {k: v[:100] for k, v in in_memory(b, data).items()}
    reference = cka_matrix(first, first_b, debiased=True, permutations=19, seed=3)
    assert torch.equal(tested.p_values, reference.p_values)
    assert torch.equal(tested.baseline, reference.baseline)
    assert (tested.permutations, tested.permutation_samples) == (19, 100)
    assert float(tested.p_values.max()) <= 1 and float(tested.p_values.min()) >= 1 / 20
    tested.save(tmp_path / "m")
    loaded = CKAMatrix.load(tmp_path / "m")
    assert (loaded.permutations, loaded.permutation_samples) == (19, 100)
    assert torch.equal(loaded.p_values, tested.p_values)
    with pytest.raises(ValueError, match="method='exact'"):
        compare(a, b, data, method="minibatch", permutations=5)
    with pytest.raises(ValueError, match="permutations must be a whole number"):
        compare(a, b, data, permutations=-1)
