"""In-memory arrays as a dataset (`nac.spec.arrays`) and the networks `nac.build_model` takes
(`nac.spec.networkfile`): checks, fingerprint, facts; pure Python, no TensorFlow."""

import json

import numpy as np
import pytest
from helpers import run_config

from nac.spec import arch, cost, networkfile
from nac.spec import arrays as arrays_lib
from nac.spec.errors import ConfigError, DataError, SpecError


def pair(n=6, size=4, channels=None, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    return rng.integers(0, 256, shape).astype(np.uint8), np.arange(n) % classes


def test_grey_images_get_a_channel_and_classes_come_from_the_labels():
    source = arrays_lib.ArraySource.from_arrays(pair(), pair(4, seed=1))
    assert source.train[0].shape == (6, 4, 4, 1) and source.train[0].dtype == np.uint8
    assert source.train[1].dtype == np.int32
    facts = source.facts()
    assert (facts.channels, facts.num_classes, facts.image_size, facts.train_examples) == (1, 3, 4, 6)
    assert arrays_lib.ArraySource.from_arrays(pair(), pair(4, seed=1), num_classes=5).num_classes == 5


def test_the_fingerprint_follows_the_data():
    a = arrays_lib.ArraySource.from_arrays(pair(), pair(4, seed=1)).fingerprint
    assert a == arrays_lib.ArraySource.from_arrays(pair(), pair(4, seed=1)).fingerprint
    floats = tuple(v.astype(np.float32) if v.ndim > 1 else v for v in pair())
    assert a == arrays_lib.ArraySource.from_arrays(floats, pair(4, seed=1)).fingerprint
    x, y = pair()
    x[0, 0, 0] ^= 1
    assert a != arrays_lib.ArraySource.from_arrays((x, y), pair(4, seed=1)).fingerprint
    assert a != arrays_lib.ArraySource.from_arrays(pair(), pair(4, seed=1), num_classes=4).fingerprint


@pytest.mark.parametrize(
    "train, test, classes, words",
    [
        (pair(channels=3), pair(4, channels=1), None, "same image shape"),
        ((pair()[0], np.arange(5)), pair(4), None, "expected [6]"),
        (pair(), pair(4, size=5), None, "same image shape"),
        ((np.zeros((3, 4, 5)), np.arange(3)), pair(4), None, "not square"),
        ((pair()[0], np.arange(6) - 1), pair(4), None, "values in [-1, 4], outside [0, 5)"),
        (pair(), pair(4), 2, "outside [0, 2)"),
        ((pair()[0] / 255.0 * 300, pair()[1]), pair(4), None, "0-255 scale"),
        ((pair()[0], np.full(6, 0.5)), pair(4), None, "integer class indices"),
        ((np.zeros((0, 4, 4)), np.zeros(0)), pair(4), None, "N >= 1"),
        ("images", pair(4), None, "(images, labels) pair"),
    ],
)
def test_bad_arrays_are_one_line(train, test, classes, words):
    with pytest.raises(DataError) as e:
        arrays_lib.ArraySource.from_arrays(train, test, classes)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_run_on_registered_arrays_takes_their_facts(tmp_path):
    value = arrays_lib.register(arrays_lib.ArraySource.from_arrays(pair(8, size=6), pair(4, size=6)))
    config = run_config(run_dir=str(tmp_path), dataset=value, envelope="8/1-1/6", downsample=2)
    assert config.resolved_image_size == 3 and config.initial_network().num_classes == 3
    assert config.initial_network().input_channels == 1 and config.train_examples == 8
    assert json.loads(json.dumps(config.to_flat()))["dataset"] == value
    with pytest.raises(ConfigError, match="exist only inside nac.construct_network"):
        run_config(run_dir=str(tmp_path), dataset="arrays:" + "0" * 64)
    with pytest.raises(ConfigError, match="--data_dir"):
        run_config(run_dir=str(tmp_path), dataset=value, data_dir="/data")


def test_networks_resolve_with_the_summary_defaults(tmp_path):
    net, size = networkfile.resolve("8/2-1/6")
    assert size == 28 and net.input_channels == 3 and net.num_classes == 10
    net, size = networkfile.resolve("8/2-1/6", (16, 16), 4)
    assert size == 16 and net.input_channels == 1 and net.num_classes == 4
    path = tmp_path / networkfile.FILE
    path.write_text(json.dumps(networkfile.record(net, 16, {"cell_impl": "per_branch"})))
    again, size = networkfile.resolve(str(path))
    assert again == net and size == 16
    assert networkfile.stored_options(str(path)) == {"cell_impl": "per_branch"}
    assert arch.Network.from_dict(json.loads(path.read_text())) == net
    assert cost.count_params(networkfile.resolve(net, (16, 16, 3))[0], 16) > cost.count_params(net, 16)
    for bad, words in (("8/x/6", "notation"), ("nothing", "expected a notation"), (3, "expected a notation")):
        with pytest.raises(SpecError, match=words):
            networkfile.resolve(bad)
    with pytest.raises(SpecError, match="square"):
        networkfile.resolve("8/2-1/6", (16, 12, 3))


def test_arrays_are_a_registry_source_without_named_splits(tmp_path):
    from nac.spec import datasets

    value = arrays_lib.register(arrays_lib.ArraySource.from_arrays(pair(8, size=6), pair(4, size=6)))
    facts = datasets.resolve(value)
    assert (facts.kind, facts.test_examples, facts.location) == ("arrays", 4, "in memory")
    assert facts.splits == (("train", 8), ("test", 4))
    assert datasets.is_known(value) and not datasets.has_named_splits(value)
    assert datasets.has_named_splits("folder:x") and not datasets.has_named_splits("cifar10")
    for flag, given in (("train_split", "x"), ("test_split", "val"), ("validation_fraction", 0.2)):
        with pytest.raises(ConfigError, match="--dataset: got 'arrays:.*are for tfds: and folder:"):
            run_config(run_dir=str(tmp_path), dataset=value, **{flag: given})
    record = run_config(run_dir=str(tmp_path), dataset=value).to_flat()["dataset_facts"]
    assert (record["kind"], record["train_examples"], record["test_examples"]) == ("arrays", 8, 4)
