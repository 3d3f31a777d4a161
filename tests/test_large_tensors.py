"""gmn.large_tensors: huge-page-backed outputs equal torch's own and keep autograd."""

from __future__ import annotations

import pytest
import torch

from gmn import large_tensors


@pytest.mark.parametrize("shape, dtype", [((3, 5), torch.float32), ((1 << 21, 3), torch.float64),
                                          ((0, 4), torch.float32)])
def test_memory_empty_gives_the_requested_tensor(shape, dtype):
    out = large_tensors.empty(shape, dtype, torch.device("cpu"))
    assert out.shape == shape and out.dtype == dtype and out.is_contiguous()
    out.fill_(2.5)
    assert bool((out == 2.5).all())


@pytest.mark.parametrize("requires_grad", [False, True])
def test_memory_cat_and_index_select_equal_torch_and_keep_autograd(requires_grad):
    generator = torch.Generator().manual_seed(0)
    big = torch.randn(1 << 20, 3, generator=generator, requires_grad=requires_grad)
    small = torch.randn(1 << 20, 2, generator=generator)
    joined = large_tensors.cat([big, small], dim=1)
    assert torch.equal(joined, torch.cat([big, small], dim=1))
    index = torch.tensor([4, 0, 0, 2])
    picked = large_tensors.index_select(joined, 1, index)
    assert torch.equal(picked, joined.index_select(1, index))
    assert picked.requires_grad == requires_grad
    if requires_grad:
        picked.sum().backward()
        assert torch.equal(big.grad, torch.tensor([2.0, 0.0, 1.0]).expand(1 << 20, 3))


SHAPE = (1 << 21,)  # 8 MiB of float32: large enough to be recycled


def _take(recycler: large_tensors.Recycler) -> torch.Tensor:
    return recycler.take(SHAPE, torch.float32, torch.device("cpu"))


def test_a_recycler_hands_memory_out_again_only_when_nothing_holds_it():
    recycler = large_tensors.Recycler()
    first = _take(recycler)
    address = first.data_ptr()
    assert _take(recycler).data_ptr() != address  # `first` is held
    del first
    reused = _take(recycler)
    assert reused.data_ptr() == address  # nothing held it
    view = reused[:10]
    del reused
    assert _take(recycler).data_ptr() != address  # a view holds its memory
    del view
    array = _take(recycler).numpy()
    assert _take(recycler).data_ptr() != array.ctypes.data  # a numpy array holds it
    del array
    weight = torch.ones(SHAPE, requires_grad=True)
    tensor = _take(recycler).fill_(1.0)
    kept = tensor.data_ptr()
    loss = (tensor * weight).sum()  # autograd saves `tensor` for the backward pass
    del tensor
    assert _take(recycler).data_ptr() != kept
    loss.backward()  # frees what it saved
    assert kept in (_take(recycler).data_ptr(), _take(recycler).data_ptr())


def test_batches_in_a_training_loop_reuse_memory_and_never_change_a_held_batch():
    """The previous batch is alive while the next is built; once dropped its memory is reused.
    A batch the caller still holds is never overwritten."""
    import gmn
    from gmn.testing import make_siren

    template = gmn.GraphTemplate.from_module(make_siren(hidden=(32, 32)))
    params = [torch.randn(2000, template.num_params, generator=torch.Generator().manual_seed(s))
              for s in range(4)]
    expected = [template.batch(p).edge_attr.clone() for p in params]
    held, addresses, batch = [], [], None
    for step, p in enumerate(params):
        batch = template.batch(p)  # the previous batch is alive until this assignment
        addresses.append(batch.edge_attr.data_ptr())
        if step == 1:
            held.append(batch)  # the caller keeps this one
    pooled = {t.data_ptr() for pool in template._recycler._pools.values() for t in pool}
    assert addresses[2] == addresses[0] and addresses[0] in pooled  # batch 0's memory, reused
    assert torch.equal(held[0].edge_attr, expected[1])  # ... but a held batch is never reused
    assert torch.equal(batch.edge_attr, expected[-1])
