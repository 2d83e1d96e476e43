"""Image preprocessing as pure TensorFlow ops (usable in tf.data, tf.function, SavedModels).

Training, for the small datasets, follows the original TF1 CIFAR-10 recipe (`augment_batch`):
``"original"``: random crop to ``image_size`` from the unpadded raw image, random horizontal
flip, random brightness (max delta 63 on the 0-255 scale), random contrast in [0.2, 1.8],
per-image standardisation; ``"padded"``: zero-pad 4 pixels, random crop, flip,
standardisation. Every image of a batch draws its own crop, flip, brightness and contrast
from stateless ops seeded by one seed, so a batch is a pure function of (pixels, seed).
ImageNet training (`imagenet_train`): the original's Inception pipeline (distorted
bounding-box crop with area [0.05, 1] and 100 attempts, a random resize method, flip, colour
distortion), or "crop_flip" (area [0.08, 1], 10 attempts, bilinear resize, flip), scaled to
[-1, 1]. Evaluation:
`central_crop` then standardisation, or for ImageNet `imagenet_eval` (central 87.5 %, resize,
scale to [-1, 1]).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from nac.spec import arrays as arrays_lib
from nac.spec.checks import is_int
from nac.spec.choices import DATASETS
from nac.spec.errors import DataError


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


@dataclasses.dataclass(frozen=True)
class ImagenetAugment:
    """An ImageNet training preprocessing: the distorted bounding-box crop's area range and
    attempts (aspect ratio in [0.75, 1.33], at least 10 % of the whole-image box covered),
    whether the resize method is drawn at random, and whether colours are distorted."""

    area_range: tuple[float, float]
    max_attempts: int
    random_resize: bool
    colour: bool


IMAGENET_AUGMENTATIONS = {
    # The original's (Inception's `image_processing.py`, `distort_image`); ImageNet has no
    # boxes in tensorflow-datasets, so the box is the whole image, as slim does without one.
    "original": ImagenetAugment((0.05, 1.0), 100, random_resize=True, colour=True),
    # nac's earlier pipeline: a lighter crop, bilinear resize, flip, no colour distortion.
    "crop_flip": ImagenetAugment((0.08, 1.0), 10, random_resize=False, colour=False),
}

# The original's four resize methods (TF1 `ResizeMethod` 0..3), picked by preprocessing thread.
_RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


def distorted_crop_window(image_shape: tf.Tensor, seed: tf.Tensor, area_range, max_attempts: int):
    """(offset_y, offset_x, height, width) of a random distorted crop of the whole image;
    the whole image when no attempt meets the constraints."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=(0.75, 1.33),
        area_range=area_range,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def _distort_colour(image: tf.Tensor, ordering: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The original's `distort_color` on a [0, 1] image: brightness, then saturation, hue,
    contrast (ordering 0) or contrast, saturation, hue (ordering 1); clipped to [0, 1]."""
    s = tf.random.experimental.stateless_split(seed, 4)

    def brightness(x):
        return tf.image.stateless_random_brightness(x, 32.0 / 255.0, s[0])

    def saturation(x):
        return tf.image.stateless_random_saturation(x, 0.5, 1.5, s[1])

    def hue(x):
        return tf.image.stateless_random_hue(x, 0.2, s[2])

    def contrast(x):
        return tf.image.stateless_random_contrast(x, 0.5, 1.5, s[3])

    image = brightness(image)
    image = tf.cond(
        tf.equal(ordering, 0),
        lambda: contrast(hue(saturation(image))),
        lambda: hue(saturation(contrast(image))),
    )
    return tf.clip_by_value(image, 0.0, 1.0)


def imagenet_train(encoded: tf.Tensor, image_size: int, seed: tf.Tensor, mode: str = "original") -> tf.Tensor:
    """ImageNet training preprocessing of one JPEG string, scaled to [-1, 1].

    `mode` is a key of `IMAGENET_AUGMENTATIONS`. "original": distorted crop (area [0.05, 1],
    100 attempts), resize by one of four methods drawn per image (the original's thread
    round robin; its colour ordering follows the same thread: method % 2), flip, colour
    distortion. "crop_flip": crop (area [0.08, 1], 10 attempts), bilinear resize, flip.
    """
    params = IMAGENET_AUGMENTATIONS[mode]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    window = distorted_crop_window(
        tf.image.extract_jpeg_shape(encoded), seeds[0], params.area_range, params.max_attempts
    )
    image = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    image = tf.cast(image, tf.float32) / 255.0
    size = [image_size, image_size]
    if params.random_resize:
        thread = tf.random.stateless_uniform([], seeds[1], 0, len(_RESIZE_METHODS), dtype=tf.int32)
        branches = [lambda m=m: tf.image.resize(image, size, method=m) for m in _RESIZE_METHODS]
        image = tf.switch_case(thread, branches)
    else:
        thread = tf.constant(0)
        image = tf.image.resize(image, size)
    image = tf.image.stateless_random_flip_left_right(image, seeds[2])
    if params.colour:
        image = _distort_colour(image, thread % 2, seeds[3])
    return tf.clip_by_value((image - 0.5) * 2.0, -1.0, 1.0)


def eval_preprocess(images, dataset: str, image_size: int) -> tf.Tensor:
    """Turns float pixels (0-255 scale) into the model's evaluation input.

    Pure TF ops: usable inside a `tf.function` and inside exported SavedModels.

    Args:
      images: [N, H, W, C] (or [H, W, C]) pixels on the 0-255 scale; cast to float32.
      dataset: The dataset name (one of `DATASETS`).
      image_size: The model's input size.

    Returns:
      float32 images [N, image_size, image_size, C]: for ImageNet the central 87.5 %
      resized to image_size and scaled to [-1, 1]; otherwise the central
      image_size x image_size crop (none if already that size), standardised per image
      (`tf.image.per_image_standardization`).

    Raises:
      DataError: Unknown dataset or image_size.
    """
    if dataset not in DATASETS and not arrays_lib.is_arrays(dataset):  # --- arrays ---
        raise DataError(
            f"eval_preprocess: dataset={dataset!r} is not supported; use one of: {', '.join(DATASETS)}"
        )
    if not is_int(image_size) or image_size < 1:
        raise DataError(f"eval_preprocess: image_size={image_size!r} must be >= 1")
    images = tf.cast(images, tf.float32)
    if dataset == "imagenet2012":
        return imagenet_eval(images, image_size)
    return tf.image.per_image_standardization(central_crop(images, image_size))
