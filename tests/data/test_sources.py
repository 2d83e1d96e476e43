"""The tfds:, folder: and arrays: loaders (nac.data.sources) through nac.data.pipelines."""

import numpy as np
import pytest
from helpers import COLOUR_CLASSES, colour_images, png_bytes, stripe_images, write_image_folder

from nac.data import pipelines
from nac.data.pipelines import DataConfig
from nac.spec.errors import DataError


def _rows(images):
    return sorted(image.tobytes() for image in images)


def test_folder_images_load_as_written_with_their_labels(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=4, size=6, test_per_class=2, seed=7)
    data = pipelines.load(DataConfig(f"folder:{root}", seed=0))
    info = data.info
    assert (info.num_classes, info.channels, info.image_size, info.raw_size) == (3, 3, 6, 6)
    assert (info.train_examples, info.test_examples) == (12, 6) and info.class_names == COLOUR_CLASSES
    images, labels = data.arrays("train")
    expected = colour_images(np.repeat(np.arange(3), 4), 6, 7)
    assert images.dtype == np.uint8 and np.array_equal(images, expected)  # sorted files: written order
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    batch, batch_labels = next(iter(data.train(5)))
    assert batch.shape == (5, 6, 6, 3) and batch_labels.shape == (5,)
    test = list(data.evaluation("test", 4))
    assert sum(len(y) for _, y in test) == 6 and test[0][0].shape[1:] == (6, 6, 3)


def test_folder_images_are_resized_and_greyscale_joins_colour(tmp_path):
    for split in ("train", "test"):
        for name, image in (
            ("grey", np.full((10, 14), 200, np.uint8)),
            ("rgb", np.zeros((7, 7, 3), np.uint8)),
        ):
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "0.png").write_bytes(png_bytes(image))
    data = pipelines.load(DataConfig(f"folder:{tmp_path}", image_size=4, seed=0))
    images, labels = data.arrays("test")
    assert images.shape == (2, 4, 4, 3) and labels.tolist() == [0, 1]
    assert np.all(images[0] == 200) and np.all(images[1] == 0)


def test_an_image_tensorflow_cannot_decode_is_named(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=1, size=4, test_per_class=1)
    good = png_bytes(np.zeros((4, 4, 3), np.uint8))
    (root / "test" / "red" / "broken.png").write_bytes(good[:33] + b"\x00" * 40)  # header intact
    with pytest.raises(DataError, match=r"cannot decode image .*test/red/broken.png"):
        pipelines.load(DataConfig(f"folder:{root}", seed=0))


def test_tfds_set_loads_its_splits_classes_and_pixels(tfds_dir):
    data = pipelines.load(DataConfig("tfds:stripes", data_dir=str(tfds_dir), seed=0))
    info = data.info
    assert (info.num_classes, info.channels, info.image_size, info.raw_size) == (2, 1, 8, 8)
    assert (info.train_examples, info.test_examples) == (120, 40)
    assert info.class_names == ("horizontal", "vertical") and info.source.startswith("tfds:stripes (")
    images, labels = data.arrays("test")
    written = stripe_images(np.arange(40) % 2, 8, 1)
    assert _rows(images) == _rows(written) and np.bincount(labels).tolist() == [20, 20]
    batch, _ = next(iter(data.train(10)))
    assert batch.shape == (10, 8, 8, 1)


def test_tfds_downsample_crop_and_held_out_test_split(tfds_dir):
    data = pipelines.load(
        DataConfig("tfds:stripes", data_dir=str(tfds_dir), downsample=2, image_size=4, seed=0)
    )
    assert data.arrays("train")[0].shape == (120, 4, 4, 1)
    data = pipelines.load(DataConfig("tfds:stripes", data_dir=str(tfds_dir), image_size=6, seed=0))
    assert next(iter(data.evaluation("test", 8)))[0].shape == (8, 6, 6, 1)
    with pytest.raises(DataError, match="--test_split: .*splits: train"):
        DataConfig("tfds:colours/small", data_dir=str(tfds_dir))
    config = DataConfig("tfds:colours/small", data_dir=str(tfds_dir), validation_fraction=0.25, seed=3)
    data = pipelines.load(config)
    assert (data.info.train_examples, data.info.test_examples, data.info.channels) == (45, 15, 3)
    train, test = data.arrays("train")[0], data.arrays("test")[0]
    assert not set(_rows(train)) & set(_rows(test))
    again = pipelines.load(config)
    assert np.array_equal(again.arrays("test")[0], test)


def test_folder_downsample_resizes_to_a_multiple_and_pools(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=2, size=7, test_per_class=1)
    data = pipelines.load(DataConfig(f"folder:{root}", image_size=3, downsample=2, seed=0))
    assert (data.info.raw_size, data.info.image_size) == (3, 3)  # stored after pooling 6x6 by 2
    assert data.arrays("train")[0].shape == (6, 3, 3, 3)
    data = pipelines.load(DataConfig(f"folder:{root}", downsample=2, seed=0))
    assert data.info.image_size == 3 and data.arrays("test")[0].shape == (3, 3, 3, 3)


@pytest.mark.parametrize("augment", ["padded", "none"])
def test_folder_sets_take_the_small_sets_augmentations(tmp_path, augment):
    root = write_image_folder(tmp_path / "set", per_class=2, size=6, test_per_class=1)
    data = pipelines.load(DataConfig(f"folder:{root}", augment=augment, seed=0))
    first, second = (next(iter(data.train(4)))[0].numpy() for _ in range(2))
    assert first.shape == (4, 6, 6, 3) and np.array_equal(first, second)  # seeded: repeatable
    with pytest.raises(DataError, match="crop_flip"):
        pipelines.load(DataConfig(f"folder:{root}", augment="crop_flip", seed=0))


def test_registered_arrays_load_through_their_registry_loader():
    from nac.spec import arrays as arrays_lib

    labels = np.arange(12) % 3
    train = (colour_images(labels, 4, 0), labels)
    test = (colour_images(labels[:6], 4, 1), labels[:6])
    value = arrays_lib.register(arrays_lib.ArraySource.from_arrays(train, test))
    try:
        data = pipelines.load(DataConfig(value, augment="none", validation_examples=3, seed=0))
    finally:
        arrays_lib.unregister(value)
    info = data.info
    assert (info.num_classes, info.channels, info.raw_size) == (3, 3, 4)
    assert (info.train_examples, info.validation_examples, info.test_examples) == (9, 3, 6)
    assert info.source.startswith("in-memory arrays (sha256 ")
    assert _rows(data.arrays("test")[0]) == _rows(test[0])
