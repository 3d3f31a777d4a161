"""`load_images(name, root)`: every image source by name.

``"digits"`` (scikit-learn's 1,797 bundled 8×8 handwritten digits, no network), ``"mnist"``,
``"fashion-mnist"`` (idx files, :mod:`gmn.data.idx`) and ``"cifar10"`` (python batches,
:mod:`gmn.data.cifar`).
"""

from __future__ import annotations

from gmn.data.cifar import load_cifar10
from gmn.data.idx import load_mnist
from gmn.data.images import ImageSet, load_digits, resize


def load_images(
    name: str,
    root=None,
    *,
    split: str = "train",
    size: int | tuple[int, int] | None = None,
    download: bool = True,
) -> ImageSet:
    """Any named image source: ``"digits"``, ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``.

    ``root`` is the folder holding the files (not needed for ``digits``); ``split`` is
    ``"train"`` or ``"test"``; missing files are downloaded when ``download`` and a network allow.
    """
    if name == "digits":
        return load_digits(size)
    if root is None:
        raise ValueError(f"image source {name!r} needs root=<folder holding its files>")
    if name in ("mnist", "fashion-mnist"):
        images = load_mnist(root, split=split, kind=name, download=download)
    elif name == "cifar10":
        images = load_cifar10(root, split=split, download=download)
    else:
        raise ValueError(
            f"unknown image source {name!r}; choose digits, mnist, fashion-mnist or cifar10"
        )
    return resize(images, size) if size is not None else images
