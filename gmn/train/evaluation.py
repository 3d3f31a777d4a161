"""Per-sample work over a dataset split across processes, reduced or gathered in input order.

``evaluate`` gives the trainer full-set metrics (and every output); ``map_in_order`` runs any
``fn`` (a probe returning hidden states, a prediction) on each rank's shard and gathers the
results in dataset order under ``torchrun``.

For CKA no gathering is needed: each rank feeds its shard to a ``gmn.cka.CKAGrid``
and ``grid.all_reduce()`` gives every rank the full-data values.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from gmn.batches import move_to, split_batch
from gmn.train.distributed import all_reduce_sum, current_context, gather_in_order
from gmn.train.loaders import LoaderSpec, shard_indices


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


@torch.no_grad()
def map_in_order(
    fn: Callable[[object], Tensor | dict[str, Tensor]],
    data,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
) -> Tensor | dict[str, Tensor]:
    """Apply ``fn`` to this rank's shard of ``data`` and gather all ranks' results.

    Args:
        fn: ``batch -> Tensor [b, ...]`` or ``{name: Tensor [b, ...]}`` (e.g. a probe
            returning every hidden state); it sees batches on ``device``.
        data: a dataset (``batch_size`` required) or a ``DataLoader`` (its batch size and
            collate function are used; its order is not).
        device: where batches are sent.

    Returns:
        ``Tensor [len(data), ...]`` (or a dict of them) in dataset order, on every rank.
    """
    ctx = current_context()
    spec = LoaderSpec.of(data, batch_size)
    if len(spec) < ctx.world_size:
        raise ValueError(f"{len(spec)} samples cannot be split over {ctx.world_size} ranks")
    indices = shard_indices(len(spec), ctx.rank, ctx.world_size)
    results = [
        fn(move_to(batch, torch.device(device)))
        for batch in spec.loader(indices, 0, drop_last=False)
    ]
    order = torch.tensor(indices)
    if isinstance(results[0], Tensor):
        return gather_in_order(torch.cat(results), order, len(spec))
    return {
        name: gather_in_order(torch.cat([r[name] for r in results]), order, len(spec))
        for name in results[0]
    }
