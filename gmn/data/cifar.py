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

from gmn import GMNError
from gmn.data.download import RemoteFile, fetch
from gmn.data.images import ImageSet
from gmn.files import require_type

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


class CifarFileError(GMNError, ValueError):
    """A CIFAR-10 batch file that is empty, truncated, or holds the wrong sizes or labels."""


class UnsafePickleError(GMNError, pickle.UnpicklingError):
    """A pickle that names a global other than numpy's array reconstruction."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global raises
    ``pickle.UnpicklingError`` naming it."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only arrays"
            )
        if module.startswith("numpy._core") and not hasattr(np, "_core"):
            module = module.replace("numpy._core", "numpy.core")
        return super().find_class(module, name)


def read_batch(path) -> dict:
    """One CIFAR-10 python batch as a dict with str keys (``data``, ``labels``, …)."""
    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if not data:
        raise CifarFileError(f"{path} is empty; extract the CIFAR-10 archive again")
    try:
        batch = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: {error}") from error
    except Exception as error:  # noqa: BLE001 - EOFError, ValueError …: name the file
        raise CifarFileError(
            f"{path} is not a CIFAR-10 python batch ({type(error).__name__}: {error}); it is "
            "truncated or damaged: extract the CIFAR-10 archive again"
        ) from error
    require_type(batch, dict, path, "a CIFAR-10 batch dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _checked(path: Path, data, labels) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images [n, 3, 32, 32] uint8 and labels [n] int64, or an error naming the
    file and what is wrong (size, dtype, a label outside 0…9)."""
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CifarFileError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 "
                             "[n, 3072] (32×32 RGB images)")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise CifarFileError(f"{path}: 'labels' is {labels.dtype} {labels.shape}, expected "
                             f"{data.shape[0]} integers")
    bad = labels[(labels < 0) | (labels >= 10)]
    if bad.size:
        raise CifarFileError(f"{path}: label {int(bad[0])} is not a CIFAR-10 class (0…9)")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


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
        data, batch_labels = _checked(folder / name, batch["data"], batch["labels"])
        images.append(data)
        labels.append(batch_labels)
    return ImageSet(
        torch.from_numpy(np.concatenate(images)).float().div_(255.0),
        torch.from_numpy(np.concatenate(labels)),
        {"name": "cifar10", "split": split, "folder": str(folder)},
    )
