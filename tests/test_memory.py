"""gmn.memory: huge-page-backed outputs equal torch's own and keep autograd."""

from __future__ import annotations

import pytest
import torch

from gmn import memory


@pytest.mark.parametrize("shape, dtype", [((3, 5), torch.float32), ((1 << 21, 3), torch.float64),
                                          ((0, 4), torch.float32)])
def test_memory_empty_gives_the_requested_tensor(shape, dtype):
    out = memory.empty(shape, dtype, torch.device("cpu"))
    assert out.shape == shape and out.dtype == dtype and out.is_contiguous()
    out.fill_(2.5)
    assert bool((out == 2.5).all())


@pytest.mark.parametrize("requires_grad", [False, True])
def test_memory_cat_and_index_select_equal_torch_and_keep_autograd(requires_grad):
    generator = torch.Generator().manual_seed(0)
    big = torch.randn(1 << 20, 3, generator=generator, requires_grad=requires_grad)
    small = torch.randn(1 << 20, 2, generator=generator)
    joined = memory.cat([big, small], dim=1)
    assert torch.equal(joined, torch.cat([big, small], dim=1))
    index = torch.tensor([4, 0, 0, 2])
    picked = memory.index_select(joined, 1, index)
    assert torch.equal(picked, joined.index_select(1, index))
    assert picked.requires_grad == requires_grad
    if requires_grad:
        picked.sum().backward()
        assert torch.equal(big.grad, torch.tensor([2.0, 0.0, 1.0]).expand(1 << 20, 3))
