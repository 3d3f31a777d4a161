"""MNIST and Fashion-MNIST from their idx files (gzip or raw).

Looked for in ``root``, ``root/raw``, ``root/MNIST/raw`` and ``root/FashionMNIST/raw``, under the
official names (``train-images-idx3-ubyte[.gz]``, ``t10k-...``), the ``train-images.idx3-ubyte``
spelling, or a bare ``images-idx3-ubyte[.gz]`` / ``labels-idx1-ubyte[.gz]`` pair. A bare pair
does not say which official split it holds: it is used for the split asked for, with a
warning, and its ``ImageSet.source`` records ``"split": None`` (and ``"requested_split"``).
Labels outside the datasets' 10 classes are refused, naming the file.
"""

from __future__ import annotations

import gzip
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmn.data.download import RemoteFile, fetch
from gmn.data.images import ImageSet

_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
NUM_CLASSES = 10  # MNIST and Fashion-MNIST
_PREFIX = {"train": "train", "test": "t10k"}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> Tensor:
    """An idx file (gzip detected by its magic bytes) as a tensor of its stored shape."""
    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{path}: not a readable gzip file ({type(error).__name__}: "
                             f"{error}); it is truncated or damaged: download or copy it "
                             "again") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: header says {shape} ({expected} bytes), file has {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))


def _candidates(split: str, what: str) -> list[str]:
    ndim = 3 if what == "images" else 1
    names = [
        f"{_PREFIX[split]}-{what}-idx{ndim}-ubyte",
        f"{_PREFIX[split]}-{what}.idx{ndim}-ubyte",
        f"{what}-idx{ndim}-ubyte",
    ]
    return [n + ext for n in names for ext in (".gz", "")]


def find_idx_files(root, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split`` under ``root``, or None when absent."""
    root = Path(root)
    folders = [root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"]
    for folder in folders:
        images = _first_existing(folder, _candidates(split, "images"))
        labels = _first_existing(folder, _candidates(split, "labels"))
        if images is not None and labels is not None:
            return images, labels
    return None


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def load_mnist(
    root, *, split: str = "train", kind: str = "mnist", download: bool = True
) -> ImageSet:
    """MNIST (``kind="mnist"``) or Fashion-MNIST (``"fashion-mnist"``): [N, 1, 28, 28] in [0, 1]."""
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if kind not in _MD5:
        raise ValueError(f"kind must be 'mnist' or 'fashion-mnist', got {kind!r}")
    found = find_idx_files(root, split)
    if found is None:
        names = [f"{_PREFIX[split]}-{w}-idx{d}-ubyte.gz" for w, d in (("images", 3), ("labels", 1))]
        remote = [
            RemoteFile(n, tuple(m + n for m in _MIRRORS[kind]), _MD5[kind][n]) for n in names
        ]
        fetch(root, remote, download=download, what=f"{kind} {split} split")
        found = find_idx_files(root, split)
    image_path, label_path = found
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dim() != 3 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"{image_path} holds shape {tuple(images.shape)} and {label_path} "
            f"{tuple(labels.shape)}: expected [N, H, W] images and [N] labels"
        )
    _check_labels(label_path, labels, kind)
    source = {"name": kind, "split": split, "files": [str(image_path), str(label_path)]}
    if not image_path.name.startswith(f"{_PREFIX[split]}-"):
        # a bare pair: its names do not say which official split it holds
        source.update(split=None, requested_split=split)
        warnings.warn(f"{image_path} and {label_path} are a bare idx pair whose names do not "
                      f"say which official split they hold; used for split={split!r} as asked "
                      "and recorded with split None", stacklevel=2)
    return ImageSet(images.unsqueeze(1).float().div_(255.0), labels.long(), source)


def _check_labels(path: Path, labels: Tensor, kind: str) -> None:
    """MNIST and Fashion-MNIST declare ``NUM_CLASSES`` classes: any other label is refused."""
    if labels.is_floating_point():
        raise ValueError(f"{path}: labels are {labels.dtype}, expected integers")
    bad = ((labels < 0) | (labels >= NUM_CLASSES)).nonzero()
    if len(bad):
        index = int(bad[0])
        raise ValueError(f"{path}: label {int(labels[index])} at index {index} is not a {kind} "
                         f"class in [0, {NUM_CLASSES}) ({len(bad)} such labels)")
