"""The choices nac offers and what it knows about each dataset (pure Python, no TensorFlow).

The one place where the names of modes, stems, statistics, augmentations, strategies, branch
orders, cell implementations and training-recipe options are declared, and the dataset facts
(classes, channels, image sizes, training examples). The run configuration validates flags
against these before TensorFlow is imported; the TensorFlow modules (data, distribute, model,
ops) import them from here.
"""

from __future__ import annotations

import dataclasses

MODES = ("construct", "oneshot", "random")
STEMS = ("conv1x1", "conv3x3", "imagenet")
STATISTICS = ("l2", "variance", "taylor")  # what the featuremap taps accumulate
AUGMENTATIONS = ("original", "padded", "crop_flip", "none")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
BRANCH_ORDERS = ("conv_bn_relu", "conv_relu_bn")
CELL_IMPLS = ("per_cell", "per_branch")
LR_SCHEDULES = ("exponential", "cosine", "constant")
BN_EVAL_MODES = ("recalibrate", "moving", "batch_stats")


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What nac knows about a dataset before loading it."""

    channels: int
    num_classes: int
    image_size: int  # the default input size of the network
    train_examples: int
    raw_size: int | None = None  # stored size of the array datasets (--downsample divides it)
    # --- data sources --- (filled in by the sources of nac.spec.datasets; built-ins keep defaults)
    kind: str = "builtin"  # the source that loads it: builtin, tfds, folder, or a registered one
    test_examples: int | None = None
    class_names: tuple[str, ...] | None = None
    location: str = ""  # where the data was found (a folder, a prepared tfds directory)
    splits: tuple[tuple[str, int], ...] = ()  # every split found there and its examples
    details: tuple[tuple[str, str], ...] = ()  # what the source's loader needs (feature keys, ...)

    def detail(self, key: str, default: str | None = None) -> str | None:
        """A value of `details` by key."""
        return dict(self.details).get(key, default)


DATASETS = {
    "cifar10": DatasetFacts(3, 10, 28, 50_000, raw_size=32),
    "imagenet2012": DatasetFacts(3, 1000, 299, 1_281_167),  # JPEGs of varying size
    "fashion_mnist": DatasetFacts(1, 10, 28, 60_000, raw_size=28),
    "mnist": DatasetFacts(1, 10, 28, 60_000, raw_size=28),
    "synthetic": DatasetFacts(3, 10, 16, 512),  # drawn at --image_size
}
DATASET_ALIASES = {"imagenet": "imagenet2012"}
