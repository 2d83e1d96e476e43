"""Input pipelines: CIFAR-10, ImageNet 2012, (Fashion-)MNIST and a synthetic smoke-test set.

`load(DataConfig(...))` finds the data (`nac.data.datasources`), checks it and returns a `Data`
object whose `train()` and `evaluation()` methods build `tf.data` pipelines sized by the
GLOBAL batch (the caller distributes them with `tf.distribute`). The preprocessing ops,
`eval_preprocess` among them, are in `nac.data.preprocess`.

Where the data comes from (local files are always tried before any download):

- ``cifar10``: in each of ``data_dir``, ``data_dir/downloads/manual`` (or, without a
  ``data_dir``, ``~/tensorflow_datasets/downloads/manual``): the extracted folder
  ``cifar-10-batches-bin/`` or ``data_dir`` itself holding ``data_batch_1.bin`` ..
  ``data_batch_5.bin`` and ``test_batch.bin`` (records of 1 label byte + 3072 pixel bytes in
  CHW order), the archive ``cifar-10-binary.tar.gz``, the Python version
  ``cifar-10-batches-py/`` (pickled dicts with ``b"data"`` uint8 [N, 3072] CHW and
  ``b"labels"``) or ``cifar-10-python.tar.gz``. Then a prepared tensorflow-datasets
  directory (``data_dir`` or ``~/tensorflow_datasets``), then a tfds download, but only
  if ``www.cs.toronto.edu``/``storage.googleapis.com`` answer within a few seconds, so
  that an offline machine fails at once instead of after minutes of DNS retries.
- ``fashion_mnist`` / ``mnist``: the IDX files ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
  ``t10k-labels-idx1-ubyte.gz`` (or uncompressed) in ``data_dir``, ``data_dir/<name>``,
  then (Fashion-MNIST only) ``/usr/share/datasets/fashion-mnist/`` from the Debian
  package ``dataset-fashion-mnist``, then tensorflow-datasets as for CIFAR-10.
- ``imagenet2012``: tensorflow-datasets only, read lazily (never held in memory). The
  steps, once per machine:

  1. Register at https://image-net.org/download-images and download
     ``ILSVRC2012_img_train.tar`` (138 GB) and ``ILSVRC2012_img_val.tar`` (6.3 GB).
  2. Put both files in ``DIR`` or ``DIR/downloads/manual`` and run nac with
     ``--data_dir=DIR``. The first run prepares the tfds dataset in ``DIR/imagenet2012/``
     (several hours, about 150 GB more disk); later runs read the prepared files. A copy
     of a prepared ``DIR/imagenet2012/<version>/`` tree from another machine works too.
  3. The tfds ``validation`` split (50,000 images) is nac's ``test`` split;
     ``validation_examples`` carves nac's validation split from the end of ``train``.

- ``synthetic``: generated in memory from a fixed seed: 10 classes told apart by a mean
  colour and by stripes of a class-dependent frequency and orientation, plus Gaussian
  noise. For smoke tests only.

Preprocessing follows the original TF1 CIFAR-10 recipe. Training (``augment="original"``):
random crop to ``image_size`` from the unpadded raw image, random horizontal flip, random
brightness (max delta 63 on the 0-255 scale), random contrast in [0.2, 1.8], per-image
standardisation. ``augment="padded"``: zero-pad 4 pixels, random crop to ``image_size``,
flip, standardisation. ``augment="none"`` and evaluation: central crop, standardisation.
ImageNet (``augment="original"``): the original's Inception pipeline, a distorted
bounding-box crop of the whole image (area [0.05, 1], aspect [0.75, 1.33], 100 attempts),
resize by a randomly drawn method, flip, colour distortion (brightness, saturation, hue,
contrast), scale to [-1, 1]; ``augment="crop_flip"`` (nac's earlier ImageNet pipeline): area
[0.08, 1], 10 attempts, bilinear resize, flip, no colour distortion; evaluation: central
87.5 % crop, resize, scale to [-1, 1].

Determinism: with a seed, the training stream is a pure function of (seed, batch number):
in-memory sets are permuted per epoch with ``stateless_shuffle(seed, epoch)`` and
augmented per batch with stateless random ops seeded by ``(seed, batch index)`` (every
image in a batch still draws its own crop, flip, brightness and contrast); ImageNet
examples are shuffled with seeded tf.data ops and augmented per example with seeds
``(seed, example index)``.

Every problem a user can cause raises `nac.spec.errors.DataError` (re-exported here) with a
one-line message.
"""

