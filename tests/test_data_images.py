"""Image sources: digits, idx files (gz/raw, several names), CIFAR batches, checked downloads."""

import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from gmn.data.cifar import load_cifar10, read_batch
from gmn.data.download import ChecksumError, RemoteFile, fetch
from gmn.data.idx import load_mnist, read_idx
from gmn.data.images import from_tensor, load_digits, resize
from gmn.data.sources import load_images


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def tiny_mnist():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, np.uint8)


def test_digits_are_the_real_sklearn_digits_scaled_to_unit_range():
    digits = load_digits()
    assert digits.images.shape == (1797, 1, 8, 8)
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    assert torch.equal(digits.labels.bincount(), torch.tensor(
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]))


def test_resize_keeps_range_and_a_constant_image():
    images = from_tensor(torch.full((2, 1, 8, 8), 0.25), [0, 1])
    resized = resize(images, 28)
    assert resized.images.shape == (2, 1, 28, 28)
    assert torch.allclose(resized.images, torch.tensor(0.25))
    assert load_images("digits", size=16).images.shape == (1797, 1, 16, 16)


def test_from_tensor_scales_integers_and_rejects_out_of_range_floats():
    images = from_tensor(torch.tensor([[[0, 255]]], dtype=torch.uint8), [3])
    assert images.images.tolist() == [[[[0.0, 1.0]]]]
    with pytest.raises(ValueError, match=r"\[0, 1\].*\[0, 2\]"):
        from_tensor(torch.tensor([[[0.0, 2.0]]]), [1])
    with pytest.raises(ValueError, match="labels"):
        from_tensor(torch.zeros(2, 1, 4, 4), [1, 2, 3])


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("names", [
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
    ("images-idx3-ubyte", "labels-idx1-ubyte"),
])
def test_mnist_reader_round_trips_idx_files(tmp_path, tiny_mnist, compress, names):
    pixels, labels = tiny_mnist
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / (names[0] + suffix), pixels, compress)
    write_idx(tmp_path / (names[1] + suffix), labels, compress)
    images = load_mnist(tmp_path, split="test", download=False)
    assert torch.equal(images.images, torch.from_numpy(pixels).float().unsqueeze(1) / 255)
    assert images.labels.tolist() == labels.tolist()


def test_idx_reader_rejects_a_truncated_file(tmp_path, tiny_mnist):
    write_idx(tmp_path / "x", tiny_mnist[0], compress=False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-3])
    with pytest.raises(ValueError, match="x: header says"):
        read_idx(tmp_path / "x")


def test_a_truncated_gzip_idx_file_is_named(tmp_path, tiny_mnist):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", tiny_mnist[0], compress=True)
    data = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: not a readable gzip file "
                                         r"\(EOFError.*truncated or damaged"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")


@pytest.mark.parametrize("bad", [10, 200])
def test_labels_outside_the_ten_classes_are_refused(tmp_path, tiny_mnist, bad):
    pixels, labels = tiny_mnist
    labels = labels.copy()
    labels[3] = bad
    write_idx(tmp_path / "train-images-idx3-ubyte", pixels, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, compress=False)
    with pytest.raises(ValueError, match=f"train-labels-idx1-ubyte: label {bad} at index 3 is not "
                                         r"a mnist class in \[0, 10\)"):
        load_mnist(tmp_path, split="train", download=False)


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_bare_idx_pair_does_not_claim_a_split(tmp_path, tiny_mnist, split):
    write_idx(tmp_path / "images-idx3-ubyte.gz", tiny_mnist[0], compress=True)
    write_idx(tmp_path / "labels-idx1-ubyte.gz", tiny_mnist[1], compress=True)
    with pytest.warns(UserWarning, match=f"bare idx pair.*used for split='{split}' as asked"):
        images = load_mnist(tmp_path, split=split, download=False)
    assert images.source["split"] is None and images.source["requested_split"] == split
    write_idx(tmp_path / "t10k-images-idx3-ubyte", tiny_mnist[0], compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", tiny_mnist[1], compress=False)
    assert load_mnist(tmp_path, split="test", download=False).source["split"] == "test"


def test_missing_mnist_files_error_names_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(tmp_path, split="train", kind="fashion-mnist", download=False)
    message = str(error.value)
    assert str(tmp_path) in message and "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message


def test_download_verifies_the_checksum(tmp_path):
    source = tmp_path / "mirror"
    source.mkdir()
    (source / "file.bin").write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    url = (source / "file.bin").as_uri()
    fetch(tmp_path / "a", [RemoteFile("file.bin", (url,), md5)])
    assert (tmp_path / "a" / "file.bin").read_bytes() == b"payload"
    with pytest.raises(ChecksumError, match="file.bin"):
        fetch(tmp_path / "b", [RemoteFile("file.bin", (url,), "0" * 32)])
    assert not (tmp_path / "b" / "file.bin").exists()
    with pytest.raises(FileNotFoundError, match="could not download"):
        fetch(tmp_path / "c", [RemoteFile("file.bin", ((source / "nope").as_uri(),), md5)])


def write_cifar(folder, rng):
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, 2).tolist(), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    return batches


def test_cifar_reader_reads_python_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))
    images = load_cifar10(tmp_path, split="test", download=False)
    expected = batches["test_batch"][b"data"].reshape(2, 3, 32, 32) / 255.0
    assert torch.allclose(images.images, torch.from_numpy(expected).float())
    assert images.labels.tolist() == batches["test_batch"][b"labels"]
    assert len(load_cifar10(tmp_path, split="train", download=False)) == 10


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_unpickler_refuses_a_pickle_that_runs_code(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": RunsCode(), b"labels": [0]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_1.*refusing.*system"):
        read_batch(path)
