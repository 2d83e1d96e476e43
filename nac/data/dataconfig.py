"""What the input pipelines load: `DataConfig` (which data, how to preprocess it; validated on
creation) and `DatasetInfo` (what was loaded). Pure Python; `nac.data.pipelines` re-exports
both."""

from __future__ import annotations

import dataclasses
import os

from nac.spec import datasets
from nac.spec.checks import is_int
from nac.spec.choices import AUGMENTATIONS, DATASETS, DatasetFacts
from nac.spec.errors import ConfigError, DataError


def _check_int(name: str, value, minimum: int) -> None:
    if not is_int(value) or value < minimum:
        raise DataError(f"DataConfig.{name}={value!r} is not valid; use an integer >= {minimum}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data to load and how to preprocess it.

    Attributes:
      dataset: One of `DATASETS`, or a source's value (`tfds:...`, `folder:...`).
      data_dir: Folder holding the data files (see `nac.data.pipelines`), or None.
      image_size: The model's input size; None picks the dataset default (cifar10 28,
        the original's net A; imagenet2012 299; fashion_mnist/mnist 28; synthetic 16).
      augment: Training augmentation, one of `AUGMENTATIONS`.
      cache: Cache examples read through tfds in memory (in-memory sets ignore it).
      seed: Seed of shuffling and augmentation; None draws a random one at load time.
      validation_examples: Examples carved from the end of the unshuffled training
        split as a validation split; 0 means no validation split.
      synthetic_train_examples: Training examples of the synthetic set.
      synthetic_test_examples: Test examples of the synthetic set.
      shuffle_buffer: Shuffle buffer of streamed (tfds/ImageNet) data; in-memory sets
        are fully permuted every epoch.
      label_offset: Added to every label (ImageNet nets with 1001 classes use 1).
      downsample: Average-pool the stored images of the array datasets by this factor
        once at load time (`datafiles.downsample`); 1 keeps them as stored.
      train_split: The split trained on (tfds and folder sources).
      test_split: The split evaluated on (tfds and folder sources).
      validation_fraction: Without a test split, the fraction of the training split held
        out (with the seed) as the test split.
      facts: The dataset's facts (`nac.spec.datasets.resolve`); None resolves them here.
    """

    dataset: str
    data_dir: str | None = None
    image_size: int | None = None
    augment: str = "original"
    cache: bool = False
    seed: int | None = None
    validation_examples: int = 0
    synthetic_train_examples: int = DATASETS["synthetic"].train_examples
    synthetic_test_examples: int = 256
    shuffle_buffer: int = 10000
    label_offset: int = 0
    downsample: int = 1
    # --- data sources ---
    train_split: str = datasets.TRAIN_SPLIT
    test_split: str = datasets.TEST_SPLIT
    validation_fraction: float = 0.0
    facts: DatasetFacts | None = None

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not datasets.is_known(self.dataset):
            raise DataError(f"DataConfig.dataset={self.dataset!r} is not supported; {datasets.usage()}")
        if self.facts is None:
            request = datasets.DataRequest(
                data_dir=self.data_dir,
                train_split=self.train_split,
                test_split=self.test_split,
                validation_fraction=self.validation_fraction,
                seed=self.seed,
                image_size=self.image_size,
                downsample=self.downsample,
            )
            try:
                object.__setattr__(self, "facts", datasets.resolve(self.dataset, request))
            except ConfigError as e:
                raise DataError(str(e).replace("--dataset", "DataConfig.dataset", 1)) from None
        if self.data_dir is not None and not isinstance(self.data_dir, (str, os.PathLike)):
            raise DataError(f"DataConfig.data_dir={self.data_dir!r} is not valid; use a folder path or None")
        if self.image_size is not None:
            _check_int("image_size", self.image_size, 1)
        if self.augment not in AUGMENTATIONS:
            raise DataError(
                f"DataConfig.augment={self.augment!r} is not valid; use one of: {', '.join(AUGMENTATIONS)}"
            )
        if not isinstance(self.cache, bool):
            raise DataError(f"DataConfig.cache={self.cache!r} is not valid; use True or False")
        if self.seed is not None and (not is_int(self.seed) or not 0 <= self.seed < 2**63):
            raise DataError(
                f"DataConfig.seed={self.seed!r} is not valid; use None or an integer in [0, 2**63)"
            )
        _check_int("validation_examples", self.validation_examples, 0)
        _check_int("synthetic_train_examples", self.synthetic_train_examples, 1)
        _check_int("synthetic_test_examples", self.synthetic_test_examples, 1)
        _check_int("shuffle_buffer", self.shuffle_buffer, 1)
        _check_int("label_offset", self.label_offset, 0)
        _check_int("downsample", self.downsample, 1)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What was loaded.

    Attributes:
      name: The dataset name.
      num_classes: Classes the model must output (the dataset's classes plus
        `label_offset`).
      channels: Image channels (1 for (Fashion-)MNIST).
      image_size: The model's input size after cropping/resizing.
      raw_size: Stored image size before cropping (32 for cifar10, 28 for mnist);
        0 for ImageNet, whose JPEGs vary in size.
      train_examples: Training examples (after carving the validation split).
      validation_examples: Validation examples.
      test_examples: Test examples.
      source: Where the data came from: a path, "tfds:<name> (<dir>)" or "synthetic".
      class_names: The classes' names in label order, where the source has them.
    """

    name: str
    num_classes: int
    channels: int
    image_size: int
    raw_size: int
    train_examples: int
    validation_examples: int
    test_examples: int
    source: str
    class_names: tuple[str, ...] | None = None

    def describe(self) -> str:
        """One log line: what was loaded, its sizes and where from."""
        split = f"{self.train_examples:,} train"
        if self.validation_examples:
            split += f" + {self.validation_examples:,} validation"
        size = f"{self.raw_size}x{self.raw_size}" if self.raw_size else "variable size"
        if self.raw_size != self.image_size:
            size += f" -> {self.image_size}x{self.image_size}"
        return (
            f"{self.name}: {split}, {self.test_examples:,} test images, {size} x {self.channels} "
            f"channel(s), {self.num_classes} classes, from {self.source}"
        )
