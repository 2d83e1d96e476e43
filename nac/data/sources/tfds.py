"""Loads a prepared tensorflow-datasets image classification set into memory.

The facts (`nac.spec.tfds_info`) name the version folder, the image and label features and
the splits; `tfds.builder_from_directory` reads it without the dataset's builder class (so a
set written with `tfds.dataset_builders.store_as_tfds_dataset` loads too). Square images of
one size are kept as stored (cropped like the built-in sets); others are resized to the
image size with bilinear interpolation and rounded back to uint8.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nac.data import datasources
from nac.data.sources import LoadedSplits, Split
from nac.spec import datasets
from nac.spec.choices import DatasetFacts
from nac.spec.errors import DataError

BATCH = 1024


def _prepare(image, size: int, channels: int, resize: bool):
    if image.shape[-1] is not None and image.shape[-1] != channels:
        image = image[..., :channels] if channels == 3 else tf.image.rgb_to_grayscale(image[..., :3])
    if resize:
        image = tf.image.resize(tf.cast(image, tf.float32), [size, size])
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image


def load(facts: DatasetFacts, config) -> LoadedSplits:
    """Reads the train and test splits named by `facts` (`nac.data.sources` loader)."""
    import tensorflow_datasets as tfds

    source = f"tfds:{config.dataset.split(':', 1)[1]} ({facts.location})"
    try:
        builder = tfds.builder_from_directory(facts.location)
    except Exception as e:  # tfds raises many kinds for a damaged folder
        raise DataError(
            f"{source}: tensorflow-datasets cannot open it ({e}); prepare the dataset again"
        ) from None
    image_key, label_key = facts.detail("image_key"), facts.detail("label_key")
    size, channels = facts.raw_size, facts.channels
    height, width, _ = (int(d) for d in facts.detail("stored").split("x"))
    resize = not height == width == size

    def read(split: str) -> Split:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        dataset = dataset.map(
            lambda e: (_prepare(e[image_key], size, channels, resize), tf.cast(e[label_key], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).batch(BATCH)
        images, labels = [], []
        try:
            for batch_images, batch_labels in dataset.as_numpy_iterator():
                images.append(batch_images)
                labels.append(batch_labels)
        except tf.errors.OpError as error:
            raise datasources.pipeline_error(error, config.dataset, source) from None
        if not labels:
            raise DataError(f"{source}: the {split} split holds no examples; prepare the dataset again")
        return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32)

    request = datasets.request_of(facts)
    train = read(request.train_split)
    test_split = facts.detail("test_split")
    if test_split:
        test = read(test_split)
    else:
        kept, held = datasets.held_out_indices(len(train[1]), request.validation_fraction, request.seed)
        test = (train[0][held], train[1][held])
        train = (train[0][kept], train[1][kept])
    for name, (_, labels) in (("train", train), ("test", test)):
        if labels.size and (labels.min() < 0 or labels.max() >= facts.num_classes):
            raise DataError(
                f"{source}: {name} labels outside [0, {facts.num_classes}); the label feature "
                f"{label_key!r} does not match its ClassLabel"
            )
    return LoadedSplits(train, test, source)
