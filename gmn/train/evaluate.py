"""Evaluation over a sharded dataset: full-set metrics, outputs in input order."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from gmn.train.batch import move_to, split_batch
from gmn.train.distributed import all_reduce_sum, gather_in_order


def is_classification(outputs: Tensor, targets: Tensor) -> bool:
    """``outputs`` [B, C] logits with integer class ``targets`` [B]."""
    return (
        outputs.dim() == 2
        and targets.dim() == 1
        and not torch.is_floating_point(targets)
        and outputs.shape[0] == targets.shape[0]
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    indices: list[int],
    size: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    split: Callable = split_batch,
    autocast=nullcontext,
    return_outputs: bool = False,
) -> dict:
    """Evaluate ``model`` on this rank's shard and reduce over all ranks.

    Args:
        loader: yields this rank's shard, the samples at ``indices``, in that order.
        indices: dataset positions of this rank's samples; all ranks' shards together
            cover ``0..size-1`` exactly once, so every sample counts once.
        loss_fn: a mean-reduced loss; it is weighted by batch size to get the set mean.
        return_outputs: also return every sample's output, gathered in input order.

    Returns:
        ``{"loss", "accuracy" (classification only), "outputs" [size, ...],
        "probabilities" [size, C], "predictions" [size]}`` (the last three when
        ``return_outputs``; probabilities and predictions for classification only).
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss·n, correct, n, cls
    outputs = []
    for batch in loader:
        inputs, targets = split(move_to(batch, device))
        with autocast():
            out = model(inputs)
        out = out.float()
        n = targets.shape[0]
        totals[0] += loss_fn(out, targets).double() * n
        totals[2] += n
        if is_classification(out, targets):
            totals[1] += (out.argmax(-1) == targets).sum()
            totals[3] += 1
        if return_outputs:
            outputs.append(out)
    model.train(was_training)
    all_reduce_sum(totals)
    if totals[2] != size:
        raise RuntimeError(f"evaluated {int(totals[2])} samples, expected {size}")
    result = {"loss": float(totals[0] / totals[2])}
    classification = totals[3] > 0
    if classification:
        result["accuracy"] = float(totals[1] / totals[2])
    if return_outputs:
        local = torch.cat(outputs)
        result["outputs"] = gather_in_order(local, torch.tensor(indices), size).cpu()
        if classification:
            result["probabilities"] = result["outputs"].softmax(-1)
            result["predictions"] = result["outputs"].argmax(-1)
    return result
