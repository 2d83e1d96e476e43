"""Tests of nac.data: file formats, tfds fallbacks, errors, preprocessing, determinism."""

import os
import pickle
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
from formats import (  # noqa: E402  (tests/formats.py)
    CIFAR_TEST,
    cifar_chw,
    cifar_expected,
    idx_arrays,
    idx_bytes,
    pickle_bytes,
    write_cifar_dir,
    write_idx,
    write_tar,
)

from nac.data import datafiles, datasources, preprocess
from nac.data import pipelines as data
from nac.data.pipelines import DataConfig, DataError


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """A folder with all four CIFAR-10 layouts, each in its own subfolder."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_dir(root / "bin" / "cifar-10-batches-bin")
    (root / "bintar").mkdir()
    write_tar(
        root / "bintar" / "cifar-10-binary.tar.gz",
        root / "bin" / "cifar-10-batches-bin",
        "cifar-10-batches-bin",
    )
    write_cifar_dir(root / "py" / "cifar-10-batches-py", python=True)
    (root / "pytar").mkdir()
    write_tar(
        root / "pytar" / "cifar-10-python.tar.gz",
        root / "py" / "cifar-10-batches-py",
        "cifar-10-batches-py",
    )
    return root


@pytest.fixture(scope="module")
def cifar_data(cifar_root):
    return data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), seed=3))


@pytest.fixture(scope="module")
def synthetic():
    return data.load(DataConfig("synthetic", seed=7))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty default tfds folder."""
    monkeypatch.setattr(datasources, "online", lambda *args, **kwargs: False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_default"))


def error_text(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, "DataError messages are one line"
    return text


# --------------------------------------------------------------------------------------
# Local file formats.


@pytest.mark.parametrize("subdir", ["bin", "bin/cifar-10-batches-bin", "bintar", "py", "pytar"])
def test_cifar10_layouts_load_exact_hwc_images(cifar_root, subdir):
    loaded = data.load(DataConfig("cifar10", data_dir=str(cifar_root / subdir)))
    (train_x, train_y), (test_x, test_y) = cifar_expected()
    images, labels = loaded.arrays("train")
    np.testing.assert_array_equal(images, train_x)
    np.testing.assert_array_equal(labels, train_y)
    images, labels = loaded.arrays("test")
    np.testing.assert_array_equal(images, test_x)
    np.testing.assert_array_equal(labels, test_y)
    assert images.shape[1:] == (32, 32, 3)
    info = loaded.info
    assert (info.num_classes, info.channels, info.raw_size, info.image_size) == (
        10,
        3,
        32,
        28,
    )
    assert (info.train_examples, info.test_examples) == (15, CIFAR_TEST)
    assert str(cifar_root / subdir) in info.source


def test_cifar10_in_tfds_manual_dir(tmp_path):
    write_cifar_dir(tmp_path / "downloads" / "manual" / "cifar-10-batches-bin")
    loaded = data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    assert loaded.info.train_examples == 15
    assert "downloads/manual" in loaded.info.source


@pytest.mark.parametrize("compressed", [True, False])
def test_idx_files_load_exact_images(tmp_path, compressed):
    (train_x, train_y), (test_x, test_y) = write_idx(tmp_path, compressed)
    loaded = data.load(DataConfig("mnist", data_dir=str(tmp_path)))
    images, labels = loaded.arrays("train")
    np.testing.assert_array_equal(images, train_x[..., None])
    np.testing.assert_array_equal(labels, train_y)
    images, labels = loaded.arrays("test")
    np.testing.assert_array_equal(images, test_x[..., None])
    np.testing.assert_array_equal(labels, test_y)
    assert loaded.info.channels == 1 and loaded.info.raw_size == 28
    batch_images, batch_labels = next(iter(loaded.train(4)))
    assert batch_images.shape == (4, 28, 28, 1)
    assert batch_labels.dtype == tf.int32


def test_fashion_mnist_subfolder_of_data_dir(tmp_path):
    write_idx(tmp_path / "fashion-mnist")
    loaded = data.load(DataConfig("fashion_mnist", data_dir=str(tmp_path)))
    assert loaded.info.source == str(tmp_path / "fashion-mnist")
    assert loaded.info.train_examples == 6


def test_debian_fashion_mnist():
    if not os.path.isdir(datafiles.DEBIAN_FASHION_MNIST):
        pytest.skip(f"{datafiles.DEBIAN_FASHION_MNIST} is absent")
    loaded = data.load(DataConfig("fashion_mnist", seed=0))
    info = loaded.info
    assert (info.train_examples, info.test_examples) == (60000, 10000)
    assert (info.channels, info.num_classes, info.image_size) == (1, 10, 28)
    assert info.source == datafiles.DEBIAN_FASHION_MNIST
    labels = loaded.arrays("train")[1]
    assert set(np.unique(labels)) == set(range(10))
    images, batch_labels = next(iter(loaded.train(50)))
    assert images.shape == (50, 28, 28, 1)
    assert 0 <= int(tf.reduce_min(batch_labels)) <= int(tf.reduce_max(batch_labels)) < 10


# --------------------------------------------------------------------------------------
# tensorflow-datasets paths (mocked: no files, no network).


@pytest.mark.parametrize(("name", "raw", "channels"), [("cifar10", 32, 3), ("mnist", 28, 1)])
def test_tfds_fallback_small_sets(tmp_path, monkeypatch, name, raw, channels):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(datasources, "online", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=12):
        loaded = data.load(DataConfig(name, data_dir=str(tmp_path), seed=1))
    assert loaded.info.source.startswith(f"tfds:{name}")
    assert loaded.info.raw_size == raw and loaded.info.channels == channels
    assert loaded.info.train_examples == 12
    images = loaded.arrays("train")[0]
    assert images.dtype == np.uint8 and images.shape == (12, raw, raw, channels)
    batch, batch_labels = next(iter(loaded.train(4)))
    assert batch.shape == (4, 28, 28, channels) and batch.dtype == tf.float32
    assert batch_labels.dtype == tf.int32


def test_tfds_imagenet_from_manual_files(tmp_path):
    import tensorflow_datasets as tfds

    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (tmp_path / name).write_bytes(b"")
    config = DataConfig(
        "imagenet2012",
        data_dir=str(tmp_path),
        image_size=24,
        seed=5,
        label_offset=1,
        validation_examples=4,
        cache=True,
    )
    with tfds.testing.mock_data(num_examples=10):
        loaded = data.load(config)
        assert loaded.info.num_classes == 1001 and loaded.info.raw_size == 0
        assert (loaded.info.train_examples, loaded.info.validation_examples) == (6, 4)
        images, labels = next(iter(loaded.train(4)))
        again, _ = next(iter(loaded.train(4)))
        evaluated = list(loaded.evaluation("test", 4))
    assert images.shape == (4, 24, 24, 3) and images.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(images)) < float(tf.reduce_max(images)) <= 1.0
    assert 1 <= int(tf.reduce_min(labels)) and int(tf.reduce_max(labels)) <= 1000
    np.testing.assert_array_equal(images.numpy(), again.numpy())
    assert [len(b[1]) for b in evaluated] == [4, 4, 2]


# --------------------------------------------------------------------------------------
# Missing and corrupt data.


def test_missing_cifar10_offline_fails_fast_with_fix(tmp_path, offline):
    start = time.monotonic()
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert time.monotonic() - start < 30
    assert str(tmp_path) in text and "cifar-10-binary.tar.gz" in text
    assert "offline" in text and "--data_dir" in text and datafiles.CIFAR10_URL in text


def test_missing_fashion_mnist_names_debian_package(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(datasources, "DEBIAN_FASHION_MNIST", str(tmp_path / "not-installed"))
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("fashion_mnist", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert str(tmp_path / "not-installed") in text and str(tmp_path) in text
    assert "sudo apt-get install dataset-fashion-mnist" in text
    assert "train-images-idx3-ubyte.gz" in text and "offline" in text


def test_missing_imagenet_names_the_steps(tmp_path):
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("imagenet2012", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert "ILSVRC2012_img_train.tar" in text and "ILSVRC2012_img_val.tar" in text
    assert "image-net.org" in text and str(tmp_path / "downloads" / "manual") in text


def test_imagenet_refuses_padded_augmentation(tmp_path):
    with pytest.raises(DataError, match="augment='padded' is for the small datasets"):
        data.load(DataConfig("imagenet2012", data_dir=str(tmp_path), augment="padded"))


def test_online_check_is_quick_when_unreachable():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    assert not datasources.online(hosts=(("127.0.0.1", port),), timeout=1.0)
    assert time.monotonic() - start < 1.5


def test_truncated_cifar_binary(tmp_path):
    directory = tmp_path / "cifar-10-batches-bin"
    write_cifar_dir(directory)
    path = directory / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert str(path) in text and "3073-byte records" in text and "truncated" in text


def test_incomplete_cifar_dir(tmp_path):
    directory = tmp_path / "cifar-10-batches-bin"
    write_cifar_dir(directory)
    (directory / "test_batch.bin").unlink()
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    assert "lacks test_batch.bin" in error_text(excinfo)


def test_corrupt_cifar_archive(tmp_path, cifar_root):
    content = (cifar_root / "bintar" / "cifar-10-binary.tar.gz").read_bytes()
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert str(path) in text and "truncated or corrupt" in text


def test_cifar_pickle_with_code_is_refused(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(directory, python=True)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (directory / "data_batch_2").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    text = error_text(excinfo)
    assert "data_batch_2" in text and "not a CIFAR-10 Python batch" in text


def test_cifar_pickle_with_wrong_shape(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(directory, python=True)
    pixels, labels = cifar_chw(2, 0)
    bad = pickle_bytes(pixels.reshape(2, -1)[:, :100], labels)
    (directory / "test_batch").write_bytes(bad)
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("cifar10", data_dir=str(tmp_path)))
    assert "test_batch" in error_text(excinfo) and "[N, 3072]" in str(excinfo.value)


def _corrupt_idx(directory, name, content):
    (directory / name).write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("mnist", data_dir=str(directory)))
    text = error_text(excinfo)
    assert str(directory / name) in text
    return text


def test_idx_wrong_magic(tmp_path):
    write_idx(tmp_path, compressed=False)
    images, _ = idx_arrays(6, 0)
    text = _corrupt_idx(tmp_path, "train-images-idx3-ubyte", idx_bytes(images, 2049))
    assert "magic number 2049, expected 2051" in text


def test_idx_wrong_count(tmp_path):
    write_idx(tmp_path, compressed=False)
    content = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    text = _corrupt_idx(tmp_path, "t10k-images-idx3-ubyte", content[:-5])
    assert "header says 3 images" in text and "truncated" in text


def test_idx_bad_gzip(tmp_path):
    write_idx(tmp_path)
    content = (tmp_path / "train-labels-idx1-ubyte.gz").read_bytes()
    text = _corrupt_idx(tmp_path, "train-labels-idx1-ubyte.gz", content[:-6])
    assert "truncated or corrupt" in text


def test_idx_not_gzip(tmp_path):
    write_idx(tmp_path)
    text = _corrupt_idx(tmp_path, "t10k-labels-idx1-ubyte.gz", b"hello, not gzip")
    assert "cannot read" in text


def test_idx_count_mismatch_and_partial_set(tmp_path):
    write_idx(tmp_path, compressed=False)
    _, labels = idx_arrays(5, 0)
    text = _corrupt_idx(tmp_path, "train-labels-idx1-ubyte", idx_bytes(labels, 2049))
    assert "holds 6 images but" in text
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as excinfo:
        data.load(DataConfig("mnist", data_dir=str(tmp_path)))
    assert "lacks train-labels-idx1-ubyte.gz" in error_text(excinfo)


@pytest.mark.parametrize(
    ("kwargs", "part"),
    [
        ({"dataset": "cifar"}, "DataConfig.dataset='cifar'"),
        ({"dataset": "mnist", "augment": "fancy"}, "original, padded, crop_flip, none"),
        ({"dataset": "mnist", "image_size": 0}, "DataConfig.image_size=0"),
        ({"dataset": "mnist", "seed": -1}, "DataConfig.seed=-1"),
        ({"dataset": "mnist", "validation_examples": 1.5}, "validation_examples"),
        ({"dataset": "mnist", "cache": "yes"}, "DataConfig.cache"),
        ({"dataset": "mnist", "shuffle_buffer": 0}, "DataConfig.shuffle_buffer=0"),
        ({"dataset": "mnist", "label_offset": True}, "DataConfig.label_offset"),
    ],
)
def test_config_validation(kwargs, part):
    with pytest.raises(DataError) as excinfo:
        DataConfig(**kwargs)
    assert part in error_text(excinfo)


def test_image_size_and_validation_larger_than_data(cifar_root):
    with pytest.raises(DataError, match="image_size=40 is larger than the stored 32x32"):
        data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), image_size=40))
    with pytest.raises(DataError, match="validation_examples=15 leaves no training"):
        data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), validation_examples=15))


