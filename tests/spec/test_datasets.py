"""Dataset sources' facts (nac.spec.datasets, imagefolder, tfds_info): found without TensorFlow."""

import json

import numpy as np
import pytest
from helpers import COLOUR_CLASSES, png_bytes, write_image_folder

from nac.spec import datasets, imagefolder, tfds_info
from nac.spec.errors import ConfigError


def test_builtin_names_aliases_and_unknown_values():
    assert datasets.resolve("cifar10").num_classes == 10
    assert datasets.resolve("imagenet").num_classes == 1000
    assert datasets.split_value("tfds:mnist/x") == ("tfds", "mnist/x")
    assert datasets.split_value("cifar10") == (None, "cifar10")
    for value in ("svhn", "nope:x", "tfds:", "folder:"):
        with pytest.raises(ConfigError, match="--dataset") as e:
            datasets.resolve(value)
        assert "\n" not in str(e.value)


def test_a_registered_source_is_resolved_by_its_prefix():
    facts = datasets.resolve("cifar10")
    datasets.register("probe", lambda rest, request: facts if rest == "x" else None)
    assert datasets.resolve("probe:x") is facts and datasets.is_known("probe:y")


def test_folder_facts_classes_counts_channels_and_size(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=3, size=6, test_per_class=2)
    facts = datasets.resolve(f"folder:{root}")
    assert facts.kind == "folder" and facts.class_names == COLOUR_CLASSES
    assert (facts.num_classes, facts.channels, facts.image_size) == (3, 3, 6)
    assert (facts.train_examples, facts.test_examples) == (9, 6)
    assert datasets.resolve(f"folder:{root}", datasets.DataRequest(image_size=4)).raw_size == 4


def test_folder_of_greyscale_images_has_one_channel_and_a_colour_one_makes_three(tmp_path):
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "0.png").write_bytes(png_bytes(np.zeros((5, 7), np.uint8)))
    facts = datasets.resolve(f"folder:{tmp_path}")
    assert (facts.channels, facts.image_size) == (1, 5)
    (tmp_path / "test" / "b" / "1.png").write_bytes(png_bytes(np.zeros((5, 5, 4), np.uint8)))
    assert datasets.resolve(f"folder:{tmp_path}").channels == 3


def test_jpeg_headers_are_read(tmp_path):
    import tensorflow as tf

    path = tmp_path / "x.jpg"
    path.write_bytes(tf.io.encode_jpeg(np.zeros((9, 4, 3), np.uint8)).numpy())
    assert imagefolder.read_header(str(path)) == imagefolder.ImageHeader("jpeg", 9, 4, 3)
    path.write_bytes(tf.io.encode_jpeg(np.zeros((3, 5, 1), np.uint8)).numpy())
    assert imagefolder.read_header(str(path)).channels == 1


def test_without_a_test_folder_the_fraction_is_held_out_with_the_seed(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=10, size=4, test_per_class=None)
    with pytest.raises(ConfigError, match=r"--test_split: .*splits: train.*--validation_fraction"):
        datasets.resolve(f"folder:{root}")
    request = datasets.DataRequest(validation_fraction=0.2, seed=4)
    facts = datasets.resolve(f"folder:{root}", request)
    assert (facts.train_examples, facts.test_examples) == (24, 6) and facts.detail("test_split") == ""
    a = imagefolder.scan(str(root), request)
    b = imagefolder.scan(str(root), datasets.DataRequest(validation_fraction=0.2, seed=5))
    assert a == imagefolder.scan(str(root), request) and a.test != b.test
    assert not set(a.test) & set(a.train) and len(set(a.test) | set(a.train)) == 30
    assert datasets.request_of(facts) == request


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda r: (r / "train").mkdir(parents=True), "has no class subfolders"),
        (lambda r: (r / "train" / "a").mkdir(parents=True), "holds no images"),
        (
            lambda r: _write(r / "train" / "red" / "bad.png", b"not an image"),
            "cannot read image .*red/bad.png",
        ),
        (
            lambda r: _write(r / "test" / "red" / "cut.png", png_bytes(np.zeros((2, 2)))[:20]),
            "image .*cut.png",
        ),
        (lambda r: (r / "test" / "pink").mkdir(), "class folders pink that the training folder lacks"),
        (lambda r: None, "no training folder"),
    ],
)
def test_bad_folders_are_refused_in_one_line(tmp_path, make, message):
    root = tmp_path / "set"
    root.mkdir()
    if "no training folder" not in message and "no class" not in message and "no images" not in message:
        write_image_folder(root, per_class=1, size=2, test_per_class=1)
    make(root)
    with pytest.raises(ConfigError, match=message) as e:
        datasets.resolve(f"folder:{root}")
    assert "\n" not in str(e.value)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tfds_folder(root, name, features, splits, config=None, labels=None):
    """A hand-written prepared tfds folder (dataset_info.json + features.json)."""
    folder = root / name / (config or "") / "1.0.0"
    folder.mkdir(parents=True)
    info = {
        "name": name,
        "version": "1.0.0",
        "splits": [{"name": k, "shardLengths": v} for k, v in splits.items()],
    }
    (folder / "dataset_info.json").write_text(json.dumps(info))
    (folder / "features.json").write_text(json.dumps({"featuresDict": {"features": features}}))
    if labels:
        (folder / "label.labels.txt").write_text("\n".join(labels) + "\n")
    return folder


