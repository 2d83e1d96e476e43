"""Constructions on a generated image folder and on a tfds set in a local --data_dir; --dry_run
and bad data input as a user meets them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import construct
from helpers import COLOUR_CLASSES, png_bytes, run_config, write_image_folder

# A few seconds of training that the generated tasks learn well above chance.
TINY = [
    "--envelope=8/2-1/6",
    "--iterations=1",
    "--construction_steps=6",
    "--final_steps=24",
    "--eval_every=6",
    "--batch_size=20",
    "--learning_rate=0.3",
    "--seed=1",
    "--noprogress",
]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = write_image_folder(
        tmp_path_factory.mktemp("images") / "set", per_class=40, size=8, test_per_class=10
    )
    run_dir = tmp_path_factory.mktemp("folder_run") / "run"
    args = [f"--run_dir={run_dir}", f"--dataset=folder:{root}", *TINY]
    out = construct(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    return root, run_dir, args


def test_construction_on_an_image_folder_learns_and_records_the_classes(folder_run):
    _, run_dir, _ = folder_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"]["test_accuracy"] >= 0.8  # chance: 1/3
    assert summary["dataset_facts"]["class_names"] == list(COLOUR_CLASSES)
    assert summary["dataset_facts"]["splits"] == {"train": 120, "test": 30}
    config = json.loads((run_dir / "run_config.json").read_text())
    assert config["dataset_facts"]["class_names"] == list(COLOUR_CLASSES)


def test_the_exported_model_names_its_classes_and_preprocesses_pixels(folder_run):
    import tensorflow as tf

    root, run_dir, _ = folder_run
    model = tf.saved_model.load(str(run_dir / "final" / "saved_model"))
    names = model.signatures["class_names"]()["class_names"].numpy()
    assert [n.decode() for n in names] == list(COLOUR_CLASSES)
    from helpers import colour_images

    pixels = colour_images(np.arange(3).repeat(4), 8, 11).astype(np.float32)
    logits = model.signatures["serving_default"](pixels=tf.constant(pixels))["logits"].numpy()
    assert (logits.argmax(1) == np.arange(3).repeat(4)).mean() >= 0.75


def test_a_finished_folder_run_resumes_and_other_data_is_refused(folder_run):
    root, run_dir, args = folder_run
    out = construct(*args)
    assert out.returncode == 0 and "complete" in out.stderr, out.stderr[-2000:]
    extra = root / "train" / "red" / "extra.png"
    extra.write_bytes(png_bytes(np.zeros((8, 8, 3), np.uint8)))
    try:
        out = construct(*args)
    finally:
        extra.unlink()
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "the dataset's contents" in lines[0], out.stderr


def test_construction_on_a_local_tfds_set_learns(tfds_dir, tmp_path):
    run_dir = tmp_path / "run"
    out = construct(
        f"--run_dir={run_dir}", "--dataset=tfds:stripes", f"--data_dir={tfds_dir}", "--nosave_models", *TINY
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"]["test_accuracy"] >= 0.8  # chance: 1/2
    assert summary["dataset_facts"]["channels"] == 1
    assert summary["dataset_facts"]["class_names"] == ["horizontal", "vertical"]


DRY_RUN = """
import sys
sys.argv = ["nac.construct", *{args!r}, "--dry_run"]
from nac.cli import construct
try:
    construct.run()