def test_bad_split_and_batch(synthetic):
    with pytest.raises(DataError, match="has no validation split"):
        synthetic.evaluation("validation", 10)
    with pytest.raises(DataError, match="split='dev'"):
        synthetic.evaluation("dev", 10)
    with pytest.raises(DataError, match="global_batch_size=0"):
        synthetic.train(0)


# --------------------------------------------------------------------------------------
# Preprocessing.


def _standardise(images: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, images.ndim))
    mean = images.mean(axis=axes, keepdims=True)
    std = images.std(axis=axes, keepdims=True)
    return (images - mean) / np.maximum(std, 1 / np.sqrt(images[0].size))


def test_eval_preprocess_central_crop_and_standardisation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 32, 32, 3)).astype(np.float32)
    result = preprocess.eval_preprocess(images, "cifar10", 28).numpy()
    np.testing.assert_allclose(result, _standardise(images[:, 2:30, 2:30, :]), rtol=1e-4, atol=1e-4)
    same = preprocess.eval_preprocess(images, "cifar10", 32).numpy()
    np.testing.assert_allclose(same, _standardise(images), rtol=1e-4, atol=1e-4)


def test_eval_preprocess_traces_in_tf_function():
    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    def serve(images):
        return preprocess.eval_preprocess(images, "cifar10", 26)

    out = serve(tf.random.uniform([2, 32, 32, 3], 0, 255))
    assert out.shape == (2, 26, 26, 3)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def serve_imagenet(images):
        return preprocess.eval_preprocess(images, "imagenet2012", 20)

    out = serve_imagenet(tf.fill([1, 50, 40, 3], 255.0))
    assert out.shape == (1, 20, 20, 3)
    np.testing.assert_allclose(out.numpy(), 1.0)
    with pytest.raises(DataError, match="dataset='svhn'"):
        preprocess.eval_preprocess(out, "svhn", 20)


