"""The in-memory arrays source: its loader, and `tf.data.Dataset`s read into arrays.

The arrays themselves are checked and fingerprinted in `nac.spec.arrays` (NumPy only); this
module hands their splits to the dataset-source registry's loader (`nac.data.sources.arrays`),
so that `nac.data.pipelines` treats them as it treats the built-in array sets (augmentation, `--downsample`, validation carving, evaluation), and
turns a finite `tf.data.Dataset` of `(image, label)` pairs, batched or not, into arrays.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nac.spec import arrays as arrays_lib
from nac.spec.errors import DataError


def load(dataset: str):
    """((train, test), source) of the registered arrays `arrays:<fingerprint>`."""
    source = arrays_lib.source_of(dataset)
    return (source.train, source.test), f"in-memory arrays (sha256 {source.fingerprint[:16]})"


def load_splits(facts, config):
    """The arrays' splits for the dataset-source registry: `(facts, DataConfig)` -> ((train,
    test), source), which `nac.data.sources.arrays.load` wraps in its `LoadedSplits`."""
    return load(config.dataset)


def from_dataset(dataset: tf.data.Dataset, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads a finite dataset of (image, label) elements into (images, labels) arrays.

    Elements may be single examples (`[H, W, C]` or `[H, W]` images, scalar labels) or
    batches of them.

    Raises:
      DataError: Not a dataset of (image, label) pairs, or an infinite one (one line).
    """
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2 or not all(isinstance(s, tf.TensorSpec) for s in spec):
        raise DataError(f"{where}: a tf.data.Dataset of {spec}; expected (image, label) pairs")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise DataError(f"{where}: the tf.data.Dataset repeats forever; give a finite one (no .repeat())")
    image_rank = spec[0].shape.rank
    label_rank = spec[1].shape.rank
    if image_rank is None or label_rank is None or image_rank - label_rank not in (2, 3):
        raise DataError(
            f"{where}: images {spec[0].shape} and labels {spec[1].shape}; expected [H, W, C] "
            "images with scalar labels, or batches of them"
        )
    if label_rank == 1:  # batched
        dataset = dataset.unbatch()
    images, labels = [], []
    for image, label in dataset.batch(1024).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    if not images:
        raise DataError(f"{where}: the tf.data.Dataset is empty")
    return np.concatenate(images), np.concatenate(labels)
