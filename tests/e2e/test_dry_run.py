"""--dry_run's checks: the data's place, the stored image size, conflicting flags, GPU options."""

import pytest
from conftest import construct
from helpers import run_config

from nac.run import drycheck
from nac.run.runconfig import from_flags
from nac.spec.errors import ConfigError


def _flags(**values):
    return {"run_dir": "x", **values}, set(values)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"arch": "experiments/presets/constructed_a.json", "envelope": "6/1-1/6"}, "--envelope and --arch"),
        ({"mode": "oneshot", "worstcase": True}, "--worstcase with --mode=oneshot"),
        ({"mode": "oneshot", "iterations": 5}, "--iterations with --mode=oneshot"),
        ({"mode": "oneshot", "construction_steps": 5}, "--construction_steps with --mode=oneshot"),
        ({"mode": "construct", "num_random": 3}, "--num_random with --mode=construct"),
    ],
)
def test_explicit_flags_that_would_be_ignored_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        from_flags(*_flags(**values))


def test_an_evaluation_schedule_shared_by_every_role_stays_accepted():
    # experiments/study.sh passes --construction_eval_every to its oneshot and random runs too.
    assert from_flags(*_flags(mode="oneshot", construction_eval_every=20)).mode == "oneshot"


def test_a_configs_own_values_are_not_flags_and_an_envelope_overrides_nothing_silently(fixtures_dir):
    configs = fixtures_dir / "original_configs"
    longrun = str(configs / "longruns" / "network.cons-exp-3-bc-longrun.json")  # oneshot, iterations 5
    assert from_flags({"run_dir": "x", "config": longrun}, set()).mode == "oneshot"
    construction = str(configs / "construction" / "network.cons-exp-3.bc.json")
    with pytest.raises(ConfigError, match="--envelope and --config"):
        from_flags({"run_dir": "x", "config": construction, "envelope": "6/1-1/6"}, {"config", "envelope"})


def test_an_image_size_larger_than_the_stored_images_is_refused():
    with pytest.raises(ConfigError, match="--image_size: got 64; cifar10's stored images are 32x32"):
        run_config(run_dir="x", dataset="cifar10", image_size=64)
    run_config(run_dir="x", dataset="cifar10", image_size=32)
    run_config(run_dir="x", dataset="synthetic", image_size=64)  # drawn at any size


def test_the_data_is_looked_for_by_file_names(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    found, looked = drycheck.locate("cifar10", str(tmp_path))
    assert found is None and str(tmp_path) in looked
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"")
    found, _ = drycheck.locate("cifar10", str(tmp_path))
    assert found == f"files in {tmp_path / 'cifar-10-binary.tar.gz'}"
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert drycheck.locate("mnist", str(tmp_path))[0] == f"IDX files in {tmp_path / 'mnist'}"
    assert drycheck.locate("imagenet2012", None)[0] is None
    (tmp_path / "tfds" / "imagenet2012").mkdir(parents=True)
    assert "prepared tensorflow-datasets" in drycheck.locate("imagenet2012", None)[0]


def test_gpu_options_without_a_gpu_are_a_warning():
    config = run_config(run_dir="x", dataset="synthetic", mixed_precision=True, jit_compile=True)
    warnings = drycheck.gpu_warnings(config, has_gpu=False)
    assert [w.split()[0] for w in warnings] == ["--mixed_precision", "--jit_compile"]
    assert drycheck.gpu_warnings(config, has_gpu=True) == []
    assert drycheck.gpu_warnings(run_config(run_dir="x"), has_gpu=False) == []


def test_a_dry_run_says_where_the_data_is_and_warns_about_missing_data(tmp_path):
    out = construct(
        f"--run_dir={tmp_path / 'run'}", "--dataset=mnist", f"--data_dir={tmp_path / 'none'}", "--dry_run"
    )
    assert out.returncode == 0, out.stderr
    assert "data: mnist not found locally" in out.stdout
    warnings = out.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("nac.construct: warning: ") for w in warnings)
    assert f"--data_dir={tmp_path / 'none'} does not exist" in warnings[0]
    assert "--dataset=mnist: not found" in warnings[1]
    refused = construct(f"--run_dir={tmp_path / 'run'}", "--mode=oneshot", "--worstcase", "--dry_run")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
