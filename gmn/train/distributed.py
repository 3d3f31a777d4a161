"""The distributed engine: process-group set-up under ``torchrun`` and the collectives
the trainer, probes and CKA need.

Every function also works in a single process (no process group): it then does the
local thing, so the same code runs under ``python`` and ``torchrun``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device | None = None) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Uses NCCL for CUDA devices and gloo otherwise. ``device=None`` picks
    ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.

    Returns:
        ``(context, device)``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return current_context(), device


def current_context() -> DistContext:
    """This process's place in the live process group (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)
    return DistContext()


def shutdown() -> None:
    """Leave the process group (call once at the end of a ``torchrun`` script, on every
    rank). Ranks first wait for each other: one tearing down while another still
    communicates can leave the latter hanging."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes in place and return it."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj):
    """Rank 0's ``obj`` on every process (pickled; for trusted, in-memory values only)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not _active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every process."""
    if not _active():
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def gather_in_order(local: Tensor, indices: Tensor, total: int) -> Tensor:
    """Assemble per-rank rows into one tensor in dataset order, on every process.

    Args:
        local: [n_r, ...] this rank's rows (n_r may differ between ranks).
        indices: [n_r] long, the dataset position of each row.
        total: number of rows of the result.

    Returns:
        [total, ...] with row ``i`` the row whose index is ``i``.

    Raises:
        ValueError: if the ranks' indices do not cover ``0..total-1`` exactly once.
    """
    indices = indices.to(device=local.device, dtype=torch.long)
    if local.shape[0] != indices.shape[0]:
        raise ValueError(f"{local.shape[0]} rows but {indices.shape[0]} indices")
    if _active():
        counts = torch.tensor([local.shape[0]], device=local.device)
        all_counts = [torch.zeros_like(counts) for _ in range(dist.get_world_size())]
        dist.all_gather(all_counts, counts)
        longest = int(max(c.item() for c in all_counts))
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: local.shape[0]] = local
        padded_idx = indices.new_full((longest,), -1)
        padded_idx[: indices.shape[0]] = indices
        rows = [torch.zeros_like(padded) for _ in all_counts]
        idxs = [torch.zeros_like(padded_idx) for _ in all_counts]
        dist.all_gather(rows, padded)
        dist.all_gather(idxs, padded_idx)
        local = torch.cat([r[: int(c.item())] for r, c in zip(rows, all_counts)])
        indices = torch.cat([i[: int(c.item())] for i, c in zip(idxs, all_counts)])
    hits = torch.bincount(indices, minlength=total) if indices.numel() else indices.new_zeros(total)
    if hits.shape[0] != total or not bool((hits == 1).all()):
        missing = int((hits[:total] == 0).sum())
        raise ValueError(
            f"indices must cover 0..{total - 1} exactly once: {missing} missing, "
            f"{int((hits > 1).sum())} repeated, {int(hits[total:].sum())} out of range"
        )
    out = local.new_empty((total, *local.shape[1:]))
    out[indices] = local
    return out
