"""Image preprocessing as pure TensorFlow ops (usable in tf.data, tf.function, SavedModels).

Training, for the small datasets, follows the original TF1 CIFAR-10 recipe (`augment_batch`):
``"original"``: random crop to ``image_size`` from the unpadded raw image, random horizontal
flip, random brightness (max delta 63 on the 0-255 scale), random contrast in [0.2, 1.8],
per-image standardisation; ``"padded"``: zero-pad 4 pixels, random crop, flip,
standardisation. Every image of a batch draws its own crop, flip, brightness and contrast
from stateless ops seeded by one seed, so a batch is a pure function of (pixels, seed).
ImageNet training (`imagenet_train`): Inception-style random distorted bounding-box crop
(area (0.08, 1), aspect (3/4, 4/3)), resize, flip, scale to [-1, 1]. Evaluation:
`central_crop` then standardisation, or for ImageNet `imagenet_eval` (central 87.5 %, resize,
scale to [-1, 1]).
"""

from __future__ import annotations

import tensorflow as tf


def central_crop(images: tf.Tensor, image_size: int) -> tf.Tensor:
    """Central crop of [..., H, W, C] images to image_size (offset (H - S) // 2)."""
    shape = tf.shape(images)
    top = (shape[-3] - image_size) // 2
    left = (shape[-2] - image_size) // 2
    return images[..., top : top + image_size, left : left + image_size, :]


def imagenet_eval(images: tf.Tensor, image_size: int) -> tf.Tensor:
    images = tf.image.central_crop(images, central_fraction=0.875)
    images = tf.image.resize(images, [image_size, image_size])
    return tf.clip_by_value(images / 127.5 - 1.0, -1.0, 1.0)


def random_crop(images: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Crops every image of a [B, H, W, C] batch at its own random offset."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([batch], seeds[0], 0, height - image_size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], 0, width - image_size + 1, dtype=tf.int32)
    offsets = tf.range(image_size)
    images = tf.gather(images, top[:, None] + offsets, axis=1, batch_dims=1)
    return tf.gather(images, left[:, None] + offsets, axis=2, batch_dims=1)


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def augment_batch(images: tf.Tensor, mode: str, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Training preprocessing ("original" or "padded") of a uint8 batch [B, H, W, C].

    Every image draws its own crop offset, flip, brightness delta and contrast factor
    from stateless ops seeded by `seed`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    raw = images.shape[1]
    if mode == "original":
        if raw != image_size:
            images = random_crop(images, image_size, seeds[0])
        images = random_flip(images, seeds[1])
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        delta = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], -63.0, 63.0)
        images = images + delta
        factor = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], 0.2, 1.8)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = (images - mean) * factor + mean
    elif mode == "padded":
        images = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
        images = random_crop(images, image_size, seeds[0])
        images = tf.cast(random_flip(images, seeds[1]), tf.float32)
    return tf.image.per_image_standardization(images)


def imagenet_train(encoded: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Inception-style training preprocessing of one JPEG string."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.image.extract_jpeg_shape(encoded),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seeds[0],
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    image = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    image = tf.image.resize(image, [image_size, image_size])
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)
