"""Helpers shared by several test modules (`from helpers import ...`; tests/ is on sys.path)."""

import numpy as np

# Parameter counts of the paper's networks (Table 1) for the original configs in
# tests/fixtures/original_configs.
PAPER_PARAMS = {
    "construction/network.cons-exp-3.bc.json": 12_998_738,  # Envelope A
    "longruns/network.cons-exp-3-bc-longrun.json": 48_721_247,  # Constructed A
    "construction/network.construction-cifar10-topline.json": 17_125_834,  # Envelope B
    "longruns/network.generated-topline-cifar10.json": 39_556_426,  # Constructed B
}


def synthetic_data(image_size: int, train_examples: int, test_examples: int, validation_examples: int = 0):
    """The seeded synthetic data set at `image_size` (imports TensorFlow)."""
    from nac.data.pipelines import DataConfig, load

    config = DataConfig(
        dataset="synthetic",
        image_size=image_size,
        seed=0,
        validation_examples=validation_examples,
        synthetic_train_examples=train_examples,
        synthetic_test_examples=test_examples,
    )
    return load(config)


def arrays(dataset):
    """The (images, labels) NumPy arrays of a batched tf.data set of pairs."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def run_config(**flat):
    """A `RunConfig` from flat fields keyed by flag name (as in `run_config.json`)."""
    from nac.run.runconfig import RunConfig

    return RunConfig.from_flat(flat)


# -- generated image datasets (folder: and tfds: sources) ------------------------------------

COLOUR_CLASSES = ("blue", "green", "red")  # sorted: the label order of a folder


def png_bytes(image) -> bytes:
    """A PNG file of a uint8 [H, W] or [H, W, C] (C = 1, 3, 4) array (zlib, no TensorFlow)."""
    import struct
    import zlib

    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    height, width, channels = image.shape
    colour = {1: 0, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + image[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def colour_images(labels, size: int, seed: int) -> np.ndarray:
    """uint8 [N, size, size, 3]: class k's images are noisy with channel 2 - k bright (blue, green, red)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(70.0, 25.0, size=(len(labels), size, size, 3))
    for i, label in enumerate(labels):
        images[i, ..., 2 - label] += 130.0
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def stripe_images(labels, size: int, seed: int) -> np.ndarray:
    """uint8 [N, size, size, 1]: class 0 horizontal stripes, class 1 vertical, random phase, noise."""
    rng = np.random.default_rng(seed)
    grid = np.arange(size)
    out = np.empty((len(labels), size, size, 1), np.uint8)
    for i, label in enumerate(labels):
        wave = 128 + 80 * np.sin(np.pi * (grid + rng.integers(0, 4)) / 2)
        image = np.repeat(wave[:, None], size, 1) if label == 0 else np.repeat(wave[None, :], size, 0)
        out[i, ..., 0] = np.clip(image + rng.normal(0, 25, (size, size)), 0, 255)
    return out


def write_image_folder(
    root, per_class: int = 8, size: int = 8, test_per_class: int | None = 4, seed: int = 0
):
    """Writes `root/train/<colour>/*.png` (and `root/test/...` unless test_per_class is None)."""
    import pathlib

    root = pathlib.Path(root)
    splits = {"train": per_class} if test_per_class is None else {"train": per_class, "test": test_per_class}
    for s, (split, count) in enumerate(splits.items()):
        labels = np.repeat(np.arange(len(COLOUR_CLASSES)), count)
        images = colour_images(labels, size, seed + s)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / COLOUR_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:04d}.png").write_bytes(png_bytes(image))
    return root


def write_tfds_set(
    data_dir, name: str, splits: dict, size: int = 8, channels: int = 1, seed: int = 0, config=None
):
    """Writes a tfds image classification set of stripe (1 channel) or colour images to data_dir.

    Args:
      splits: Split name -> examples (labels alternate over the classes).
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    names = ["horizontal", "vertical"] if channels == 1 else list(COLOUR_CLASSES)
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(size, size, channels)),
            "label": tfds.features.ClassLabel(names=names),
        }
    )
    datasets = {}
    for s, (split, count) in enumerate(splits.items()):
        labels = np.arange(count) % len(names)
        make = stripe_images if channels == 1 else colour_images
        images = make(labels, size, seed + s)
        datasets[split] = tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": labels.astype(np.int64)}
        )
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version="1.0.0",
        features=features,
        split_datasets=datasets,
        config=config,
        data_dir=str(data_dir),
    )
    return data_dir


def assert_replays(run, tmp_path):
    """`nac.restructure` on each iteration's network.json and stats.json gives the next step's."""
    import json

    from nac.cli import restructure as restructure_cli

    for current, following in (("iter_0", "iter_1"), ("iter_1", "final")):
        out = tmp_path / f"{following}.json"
        code = restructure_cli.main(
            [
                "--config",
                str(run / "config.json"),
                "--arch",
                str(run / current / "network.json"),
                "--stats",
                str(run / current / "stats.json"),
                "--out",
                str(out),
            ]
        )
        assert code == 0
        assert json.loads(out.read_text()) == json.loads((run / following / "network.json").read_text())
