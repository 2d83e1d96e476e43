"""Loads an image folder (`PATH/<split>/<class>/*.png|jpg`) into memory.

The file lists come from `nac.spec.imagefolder.scan` (the same listing, the same held-out
draw as the facts). Each file is decoded (`tf.io.decode_image`, alpha dropped, greyscale
expanded to colour when the set has colour), resized to the image size with bilinear
interpolation (antialiased) and rounded to uint8. A file TensorFlow cannot decode is named.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from nac.data.sources import LoadedSplits, Split
from nac.spec import datasets, imagefolder
from nac.spec.choices import DatasetFacts
from nac.spec.errors import DataError


def _decoder(size: int, channels: int):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    return decode


def _reason(error: Exception) -> str:
    """TensorFlow's own words about a failed decode, without the graph trace."""
    message = getattr(error, "message", "") or str(error)
    skip = ("Graph execution error", "Detected at node", "File ", "[[", "Stack trace", "<")
    lines = [" ".join(line.split()) for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(skip) and not line.endswith(":")]
    return re.sub(r"\s*\[\[.*$|\s*\[Op:.*$", "", (useful or [type(error).__name__])[-1])[:160]


def read_files(files, size: int, channels: int) -> Split:
    """Decodes `[(path, label)]` into (uint8 [N, size, size, channels], int32 [N])."""
    decode = _decoder(size, channels)
    images = np.empty((len(files), size, size, channels), np.uint8)
    for i, (path, _) in enumerate(files):
        try:
            images[i] = decode(tf.constant(path)).numpy()
        except (tf.errors.OpError, ValueError) as e:
            why = _reason(e)
            raise DataError(
                f"--dataset=folder: cannot decode image {path} ({why}); replace or remove the file"
            ) from None
    return images, np.array([label for _, label in files], np.int32)


def load(facts: DatasetFacts, config) -> LoadedSplits:
    """Reads the folder's train and test images (`nac.data.sources` loader)."""
    request = datasets.request_of(facts)
    contents = imagefolder.scan(facts.location, request)
    size = facts.raw_size
    train = read_files(contents.train, size, facts.channels)
    test = read_files(contents.test, size, facts.channels)
    return LoadedSplits(train, test, f"folder:{facts.location}")
