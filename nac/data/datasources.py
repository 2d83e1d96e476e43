"""Finding the data: local files first, then tensorflow-datasets (with a probe of the
download hosts so that an offline machine fails at once), and the synthetic smoke-test set.

Each loader returns the raw splits (uint8 images, int32 labels) or, for ImageNet, a lazily
read tfds source; `nac.data` builds the pipelines from them. Where each dataset is looked for:
`nac.data`'s module docstring.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time

import numpy as np
import tensorflow as tf

from nac.data import datafiles
from nac.data.datafiles import DEBIAN_FASHION_MNIST
from nac.spec.errors import DataError

ONLINE_HOSTS = (("www.cs.toronto.edu", 443), ("storage.googleapis.com", 443))

_log = logging.getLogger(__name__)


class TfdsSource:
    """A lazily read tfds dataset (ImageNet)."""

    def __init__(self, builder, splits: dict[str, str]):
        self.builder = builder
        self.splits = splits  # nac split -> tfds split string

    def read(self, split: str, *, shuffle_seed: int | None):
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, try_autocache=False, add_tfds_id=False)
        return self.builder.as_dataset(
            split=self.splits[split],
            shuffle_files=shuffle_seed is not None,
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=read_config,
            as_supervised=True,
        )


def is_pipeline_error(error: Exception) -> bool:
    """True if a TensorFlow error was raised by reading or decoding the input data."""
    if isinstance(error, tf.errors.DataLossError):
        return True
    message = getattr(error, "message", "") or str(error)
    return isinstance(error, tf.errors.OpError) and "IteratorGetNext" in message


def pipeline_error(error: Exception, name: str, source: str) -> DataError:
    """One line for a TensorFlow error met while reading the data (at start-up or mid-epoch).

    TensorFlow's record readers name the byte offset, not the file (`corrupted record at
    10800`), so the line names the data's folder, and the file where TensorFlow names one.
    """
    message = getattr(error, "message", "") or str(error)
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    lines = [" ".join(line.split()) for line in message.splitlines()]
    # Graph execution errors start with "Graph execution error:", a "Detected at node"
    # trace and File lines; the reader's own words follow (e.g. "corrupted record at 10800").
    useful = [
        line
        for line in lines
        if line
        and not line.startswith(("Graph execution error", "Detected at node", "File ", "[[", "Stack trace"))
        and not line.endswith(":")
    ]
    first = re.sub(r"\s*\[\[.*$|\s*\[Op:.*$", "", (useful or [type(error).__name__])[0])[:200]
    return DataError(
        f"{name}: a data file in {source} is corrupt or truncated (TensorFlow: {first}); "
        "replace the files (download or prepare the dataset again)"
    )


def synthetic(config, size: int) -> tuple[datafiles.Split, datafiles.Split]:
    """Learnable synthetic images: class colour + class stripes + noise, fixed seed."""

    def make(num: int, seed: int) -> datafiles.Split:
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.arange(num) % 10).astype(np.int32)
        hue = 2 * np.pi * labels / 10
        colour = np.stack([np.cos(hue), np.cos(hue - 2 * np.pi / 3), np.cos(hue + 2 * np.pi / 3)], -1)
        grid = np.arange(size, dtype=np.float32) / size
        rows, cols = np.meshgrid(grid, grid, indexing="ij")
        coord = np.where((labels // 5 == 0)[:, None, None], rows, cols)
        frequency = (1 + labels % 5)[:, None, None]
        phase = rng.uniform(0, 2 * np.pi, size=(num, 1, 1))
        stripes = np.sin(2 * np.pi * frequency * coord + phase)
        images = (
            128.0
            + 60.0 * colour[:, None, None, :]
            + 40.0 * stripes[..., None]
            + rng.normal(0.0, 20.0, size=(num, size, size, 3))
        )
        return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels

    return make(config.synthetic_train_examples, 0), make(config.synthetic_test_examples, 1)


def tfds_default_dir() -> str:
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def online(hosts=ONLINE_HOSTS, timeout: float = 2.5) -> bool:
    """Whether any of hosts accepts a TCP connection within about timeout seconds.

    The attempts run in daemon threads, so a hanging DNS lookup (which the socket
    timeout does not cover) cannot delay the answer beyond timeout.

    Args:
      hosts: (host, port) pairs tried in parallel.
      timeout: Seconds to wait at most.

    Returns:
      True as soon as one connection succeeds; False when all failed or time ran out.
    """
    connected = threading.Event()

    def attempt(host, port):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                connected.set()
        except OSError:
            pass

    threads = [threading.Thread(target=attempt, args=hp, daemon=True) for hp in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    while (
        not connected.is_set()
        and time.monotonic() < deadline
        and any(thread.is_alive() for thread in threads)
    ):
        connected.wait(0.05)
    return connected.is_set()


def load_small_tfds(
    name: str, data_dir: str | None, looked: str, fix: str
) -> tuple[tuple[datafiles.Split, datafiles.Split], str]:
    """Loads a small tfds dataset into memory: prepared dirs first, then a download."""
    import tensorflow_datasets as tfds

    tfds_dirs = ([os.fspath(data_dir)] if data_dir else []) + [tfds_default_dir()]
    builder = None
    for directory in tfds_dirs:
        candidate = tfds.builder(name, data_dir=directory)
        if candidate.is_prepared():
            builder = candidate
            break
    if builder is None:
        where = f"{looked}; no prepared tfds:{name} in {', '.join(tfds_dirs)}"
        if not online():
            raise DataError(f"{name}: {where}; tfds cannot download (offline); {fix}")
        builder = tfds.builder(name, data_dir=tfds_dirs[0])
        _log.info("Downloading %s with tensorflow-datasets to %s", name, tfds_dirs[0])
        try:
            builder.download_and_prepare()
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(f"{name}: {where}; the tfds download failed ({message}); {fix}") from error

    def split(split_name: str) -> datafiles.Split:
        source = f"tfds:{name} ({builder.data_dir})"
        dataset = builder.as_dataset(split=split_name, as_supervised=True, batch_size=10000)
        images, labels = [], []
        try:
            for batch_images, batch_labels in tfds.as_numpy(dataset):
                images.append(batch_images)
                labels.append(batch_labels)
        except tf.errors.OpError as error:
            raise pipeline_error(error, name, source) from None
        try:
            expected = builder.info.splits[split_name].num_examples
        except KeyError:  # no split metadata (tfds' mock data)
            expected = None
        got = sum(len(b) for b in labels)
        if expected is not None and got != expected:  # a truncated last record reads as none
            raise DataError(
                f"{name}: the {split_name} record files in {builder.data_dir} hold {got} examples, "
                f"its dataset_info.json says {expected}; they are truncated or corrupt: delete "
                "the folder and prepare the dataset again"
            )
        return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32)

    return (split("train"), split("test")), f"tfds:{name} ({builder.data_dir})"


def load_imagenet(config):
    """Prepares (if needed) and opens ImageNet through tfds."""
    import tensorflow_datasets as tfds

    files = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
    tfds_dir = os.fspath(config.data_dir) if config.data_dir else tfds_default_dir()
    builder = tfds.builder("imagenet2012", data_dir=tfds_dir)
    if not builder.is_prepared():
        manual_dirs = [tfds_dir, os.path.join(tfds_dir, "downloads", "manual")]
        found = [d for d in manual_dirs if all(os.path.isfile(os.path.join(d, f)) for f in files)]
        if not found:
            raise DataError(
                f"imagenet2012: no prepared tfds dataset in {tfds_dir} and no "
                f"{' + '.join(files)} in {' or '.join(manual_dirs)}; download both from "
                f"https://image-net.org/download-images (registration required) into "
                f"{manual_dirs[1]} and rerun with --data_dir={tfds_dir} (the first run "
                "prepares them with tensorflow-datasets: hours, ~150 GB)"
            )
        _log.info(
            "Preparing imagenet2012 from %s into %s (once; takes hours)",
            found[0],
            tfds_dir,
        )
        try:
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=found[0]))
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(
                f"imagenet2012: preparing {found[0]} with tensorflow-datasets failed "
                f"({message}); check that both tar files are complete"
            ) from error

    def count(split: str) -> int:
        return max(int(builder.as_dataset(split=split).cardinality()), 0)

    validation = config.validation_examples
    total = count("train")
    if validation and validation >= total:
        raise DataError(
            f"imagenet2012: validation_examples={validation} leaves no training data "
            f"(the training split has {total}); use fewer"
        )
    splits = {"train": "train", "validation": "train", "test": "validation"}
    counts = {"train": total, "validation": 0, "test": count("validation")}
    if validation:
        splits["train"] = f"train[:-{validation}]"
        splits["validation"] = f"train[-{validation}:]"
        counts["train"], counts["validation"] = total - validation, validation
    source = TfdsSource(builder, splits)
    return f"tfds:imagenet2012 ({builder.data_dir})", source, counts


# Local files first, then tensorflow-datasets.


def load_cifar10(data_dir) -> tuple[tuple[datafiles.Split, datafiles.Split], str]:
    if data_dir:
        roots = [
            os.fspath(data_dir),
            os.path.join(os.fspath(data_dir), "downloads", "manual"),
        ]
    else:
        roots = [os.path.join(tfds_default_dir(), "downloads", "manual")]
    found = datafiles.read_cifar10(roots)
    if found is not None:
        return found
    looked = (
        "no cifar-10-batches-bin/, cifar-10-binary.tar.gz, cifar-10-batches-py/ or "
        f"cifar-10-python.tar.gz in {', '.join(roots)}"
    )
    return load_small_tfds("cifar10", data_dir, looked, datafiles.CIFAR10_FIX)


def load_idx(name: str, data_dir) -> tuple[tuple[datafiles.Split, datafiles.Split], str]:
    directories = []
    if data_dir:
        data_dir = os.fspath(data_dir)
        directories += [data_dir, os.path.join(data_dir, name)]
        if "_" in name:
            directories.append(os.path.join(data_dir, name.replace("_", "-")))
    if name == "fashion_mnist":
        directories.append(DEBIAN_FASHION_MNIST)
    found = datafiles.read_idx_files(name, directories)
    if found is not None:
        return found
    looked = f"no IDX files in {', '.join(directories) or '(no --data_dir)'}"
    return load_small_tfds(name, data_dir, looked, datafiles.idx_fix(name))