@pytest.mark.parametrize("augment", ["original", "padded", "none"])
def test_train_batches_are_standardised(cifar_root, augment):
    loaded = data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), augment=augment, seed=1))
    images, labels = next(iter(loaded.train(8)))
    assert images.shape == (8, 28, 28, 3) and images.dtype == tf.float32
    assert labels.shape == (8,) and labels.dtype == tf.int32
    flat = images.numpy().reshape(8, -1)
    np.testing.assert_allclose(flat.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(flat.std(1), 1, atol=1e-3)


def test_augment_none_equals_eval_preprocessing(synthetic):
    train_images = synthetic.arrays("train")[0].astype(np.float32)
    expected = preprocess.eval_preprocess(train_images, "synthetic", 16).numpy()
    loaded = data.load(DataConfig("synthetic", augment="none", seed=7))
    images, _ = next(iter(loaded.train(16)))
    for image in images.numpy():
        distance = np.abs(expected - image).reshape(len(expected), -1).max(1)
        assert distance.min() < 1e-4


def test_random_crop_windows_and_per_image_randomness():
    image = np.arange(10 * 10, dtype=np.uint8).reshape(1, 10, 10, 1)
    batch = tf.constant(np.repeat(image, 32, axis=0))
    crops = preprocess.random_crop(batch, 6, tf.constant([1, 2], tf.int64)).numpy()
    offsets = set()
    for crop in crops:
        top, left = divmod(int(crop[0, 0, 0]), 10)
        np.testing.assert_array_equal(crop, image[0, top : top + 6, left : left + 6])
        offsets.add((top, left))
    assert len(offsets) > 5
    augmented = preprocess.augment_batch(batch, "original", 6, tf.constant([3, 4], tf.int64))
    flat = augmented.numpy().reshape(32, -1)
    assert len({row.tobytes() for row in flat}) == 32


def test_padded_crops_contain_padding_sometimes():
    batch = tf.fill([64, 8, 8, 1], tf.constant(200, tf.uint8))
    augmented = preprocess.augment_batch(batch, "padded", 8, tf.constant([0, 9], tf.int64))
    # A crop of the padded image that includes zeros is not constant after
    # standardisation; a crop without padding is (all zeros after standardisation).
    spread = tf.reduce_max(augmented, [1, 2, 3]) - tf.reduce_min(augmented, [1, 2, 3])
    assert 0 < int(tf.math.count_nonzero(spread > 0)) < 64


def test_label_offset_and_options(cifar_root):
    loaded = data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), label_offset=1))
    assert loaded.info.num_classes == 11
    _, labels = next(iter(loaded.evaluation("test", CIFAR_TEST)))
    np.testing.assert_array_equal(labels.numpy(), cifar_expected()[1][1] + 1)
    for dataset in (loaded.train(4), loaded.evaluation("train", 4)):
        assert (
            dataset.options().experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.DATA
        )


