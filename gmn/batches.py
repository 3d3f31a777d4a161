"""Batches: moving them to a device and splitting them into (inputs, targets).

Owns the batch conventions shared by training, probes and CKA.
May import: nothing of gmn.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import torch
from torch import Tensor


def is_graph_data(obj) -> bool:
    """Whether ``obj`` is a PyG ``Data``/``Batch``; PyG (slow to import) is not imported
    for this: an object of a class PyG defines can only exist once PyG is loaded."""
    if "torch_geometric" not in sys.modules:
        return False
    from torch_geometric.data.data import BaseData

    return isinstance(obj, BaseData)


def split_batch(batch) -> tuple[object, Tensor]:
    """Default ``(inputs, targets)`` of a batch.

    * a PyG ``Batch`` (e.g. of ``ParameterGraph``s): ``(batch, batch.y)``;
    * a pair ``(x, y)`` (tuple or list): ``(x, y)``.

    Raises:
        TypeError: for anything else, or a graph batch without ``y``; pass your own
            ``split_batch`` to the trainer then.
    """
    if is_graph_data(batch):
        if getattr(batch, "y", None) is None:
            raise TypeError("graph batch has no 'y' targets; pass split_batch= to the Trainer")
        return batch, batch.y
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        f"cannot split a batch of type {type(batch).__name__} into (inputs, targets); "
        "pass split_batch= to the Trainer"
    )


def move_to(obj, device: torch.device):
    """``obj`` with every tensor / PyG data object in it on ``device``."""
    if isinstance(obj, Tensor) or is_graph_data(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return type(obj)({k: move_to(v, device) for k, v in obj.items()})
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to(v, device) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj
