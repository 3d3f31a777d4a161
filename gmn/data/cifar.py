"""CIFAR-10 from its python batches, read with a restricted unpickler.

The batches are pickles; a pickle can run any code it names. ``SafeUnpickler`` only resolves
the globals a CIFAR batch needs (numpy's array reconstruction) and refuses everything else.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from gmn.data.download import RemoteFile, fetch
from gmn.data.images import ImageSet

ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "c58f30108f718f92721af3b95e74349a",
)
BATCH_FOLDER = "cifar-10-batches-py"
SPLIT_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles; harmless
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global raises
    ``pickle.UnpicklingError`` naming it."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only arrays"
            )
        if module.startswith("numpy._core") and not hasattr(np, "_core"):
            module = module.replace("numpy._core", "numpy.core")
        return super().find_class(module, name)


def read_batch(path) -> dict:
    """One CIFAR-10 python batch as a dict with str keys (``data``, ``labels``, …)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            batch = SafeUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(f"{path}: {error}") from error
    if not isinstance(batch, dict):
        raise ValueError(f"{path} holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def load_cifar10(root, *, split: str = "train", download: bool = True) -> ImageSet:
    """CIFAR-10 [N, 3, 32, 32] in [0, 1] from ``root/cifar-10-batches-py`` (extracted from
    ``root/cifar-10-python.tar.gz`` if only the archive is there)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    folder = root / BATCH_FOLDER
    if not all((folder / name).exists() for name in SPLIT_FILES[split]):
        fetch(root, [ARCHIVE], download=download, what=f"CIFAR-10 {split} split")
        with tarfile.open(root / ARCHIVE.name) as archive:
            archive.extractall(root, filter="data")
    images, labels = [], []
    for name in SPLIT_FILES[split]:
        batch = read_batch(folder / name)
        missing = {"data", "labels"} - set(batch)
        if missing:
            raise ValueError(f"{folder / name} lacks the entries {sorted(missing)}")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return ImageSet(
        torch.from_numpy(np.concatenate(images)).float().div_(255.0),
        torch.from_numpy(np.concatenate(labels)),
        {"name": "cifar10", "split": split, "folder": str(folder)},
    )
