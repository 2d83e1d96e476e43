"""Small files in the real formats of CIFAR-10 (binary and Python) and IDX, for the tests."""

import gzip
import os
import pickle
import tarfile

import numpy as np

CIFAR_TRAIN_PER_FILE = 3  # 5 files -> 15 training records
CIFAR_TEST = 4


# --------------------------------------------------------------------------------------
# Helpers that write small files in the real formats.


def cifar_chw(num: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Records with a known pattern: pixel (c, h, w) of record i depends on all four."""
    i, c, h, w = np.meshgrid(
        np.arange(start, start + num),
        np.arange(3),
        np.arange(32),
        np.arange(32),
        indexing="ij",
    )
    pixels = ((i * 37 + c * 85 + h * 7 + w * 3) % 256).astype(np.uint8)
    labels = (np.arange(start, start + num) % 10).astype(np.uint8)
    return pixels, labels


def cifar_batches():
    """[(stem, chw pixels, labels)] of the 5 training files and the test file."""
    batches = []
    for k in range(5):
        pixels, labels = cifar_chw(CIFAR_TRAIN_PER_FILE, k * CIFAR_TRAIN_PER_FILE)
        batches.append((f"data_batch_{k + 1}", pixels, labels))
    pixels, labels = cifar_chw(CIFAR_TEST, 100)
    batches.append(("test_batch", pixels, labels))
    return batches


def cifar_expected():
    """(train, test) as HWC uint8 images and labels."""
    batches = cifar_batches()
    train_x = np.concatenate([b[1] for b in batches[:5]]).transpose(0, 2, 3, 1)
    train_y = np.concatenate([b[2] for b in batches[:5]])
    test_x, test_y = batches[5][1].transpose(0, 2, 3, 1), batches[5][2]
    return (train_x, train_y), (test_x, test_y)


def binary_record_bytes(pixels, labels) -> bytes:
    records = np.concatenate([labels[:, None], pixels.reshape(len(labels), -1)], 1)
    return records.astype(np.uint8).tobytes()


def pickle_bytes(pixels, labels) -> bytes:
    batch = {
        b"batch_label": b"testing batch",
        b"labels": [int(v) for v in labels],
        b"data": pixels.reshape(len(labels), -1),
        b"filenames": [b"x.png"] * len(labels),
    }
    return pickle.dumps(batch, protocol=2)


def write_cifar_dir(directory, python: bool = False):
    os.makedirs(directory, exist_ok=True)
    for stem, pixels, labels in cifar_batches():
        if python:
            name, content = stem, pickle_bytes(pixels, labels)
        else:
            name, content = stem + ".bin", binary_record_bytes(pixels, labels)
        with open(os.path.join(directory, name), "wb") as file:
            file.write(content)


def write_tar(path, source_dir, arcname):
    with tarfile.open(path, "w:gz") as archive:
        archive.add(source_dir, arcname=arcname)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_arrays(num: int, start: int):
    i, h, w = np.meshgrid(np.arange(start, start + num), np.arange(28), np.arange(28), indexing="ij")
    images = ((i * 11 + h * 5 + w) % 256).astype(np.uint8)
    labels = (np.arange(start, start + num) * 3 % 10).astype(np.uint8)
    return images, labels


def write_idx(directory, compressed: bool = True, num_train: int = 6, num_test: int = 3):
    os.makedirs(directory, exist_ok=True)
    (train_x, train_y), (test_x, test_y) = (
        idx_arrays(num_train, 0),
        idx_arrays(num_test, 50),
    )
    files = {
        "train-images-idx3-ubyte": idx_bytes(train_x, 2051),
        "train-labels-idx1-ubyte": idx_bytes(train_y, 2049),
        "t10k-images-idx3-ubyte": idx_bytes(test_x, 2051),
        "t10k-labels-idx1-ubyte": idx_bytes(test_y, 2049),
    }
    for name, content in files.items():
        if compressed:
            name, content = name + ".gz", gzip.compress(content)
        with open(os.path.join(directory, name), "wb") as file:
            file.write(content)
    return (train_x, train_y), (test_x, test_y)