from __future__ import annotations

import dataclasses
import logging
import random

import numpy as np
import tensorflow as tf

from nac.data import datafiles, datasources, preprocess, sources
from nac.data.dataconfig import DataConfig, DatasetInfo
from nac.spec.checks import is_int
from nac.spec.choices import AUGMENTATIONS, DATASETS, DatasetFacts
from nac.spec.errors import DataError

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "Data",
    "DataConfig",
    "DataError",
    "DatasetInfo",
    "load",
]

SPLITS = ("train", "validation", "test")

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Preprocessing (the ops themselves are in nac.data.preprocess).


def _seed_key(seed: int) -> tf.Tensor:
    return tf.constant([seed, 0], tf.int64)


# The array datasets' training pipeline: batches prepared in parallel and kept ready.
ARRAY_MAP_CALLS = 2
ARRAY_PREFETCH = 4


def _with_options(dataset: tf.data.Dataset, autotune: bool = True) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = autotune
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _check_batch(global_batch_size) -> None:
    if not is_int(global_batch_size) or global_batch_size < 1:
        raise DataError(f"global_batch_size={global_batch_size!r} is not valid; use an integer >= 1")


# --------------------------------------------------------------------------------------
# Data.


class Data:
    """The loaded splits and the pipelines built from them (returned by `load`).

    Attributes:
      info: What was loaded (`DatasetInfo`).
      seed: The seed of shuffling and augmentation (drawn at load time if the config's
        seed was None).
    """

    def __init__(
        self,
        info: DatasetInfo,
        config: DataConfig,
        seed: int,
        *,
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        tfds_source: datasources.TfdsSource | None = None,
    ):
        self.info = info
        self.config = config
        self.seed = seed
        self._arrays = arrays
        self._tfds = tfds_source
        self._tensors: dict[str, tuple[tf.Tensor, tf.Tensor]] = {}

    def __repr__(self) -> str:
        return f"Data({self.info})"

    def reseeded(self, seed: int) -> Data:
        """The same loaded data with another shuffling and augmentation seed (no reloading)."""
        other = Data(
            self.info,
            dataclasses.replace(self.config, seed=seed),
            seed,
            arrays=self._arrays,
            tfds_source=self._tfds,
        )
        other._tensors = self._tensors
        return other

    def _num_examples(self, split: str) -> int:
        return {
            "train": self.info.train_examples,
            "validation": self.info.validation_examples,
            "test": self.info.test_examples,
        }[split]

    def _split_tensors(self, split: str) -> tuple[tf.Tensor, tf.Tensor]:
        if split not in self._tensors:
            images, labels = self._arrays[split]
            with tf.init_scope(), tf.device("/cpu:0"):
                self._tensors[split] = (
                    tf.convert_to_tensor(images),
                    tf.convert_to_tensor(labels.astype(np.int32) + self.config.label_offset),
                )
        return self._tensors[split]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The raw split as numpy arrays (in-memory datasets only).

        Args:
          split: "train", "validation" or "test".

        Returns:
          (uint8 images [N, raw, raw, C], int32 labels [N] without label_offset).

        Raises:
          DataError: ImageNet (streamed) or unknown split.
        """
        self._check_split(split)
        if self._arrays is None:
            raise DataError(f"{self.info.name} is streamed through tfds; it has no in-memory arrays")
        return self._arrays[split]

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise DataError(f"split={split!r} is not valid; use one of: {', '.join(SPLITS)}")
        if self._num_examples(split) == 0:
            raise DataError(
                f"{self.info.name} has no {split} split; set "
                "DataConfig.validation_examples (--validation_examples) > 0 to carve "
                "one from the end of the training split"
            )

    def train(self, global_batch_size: int, *, augment: bool = True) -> tf.data.Dataset:
        """The training pipeline: repeats forever, each epoch reshuffled.

        Args:
          global_batch_size: Images per batch over all replicas.
          augment: Training augmentation (`DataConfig.augment`); False applies the
            evaluation preprocessing to the shuffled stream.

        Returns:
          A deterministic (for a fixed seed) dataset of (float32 images [B, S, S, C],
          int32 labels [B]) with drop_remainder=True, prefetched.

        Raises:
          DataError: Bad batch size.
        """
        _check_batch(global_batch_size)
        mode = self.config.augment if augment else "none"
        if self._tfds is not None:
            dataset = self._tfds_train(global_batch_size, mode)
            return _with_options(dataset.prefetch(tf.data.AUTOTUNE))
        # The array datasets' batches are a gather and a few element-wise ops: fixed
        # parallelism is enough, and without tf.data's autotuning no optimisation thread
        # lives as long as the training (deleting a long-running autotuned iterator waits for
        # that thread; docs/quickstart.md).
        dataset = self._array_train(global_batch_size, mode).prefetch(ARRAY_PREFETCH)
        return _with_options(dataset, autotune=False)

    def _array_train(self, batch: int, mode: str):
        images, labels = self._split_tensors("train")
        num = self.info.train_examples
        key = _seed_key(self.seed)
        permute_key = tf.random.experimental.stateless_fold_in(key, 0)
        augment_key = tf.random.experimental.stateless_fold_in(key, 1)

        def permutation(epoch):
            seed = tf.random.experimental.stateless_fold_in(permute_key, epoch)
            return tf.random.experimental.stateless_shuffle(tf.range(num), seed)

        indices = tf.data.Dataset.counter().map(permutation).unbatch()
        indices = indices.batch(batch, drop_remainder=True).enumerate()
        image_size, name = self.info.image_size, self.info.name

        def make_batch(step, index):
            batch_images = tf.gather(images, index)
            if mode == "none":
                batch_images = preprocess.eval_preprocess(batch_images, name, image_size)
            else:
                seed = tf.random.experimental.stateless_fold_in(augment_key, step)
                batch_images = preprocess.augment_batch(batch_images, mode, image_size, seed)
            return batch_images, tf.gather(labels, index)

        return indices.map(make_batch, num_parallel_calls=ARRAY_MAP_CALLS, deterministic=True)

    def _tfds_train(self, batch: int, mode: str):
        seed = self.seed
        dataset = self._tfds.read("train", shuffle_seed=seed % 2**31)
        if self.config.cache:
            dataset = dataset.cache()
        dataset = dataset.shuffle(self.config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()
        augment_key = tf.random.experimental.stateless_fold_in(_seed_key(seed), 1)
        image_size, offset = self.info.image_size, self.config.label_offset

        def prepare(index, example):
            encoded, label = example
            if mode == "none":
                image = preprocess.imagenet_eval(
                    tf.cast(tf.io.decode_jpeg(encoded, channels=3), tf.float32),
                    image_size,
                )
            else:
                seed = tf.random.experimental.stateless_fold_in(augment_key, index)
                image = preprocess.imagenet_train(encoded, image_size, seed, mode)
            return image, tf.cast(label, tf.int32) + offset

        dataset = dataset.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.batch(batch, drop_remainder=True)

    def evaluation(self, split: str, global_batch_size: int) -> tf.data.Dataset:
        """One pass over a split with evaluation preprocessing, in stored order.

        Args:
          split: "test", "validation" or "train" (e.g. for batch-norm re-estimation).
          global_batch_size: Images per batch over all replicas; the last batch may be
            smaller (drop_remainder=False).

        Returns:
          A finite dataset of (float32 images [B, S, S, C], int32 labels [B]).

        Raises:
          DataError: Unknown or empty split, bad batch size.
        """
        self._check_split(split)
        _check_batch(global_batch_size)
        image_size, name = self.info.image_size, self.info.name
        if self._tfds is not None:
            offset = self.config.label_offset

            def prepare(encoded, label):
                image = tf.cast(tf.io.decode_jpeg(encoded, channels=3), tf.float32)
                image = preprocess.imagenet_eval(image, image_size)
                return image, tf.cast(label, tf.int32) + offset

            dataset = self._tfds.read(split, shuffle_seed=None)
            if self.config.cache:
                dataset = dataset.cache()
            dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(
                global_batch_size
            )
        else:
            images, labels = self._split_tensors(split)

            def make_batch(index):
                batch = preprocess.eval_preprocess(tf.gather(images, index), name, image_size)
                return batch, tf.gather(labels, index)

            dataset = (
                tf.data.Dataset.range(self._num_examples(split))
                .batch(global_batch_size)
                .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            )
        return _with_options(dataset.prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------------------
# Loading.


def _load_imagenet(config: DataConfig):
    """ImageNet 2012 through tensorflow-datasets: (source, tfds source, split counts)."""
    if config.downsample > 1:
        raise DataError(f"imagenet2012: downsample={config.downsample} is for the array datasets; use 1")
    if config.augment == "padded":
        raise DataError(
            "imagenet2012: augment='padded' is for the small datasets; use "
            "'original' (the original's Inception pipeline), 'crop_flip' or 'none'"
        )
    return datasources.load_imagenet(config)


def _raw_splits(config: DataConfig, spec: DatasetFacts, image_size: int):
    """((train, test), source) of an in-memory set, from its source's loader."""
    name = config.dataset
    if spec.kind != "builtin":  # --- data sources ---
        loaded = sources.loader(spec.kind)(spec, config)
        return (loaded.train, loaded.test), loaded.source
    if name == "synthetic":
        return datasources.synthetic(config, image_size * config.downsample), "synthetic"
    if name == "cifar10":
        return datasources.load_cifar10(config.data_dir)
    return datasources.load_idx(name, config.data_dir)


