"""Large CPU tensors backed by transparent huge pages.

glibc maps every allocation above its mmap threshold (32 MiB at most) afresh, and the first
touch of each 4 KiB page is a page fault, so filling a fresh large tensor costs several times
refilling one. :func:`empty` asks Linux to back such a tensor with 2 MiB pages
(``madvise(MADV_HUGEPAGE)``) before anything touches it (``benchmarks/convert.py`` measures the
effect on ``GraphTemplate.batch``; docs/graph.md has the figures). Elsewhere (other systems,
other devices, small tensors) it is ``torch.empty``. :func:`output` gives such a tensor as an
``out=`` argument when it pays (:func:`cat` and :func:`index_select` use it).

A :class:`Recycler` goes further for outputs made again and again (``GraphTemplate.batch`` in a
training loop, where the previous batch is still alive while the next is built): it hands a
large output out again once nothing outside holds it or its memory, so its pages are already
mapped and touched (no page faults, no zeroing by the kernel).

May import: nothing of gmn.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections import OrderedDict

import torch

HUGE_PAGE = 2 << 20
MIN_BYTES = 8 << 20  # below this glibc usually reuses memory that was already touched
MADV_HUGEPAGE = 14


def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


_MADVISE = _madvise()


def empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised tensor of ``shape``; on Linux CPU, above 8 MiB, backed by huge pages
    where the kernel allows them (a refusal is harmless: the pages stay 4 KiB)."""
    out = torch.empty(shape, dtype=dtype, device=device)
    nbytes = out.numel() * out.element_size()
    if _MADVISE is not None and out.device.type == "cpu" and nbytes >= MIN_BYTES:
        start = -(-out.data_ptr() // HUGE_PAGE) * HUGE_PAGE
        end = (out.data_ptr() + nbytes) // HUGE_PAGE * HUGE_PAGE
        if end > start:
            _MADVISE(start, end - start, MADV_HUGEPAGE)
    return out


def tracked(*tensors: torch.Tensor) -> bool:
    """Whether autograd records operations on ``tensors`` (then ``out=`` is not allowed)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _unshared(tensor: torch.Tensor) -> bool:
    """Nothing but its pool holds ``tensor``, and nothing but ``tensor`` its memory: no Python
    reference (a ``Batch``), no C++ one (autograd), no view, no numpy array. The counts are
    torch's private ones; without them nothing is recycled."""
    try:
        impl = tensor._use_count()
        memory = torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)
    except (AttributeError, RuntimeError):
        return False
    # the pool's list, this call's argument and getrefcount's; the storage: the tensor and
    # the temporary UntypedStorage
    return sys.getrefcount(tensor) == 3 and impl == 1 and memory == 2


class Recycler:
    """Large output tensors handed out again once nothing outside holds them.

    Args:
        per_shape: tensors kept for one (shape, dtype, device).
        shapes: how many (shape, dtype, device) are kept (the least recently used goes).
    """

    def __init__(self, per_shape: int = 2, shapes: int = 8):
        self.per_shape, self.shapes = per_shape, shapes
        self._pools: OrderedDict[tuple, list[torch.Tensor]] = OrderedDict()

    def take(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
             ) -> torch.Tensor:
        """An uninitialised tensor: a pooled one that nobody holds, else a new :func:`empty`
        one, pooled when there is room."""
        key = (tuple(shape), dtype, torch.device(device))
        pool = self._pools.setdefault(key, [])
        self._pools.move_to_end(key)
        for i in range(len(pool)):  # by index: a loop variable would hold a reference
            if _unshared(pool[i]):
                return pool[i]
        tensor = empty(shape, dtype, device)
        if len(pool) < self.per_shape:
            pool.append(tensor)
        while len(self._pools) > self.shapes:
            self._pools.popitem(last=False)
        return tensor


def output(shape: tuple[int, ...], *inputs: torch.Tensor, recycler: Recycler | None = None
           ) -> torch.Tensor | None:
    """The ``out=`` tensor for an operation on ``inputs`` giving ``shape`` (dtype and device
    of the first input): :func:`empty` memory (a ``recycler``'s when given), or ``None``
    (torch allocates) when the output is small (the single-graph case, where every
    microsecond counts) or autograd must see the operation."""
    like = inputs[0]
    if math.prod(shape) * like.element_size() < MIN_BYTES or tracked(*inputs):
        return None
    if recycler is not None:
        return recycler.take(shape, like.dtype, like.device)
    return empty(shape, like.dtype, like.device)


def cat(tensors: list[torch.Tensor], dim: int, recycler: Recycler | None = None
        ) -> torch.Tensor:
    """``torch.cat`` of same-dtype, same-device tensors, into :func:`empty` memory when large."""
    shape = list(tensors[0].shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return torch.cat(tensors, dim, out=output(tuple(shape), *tensors, recycler=recycler))


def index_select(source: torch.Tensor, dim: int, index: torch.Tensor,
                 recycler: Recycler | None = None) -> torch.Tensor:
    """``torch.index_select``, into :func:`empty` memory when large."""
    shape = list(source.shape)
    shape[dim] = len(index)
    return torch.index_select(source, dim, index,
                              out=output(tuple(shape), source, recycler=recycler))