def test_evaluation_is_one_ordered_pass(cifar_data):
    batches = list(cifar_data.evaluation("train", 4))
    assert [len(b[1]) for b in batches] == [4, 4, 4, 3]
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(labels, cifar_expected()[0][1])


# --------------------------------------------------------------------------------------
# Determinism, epochs, resume, distribution.


def _batches(dataset, count):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def test_same_seed_same_batches_different_seed_differs(cifar_root):
    def first(seed):
        loaded = data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), seed=seed))
        return _batches(loaded.train(4), 3)

    one, two, other = first(11), first(11), first(12)
    for (x1, y1), (x2, y2) in zip(one, two):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(one, other))


def test_epochs_are_permutations_each_reshuffled(synthetic):
    # 512 examples, batch 64: epoch boundaries at batches 8, 16.
    stream = _batches(synthetic.train(64), 20)
    labels = synthetic.arrays("train")[1]
    first_epoch = np.sort(np.concatenate([y for _, y in stream[:8]]))
    np.testing.assert_array_equal(first_epoch, np.sort(labels))
    epoch_order = [np.concatenate([y for _, y in stream[8 * e : 8 * e + 8]]) for e in (0, 1)]
    assert not np.array_equal(epoch_order[0], epoch_order[1])
    # batch 50 over 512 examples: batch 10 spans the epoch boundary (examples 500-549)
    odd = np.concatenate([y for _, y in _batches(synthetic.train(50), 11)])
    np.testing.assert_array_equal(np.sort(odd[:512]), np.sort(labels))


