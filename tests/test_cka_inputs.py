"""numpy arrays are accepted wherever tensors are; other types and bad options are named."""

import numpy as np
import pytest
import torch

from gmn.cka import CKAGrid, cka, cka_matrix


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    return x, torch.tanh(x[:, :3]) + 0.5 * torch.randn(30, 3, generator=g, dtype=torch.float64)


def test_numpy_arrays_give_the_tensor_values():
    x, y = data()
    assert float(cka(x.numpy(), y.numpy())) == float(cka(x, y))
    assert float(cka(x.numpy(), y, kernel="rbf")) == float(cka(x, y, kernel="rbf"))
    from_numpy = cka_matrix({"a": x.numpy()}, [y.numpy()], confidence=0.9, permutations=3)
    from_tensors = cka_matrix({"a": x}, [y], confidence=0.9, permutations=3)
    assert torch.equal(from_numpy.values, from_tensors.values)
    assert torch.equal(from_numpy.ci_low, from_tensors.ci_low)
    streamed = CKAGrid().update({"x": x.numpy()}, {"y": y.numpy()}).compute()
    assert streamed["x", "y"] == pytest.approx(float(cka(x, y)), abs=1e-12)


def test_lists_and_other_types_are_refused_by_name():
    x, y = data()
    with pytest.raises(TypeError, match=r"a\['0'\] must be a torch.Tensor or numpy.ndarray.*list"):
        cka_matrix(x.tolist())
    with pytest.raises(TypeError, match=r"b\['fc'\] must be .*got str"):
        cka_matrix([x], {"fc": "y.npy"})
    with pytest.raises(TypeError, match="y must be .*got tuple"):
        cka(x, tuple(y.tolist()))
    with pytest.raises(TypeError, match="reps_a must be a dict"):
        cka_matrix(np.float64(3.0))


@pytest.mark.parametrize("permutations", [-5, -1, 2.5, True])
def test_negative_or_fractional_permutations_are_refused(permutations):
    x, y = data()
    with pytest.raises(
        ValueError, match=f"permutations must be a whole number ≥ 0.*{permutations}"
    ):
        cka_matrix([x], [y], permutations=permutations)
