"""Per-sample results over a dataset, computed by every rank on its shard and gathered
in input order: probes (hidden states) and predictions under ``torchrun``.

For CKA no gathering is needed: each rank feeds its shard to a
``gmn.cka.CKAAccumulator`` and ``accumulator.all_reduce()`` gives every rank the
full-data value.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gmn.train.batch import move_to
from gmn.train.distributed import current_context, gather_in_order
from gmn.train.loading import LoaderSpec
from gmn.train.sampler import shard_indices


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