except SystemExit as e:
    assert e.code in (0, None), e.code
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def _dry_run(*args):
    code = DRY_RUN.format(args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_data_without_tensorflow(tfds_dir, tmp_path):
    out = _dry_run(f"--run_dir={tmp_path / 'a'}", "--dataset=tfds:colours/small", f"--data_dir={tfds_dir}",
                   "--validation_fraction=0.25")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "3 classes (blue, green, red)" in out.stdout and "images 8x8x3" in out.stdout
    assert "train 45, test 15 (held out from train); splits there: train 60" in out.stdout
    assert "tensorflow imported: False" in out.stdout
    root = write_image_folder(tmp_path / "set", per_class=2, size=5, test_per_class=1)
    out = _dry_run(f"--run_dir={tmp_path / 'b'}", f"--dataset=folder:{root}", "--image_size=4")
    assert (
        "images 4x4x3; examples: train 6, test 3" in out.stdout and "tensorflow imported: False" in out.stdout
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _features_only(tmp_path):
    folder = tmp_path / "tds" / "sounds" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text(
        json.dumps({"splits": [{"name": "train", "shardLengths": ["4"]}]})
    )
    tensor = {"pythonClassName": "tensorflow_datasets.core.features.tensor_feature.Tensor"}
    (folder / "features.json").write_text(json.dumps({"featuresDict": {"features": {"audio": tensor}}}))
    return ["--dataset=tfds:sounds", f"--data_dir={tmp_path / 'tds'}"]


@pytest.mark.parametrize(
    "case,message",
    [
        ("no_classes", "has no class subfolders"),
        ("empty_class", "holds no images"),
        ("unreadable", "cannot read image .*red/bad.jpg"),
        ("no_test", "--test_split: .*splits: train"),
        ("tfds_missing", "no prepared tensorflow-datasets set in .*/tds/nothing_here"),
        ("tfds_features", r"needs an Image and a ClassLabel feature; .* has audio \(Tensor\)"),
        ("split_flag_on_builtin", "--train_split, --test_split and --validation_fraction are for"),
    ],
)
def test_bad_data_gives_one_line_exit_2_and_writes_nothing(tmp_path, case, message):
    import re

    root = tmp_path / "set"
    if case in ("unreadable", "no_test"):
        write_image_folder(root, per_class=1, size=2, test_per_class=None if case == "no_test" else 1)
    flags = [f"--dataset=folder:{root}"]
    if case == "no_classes":
        (root / "train").mkdir(parents=True)
    elif case == "empty_class":
        (root / "train" / "a").mkdir(parents=True)
    elif case == "unreadable":
        (root / "train" / "red" / "bad.jpg").write_bytes(b"\xff\xd8\xff")
    elif case == "tfds_missing":
        flags = ["--dataset=tfds:nothing_here", f"--data_dir={tmp_path / 'tds'}"]
    elif case == "tfds_features":
        flags = _features_only(tmp_path)
    elif case == "split_flag_on_builtin":
        flags = ["--dataset=synthetic", "--test_split=val"]
    out = construct(f"--run_dir={tmp_path / 'run'}", "--envelope=8/2-1/6", *flags)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), out.stderr
    assert not (tmp_path / "run").exists()


def test_run_config_validates_the_split_flags_and_records_the_facts(tmp_path):
    from nac.run.runconfig import RunConfig
    from nac.spec.errors import ConfigError

    root = write_image_folder(tmp_path / "set", per_class=2, size=4, test_per_class=None)
    base = {"run_dir": str(tmp_path / "run"), "envelope": "8/2-1/6", "dataset": f"folder:{root}"}
    for bad, flag in (
        ({"validation_fraction": 1.0}, "--validation_fraction"),
        ({"validation_fraction": -0.1}, "--validation_fraction"),
        ({"train_split": "a/b"}, "--train_split"),
        ({"test_split": ""}, "--test_split"),
        ({"validation_fraction": 0}, "--test_split"),
    ):
        with pytest.raises(ConfigError, match=flag):
            run_config(**{**base, "validation_fraction": 0.5, **bad})
    config = run_config(**base, validation_fraction=0.5, seed=2)
    assert (config.train_examples, config.facts.test_examples, config.resolved_image_size) == (3, 3, 4)
    assert run_config(**base, validation_fraction=0.5, downsample=2).resolved_image_size == 2
    assert run_config(**base, validation_fraction=0.5, downsample=2, image_size=3).facts.raw_size == 6
    record = config.to_flat()["dataset_facts"]
    assert record["class_names"] == list(COLOUR_CLASSES) and record["kind"] == "folder"
    saved = RunConfig.from_flat(json.loads(json.dumps(config.to_flat())))
    assert config.differences(saved) == []
    (root / "train" / "red" / "more.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    assert run_config(**base, validation_fraction=0.5, seed=2).differences(saved) == ["dataset_facts"]


def test_an_image_only_tensorflow_finds_corrupt_is_named_and_leaves_no_run_dir(tmp_path):
    root = write_image_folder(tmp_path / "set", per_class=2, size=4, test_per_class=1)
    good = png_bytes(np.zeros((4, 4, 3), np.uint8))
    (root / "test" / "red" / "broken.png").write_bytes(good[:33] + b"\x00" * 40)  # header intact
    out = construct(f"--run_dir={tmp_path / 'run'}", f"--dataset=folder:{root}", *TINY)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "cannot decode image" in lines[0], out.stderr
    assert "broken.png (Invalid PNG" in lines[0]
    assert not (tmp_path / "run").exists()
