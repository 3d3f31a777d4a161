"""The single scatter entry point: known answers for every reduction."""

from __future__ import annotations

import pytest
import torch

from gmn.scatter import REDUCTIONS, scatter


def reference(src, index, dim_size, reduce):
    out = torch.zeros(dim_size, *src.shape[1:], dtype=src.dtype)
    for row in range(dim_size):
        picked = src[index == row]
        if len(picked):
            out[row] = {"sum": picked.sum(0), "mean": picked.mean(0),
                        "max": picked.max(0).values, "min": picked.min(0).values}[reduce]
    return out


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_matches_a_loop_and_leaves_empty_rows_zero(reduce):
    generator = torch.Generator().manual_seed(0)
    src = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    index = torch.randint(0, 6, (50,), generator=generator)
    index[index == 4] = 5  # row 4 receives nothing
    out = scatter(src, index, dim_size=7, reduce=reduce)
    torch.testing.assert_close(out, reference(src, index, 7, reduce))
    assert bool((out[4] == 0).all()) and bool((out[6] == 0).all())


def test_known_answer_and_gradient():
    src = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    index = torch.tensor([0, 1, 0, 1])
    out = scatter(src, index, dim_size=2, reduce="mean")
    assert out.tolist() == [2.0, 3.0]
    out.sum().backward()
    assert src.grad.tolist() == [0.5, 0.5, 0.5, 0.5]


def test_scatter_along_another_dim():
    src = torch.arange(6.0).reshape(2, 3)
    out = scatter(src, torch.tensor([0, 0, 1]), dim_size=2, reduce="sum", dim=1)
    assert out.tolist() == [[1.0, 2.0], [7.0, 5.0]]


def test_unknown_reduction_is_named():
    with pytest.raises(ValueError, match="'median'"):
        scatter(torch.ones(2), torch.zeros(2, dtype=torch.long), 1, reduce="median")