IMAGE = {"pythonClassName": "tensorflow_datasets.core.features.image_feature.Image",
         "image": {"shape": {"dimensions": ["32", "32", "3"]}, "dtype": "uint8"}}  # fmt: skip
LABEL = {"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
         "classLabel": {"numClasses": "4"}}  # fmt: skip


def test_tfds_facts_from_dataset_info_without_tensorflow(tmp_path):
    folder = _tfds_folder(
        tmp_path,
        "toy",
        {"image": IMAGE, "label": LABEL},
        {"train": ["30", "20"], "test": ["7"]},
        labels="abcd",
    )
    facts = datasets.resolve("tfds:toy", datasets.DataRequest(data_dir=str(tmp_path)))
    assert (facts.kind, facts.location) == ("tfds", str(folder))
    assert (facts.num_classes, facts.channels, facts.image_size, facts.raw_size) == (4, 3, 32, 32)
    assert (facts.train_examples, facts.test_examples) == (50, 7) and facts.class_names == tuple("abcd")
    with pytest.raises(ConfigError, match=r"--train_split: .*no split 'extra' \(splits: train, test\)"):
        datasets.resolve("tfds:toy", datasets.DataRequest(data_dir=str(tmp_path), train_split="extra"))
    with pytest.raises(ConfigError, match="--test_split: 'train' is also the training split"):
        datasets.resolve("tfds:toy", datasets.DataRequest(data_dir=str(tmp_path), test_split="train"))
    request = datasets.DataRequest(data_dir=str(tmp_path), validation_fraction=0.1)
    assert datasets.resolve("tfds:toy", request).test_examples == 7  # a test split: nothing held out
    request = datasets.DataRequest(data_dir=str(tmp_path), test_split="val", validation_fraction=0.1)
    facts = datasets.resolve("tfds:toy", request)
    assert (facts.train_examples, facts.test_examples, facts.detail("test_split")) == (45, 5, "")


def test_tfds_configs_and_the_default_config(tmp_path):
    _tfds_folder(
        tmp_path, "multi", {"image": IMAGE, "label": LABEL}, {"train": ["3"], "test": ["2"]}, config="small"
    )
    request = datasets.DataRequest(data_dir=str(tmp_path))
    assert datasets.resolve("tfds:multi/small", request).train_examples == 3
    assert datasets.resolve("tfds:multi", request).train_examples == 3  # the only config
    with pytest.raises(ConfigError, match="multi/large"):
        datasets.resolve("tfds:multi/large", request)


def test_tfds_without_an_image_or_label_feature_names_its_features(tmp_path):
    tensor = {"pythonClassName": "tensorflow_datasets.core.features.tensor_feature.Tensor"}
    _tfds_folder(tmp_path, "audio", {"audio": tensor, "label": LABEL}, {"train": ["3"]})
    with pytest.raises(
        ConfigError, match=r"needs an Image and a ClassLabel feature; .* has audio \(Tensor\), label"
    ):
        datasets.resolve("tfds:audio", datasets.DataRequest(data_dir=str(tmp_path)))


def test_a_missing_tfds_name_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "home"))
    with pytest.raises(ConfigError) as e:
        datasets.resolve("tfds:no_such_set", datasets.DataRequest(data_dir=str(tmp_path / "mine")))
    assert str(tmp_path / "mine" / "no_such_set") in str(e.value)
    assert str(tmp_path / "home" / "no_such_set") in str(e.value)
    assert tfds_info.search_dirs(None) == [str(tmp_path / "home")]


def test_tfds_images_of_varying_size_need_an_image_size(tmp_path):
    varying = {**IMAGE, "image": {"shape": {"dimensions": ["-1", "-1", "3"]}}}
    _tfds_folder(tmp_path, "photos", {"image": varying, "label": LABEL}, {"train": ["5"], "test": ["5"]})
    with pytest.raises(ConfigError, match="--image_size"):
        datasets.resolve("tfds:photos", datasets.DataRequest(data_dir=str(tmp_path)))
    facts = datasets.resolve("tfds:photos", datasets.DataRequest(data_dir=str(tmp_path), image_size=12))
    assert (facts.image_size, facts.raw_size) == (12, 12)