def test_array_training_pipeline_is_not_autotuned(synthetic):
    """The array datasets' training pipeline runs with fixed parallelism and tf.data's
    autotuning off: deleting a long-running autotuned iterator waited for a pipeline thread
    (after the quickstart's final training, docs/quickstart.md);
    the evaluation pipelines, read to their end, keep the defaults."""
    assert synthetic.train(64).options().autotune.enabled is False
    assert synthetic.evaluation("test", 64).options().autotune.enabled is not False


def test_validation_split_is_carved_from_the_end(cifar_root):
    loaded = data.load(DataConfig("cifar10", data_dir=str(cifar_root / "bin"), validation_examples=4))
    info = loaded.info
    assert (info.train_examples, info.validation_examples, info.test_examples) == (
        11,
        4,
        CIFAR_TEST,
    )
    (train_x, train_y), _ = cifar_expected()
    np.testing.assert_array_equal(loaded.arrays("validation")[0], train_x[-4:])
    np.testing.assert_array_equal(loaded.arrays("train")[1], train_y[:-4])
    _, labels = next(iter(loaded.evaluation("validation", 10)))
    np.testing.assert_array_equal(labels.numpy(), train_y[-4:])


def test_distributed_over_two_replicas(synthetic):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = strategy.experimental_distribute_dataset(synthetic.train(8))
    per_replica_images, _ = next(iter(dataset))
    shapes = [t.shape for t in strategy.experimental_local_results(per_replica_images)]
    assert shapes == [(4, 16, 16, 3), (4, 16, 16, 3)]