def _load_arrays(config: DataConfig, name: str, image_size: int):
    """An array dataset, checked and split: ({split: (images, labels)}, source, raw size)."""
    if config.augment == "crop_flip":
        raise DataError(
            f"{name}: augment='crop_flip' is for imagenet2012; use 'original', 'padded' or 'none'"
        )
    (train, test), source = _raw_splits(config, config.facts, image_size)
    if config.downsample > 1:
        train = (datafiles.downsample(train[0], config.downsample, name), train[1])
        test = (datafiles.downsample(test[0], config.downsample, name), test[1])
    raw_size = train[0].shape[1]
    if image_size > raw_size:
        raise DataError(
            f"{name}: image_size={image_size} is larger than the stored "
            f"{raw_size}x{raw_size} images; use --image_size <= {raw_size}"
        )
    num_train = len(train[1])
    validation = config.validation_examples
    if validation >= num_train:
        raise DataError(
            f"{name}: validation_examples={validation} leaves no training data "
            f"(the training split has {num_train}); use fewer"
        )
    arrays = {
        "train": (
            train[0][: num_train - validation],
            train[1][: num_train - validation],
        ),
        "validation": (
            train[0][num_train - validation :],
            train[1][num_train - validation :],
        ),
        "test": test,
    }
    return arrays, source, raw_size


def load(config: DataConfig) -> Data:
    """Finds, checks and loads the data named by config.

    Args:
      config: What to load.

    Returns:
      The `Data` with its splits.

    Raises:
      DataError: Data missing or corrupt (one line naming where nac looked and the fix),
        or image_size/validation_examples incompatible with the data.
    """
    name = config.dataset
    spec = config.facts
    image_size = config.image_size or spec.image_size
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    if name == "imagenet2012":
        source, tfds_source, counts = _load_imagenet(config)
        arrays = None
        raw_size = 0
    else:
        arrays, source, raw_size = _load_arrays(config, name, image_size)
        counts = {split: len(arrays[split][1]) for split in SPLITS}
        tfds_source = None
    info = DatasetInfo(
        name=name,
        num_classes=spec.num_classes + config.label_offset,
        channels=spec.channels,
        image_size=image_size,
        raw_size=raw_size,
        train_examples=counts["train"],
        validation_examples=counts["validation"],
        test_examples=counts["test"],
        source=source,
        class_names=spec.class_names,
    )
    _log.info("data: %s", info.describe())
    return Data(info, config, seed, arrays=arrays, tfds_source=tfds_source)