# --------------------------------------------------------------------------------------
# Synthetic set.


def test_synthetic_shapes_classes_and_reproducibility(synthetic):
    info = synthetic.info
    assert (info.num_classes, info.channels, info.image_size, info.raw_size) == (
        10,
        3,
        16,
        16,
    )
    assert (info.train_examples, info.test_examples) == (512, 256)
    images, labels = synthetic.arrays("train")
    assert images.dtype == np.uint8 and images.shape == (512, 16, 16, 3)
    assert set(np.unique(labels)) == set(range(10))
    again = data.load(DataConfig("synthetic", seed=99, synthetic_train_examples=512))
    np.testing.assert_array_equal(again.arrays("train")[0], images)
    bigger = data.load(DataConfig("synthetic", image_size=12, synthetic_test_examples=30))
    assert bigger.arrays("test")[0].shape == (30, 12, 12, 3)


def test_synthetic_classes_are_separable(synthetic):
    """Nearest class mean of the standardised images: a stand-in for a small CNN."""

    def features(split):
        images, labels = synthetic.arrays(split)
        standard = preprocess.eval_preprocess(images, "synthetic", 16).numpy()
        return standard.reshape(len(labels), -1), labels

    train_x, train_y = features("train")
    test_x, test_y = features("test")
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(10)])
    colours = [c.reshape(16, 16, 3).mean((0, 1)) for c in centroids]
    assert len({tuple(np.round(c, 2)) for c in colours}) == 10
    test_colour = test_x.reshape(-1, 16, 16, 3).mean((1, 2))
    guess = np.argmin(((test_colour[:, None, :] - np.stack(colours)[None]) ** 2).sum(-1), axis=1)
    assert (guess == test_y).mean() > 0.9


# --------------------------------------------------------------------------------------
# ImageNet training preprocessing: the original's Inception pipeline, or crop_flip.


def test_imagenet_distorted_crop_honours_area_range_and_attempts():
    from nac.data import preprocess

    original = preprocess.IMAGENET_AUGMENTATIONS["original"]
    light = preprocess.IMAGENET_AUGMENTATIONS["crop_flip"]
    assert (original.area_range, original.max_attempts) == ((0.05, 1.0), 100)
    assert (light.area_range, light.max_attempts) == ((0.08, 1.0), 10)
    shape = tf.constant([40, 40, 3])

    def areas(area_range, attempts, n=80):
        windows = [
            preprocess.distorted_crop_window(shape, tf.constant([i, 3]), area_range, attempts).numpy()
            for i in range(n)
        ]
        return np.array([h * w / 1600 for _, _, h, w in windows])

    # The box is the whole image and a crop must cover 10 % of it (min_object_covered), so
    # no crop is below 0.1 of the image with either preset's lower bound (0.05 or 0.08).
    for preset in (original, light):
        sampled = areas(preset.area_range, preset.max_attempts)
        assert 0.1 <= sampled.min() < 0.2 and sampled.max() <= 1
    # The area range is honoured: crops stay inside it, except the whole-image fallback.
    upper = areas((0.2, 0.5), 100)
    assert np.all((upper == 1.0) | ((upper >= 0.2) & (upper <= 0.5))) and np.mean(upper == 1.0) < 0.05
    # So are the attempts: on a hard range one attempt often fails (whole image), 100 rarely.
    hard = (0.5, 0.51)
    fallback_1 = np.mean(areas(hard, 1) == 1.0)
    fallback_100 = np.mean(areas(hard, 100) == 1.0)
    assert fallback_1 > 0.3 and fallback_100 < fallback_1 / 3


def test_imagenet_train_colour_distortion_and_the_crop_flip_option():
    from nac.data import preprocess

    gray = tf.io.encode_jpeg(tf.fill([30, 40, 3], tf.constant(100, tf.uint8)), quality=100)
    want = (100 / 255 - 0.5) * 2
    for i in range(4):
        light = preprocess.imagenet_train(gray, 12, tf.constant([i, 1]), "crop_flip").numpy()
        assert light.shape == (12, 12, 3)
        np.testing.assert_allclose(light, want, atol=2e-2)  # crop, resize and flip keep a flat image
    shifts = [
        float(np.mean(preprocess.imagenet_train(gray, 12, tf.constant([i, 1])).numpy()) - want)
        for i in range(8)
    ]
    assert max(abs(s) for s in shifts) > 0.05  # the original's brightness distortion (up to 2 x 32/255)
    assert all(abs(s) <= 2 * 32 / 255 + 2e-2 for s in shifts)
    photo = tf.io.encode_jpeg(tf.cast(tf.random.stateless_uniform([30, 40, 3], [1, 2], 0, 255), tf.uint8))
    out = preprocess.imagenet_train(photo, 12, tf.constant([5, 5])).numpy()
    assert out.shape == (12, 12, 3) and -1 <= out.min() and out.max() <= 1
    np.testing.assert_array_equal(out, preprocess.imagenet_train(photo, 12, tf.constant([5, 5])).numpy())


def test_downsample_average_pools_with_rounding():
    images = np.array([[[0, 1, 10, 10], [2, 2, 10, 11], [255, 255, 0, 0], [255, 254, 0, 1]]], np.uint8)
    out = datafiles.downsample(images, 2)
    # (0+1+2+2)/4 = 1.25 -> 1; (10+10+10+11)/4 = 10.25 -> 10; 1019/4 = 254.75 -> 255; 0.25 -> 0
    np.testing.assert_array_equal(out, [[[1, 10], [255, 0]]])
    assert out.dtype == np.uint8
    with pytest.raises(DataError, match="downsample=3 does not divide its 4x4"):
        datafiles.downsample(images, 3)


def test_idx_files_downsampled_at_load(tmp_path):
    (train_x, _), _ = write_idx(tmp_path)
    loaded = data.load(DataConfig("mnist", data_dir=str(tmp_path), image_size=14, downsample=2))
    images, _ = loaded.arrays("train")
    np.testing.assert_array_equal(images, datafiles.downsample(train_x[..., None], 2))
    assert loaded.info.raw_size == 14 and loaded.info.image_size == 14
    assert next(iter(loaded.train(2)))[0].shape == (2, 14, 14, 1)
    with pytest.raises(DataError, match="image_size=28 is larger than the stored 14x14"):
        data.load(DataConfig("mnist", data_dir=str(tmp_path), image_size=28, downsample=2))


def test_the_loaded_line_says_sizes_and_source():
    from nac.data.dataconfig import DatasetInfo

    info = DatasetInfo("fashion_mnist", 10, 1, 14, 28, 58000, 2000, 10000, "/data/fm")
    assert info.describe() == (
        "fashion_mnist: 58,000 train + 2,000 validation, 10,000 test images, 28x28 -> 14x14 x 1 "
        "channel(s), 10 classes, from /data/fm"
    )
    jpegs = DatasetInfo("imagenet", 1000, 3, 224, 0, 100, 0, 50, "/data/in").describe()
    assert "100 train, 50 test images, variable size -> 224x224 x 3" in jpegs
