"""Shared pytest setup.

The CPU is split into two logical devices before anything initialises the TensorFlow runtime,
so that MirroredStrategy tests can run without GPUs. Single-device tests still run on CPU:0.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from nac.training import runtime  # noqa: E402

runtime.enable_onednn()  # what the driver does: oneDNN's kernels on x86-64 (nac.training.runtime)

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
# benchmarks/gpu_check.sh: NAC_TEST_LOGICAL_GPUS=2 splits the first GPU into two logical GPUs
# (NAC_TEST_GPU_MEMORY_MB each), so that MirroredStrategy runs over two GPUs on one card.
_gpus = tf.config.list_physical_devices("GPU")
if _gpus and int(os.environ.get("NAC_TEST_LOGICAL_GPUS", "0")) > 1:
    _memory = int(os.environ.get("NAC_TEST_GPU_MEMORY_MB", "2048"))
    tf.config.set_logical_device_configuration(
        _gpus[0],
        [tf.config.LogicalDeviceConfiguration(memory_limit=_memory)]
        * int(os.environ["NAC_TEST_LOGICAL_GPUS"]),
    )

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir():
    return FIXTURES


# A tiny synthetic construction shared by the driver and report tests.
RUN_FLAGS = [
    "--dataset=synthetic",
    "--envelope=8/2-1/6",
    "--iterations=2",
    "--construction_steps=12",
    "--final_steps=12",
    "--eval_every=6",
    "--stats_every=4",
    "--seed=3",
    "--noprogress",
    "--save_iteration_models",
]
STEP_FILES = ("network.json", "stats.json", "res.log", "metrics.json", "stats_series.json", "saved_model")


def _quiet_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _default_env():
    """The environment of a user who set nothing (nac's own quiet defaults apply)."""
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NAC_TF_LOGS")}


def construct(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "nac.construct", *args],
        capture_output=True,
        text=True,
        env=env or _quiet_env(),
        timeout=600,
        **kwargs,
    )


def start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "nac.construct", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_quiet_env(),
    )


def finished(tmp_path_factory, name, *flags, env=None):
    """Runs nac.construct to completion in a fresh run directory; returns the directory.

    The process's stdout and stderr are kept beside it (`../stdout.txt`, `../stderr.txt`).
    """
    run_dir = tmp_path_factory.mktemp(name) / "run"
    out = construct(f"--run_dir={run_dir}", *flags, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir.parent / "stdout.txt").write_text(out.stdout)
    (run_dir.parent / "stderr.txt").write_text(out.stderr)
    return run_dir


# The one trained network of the random and oneshot fixtures.
SHORT_FINAL = (
    "--dataset=synthetic",
    "--final_steps=6",
    "--eval_every=3",
    "--seed=5",
    "--nosave_models",
    "--noprogress",
)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    # Run as a user would (no TF_CPP_MIN_LOG_LEVEL): its output is what the user sees.
    return finished(tmp_path_factory, "construct", *RUN_FLAGS, env=_default_env())


@pytest.fixture(scope="session")
def random_run(finished_run, tmp_path_factory):
    """Two random baselines matched to the finished construction's final network."""
    arch = finished_run / "final" / "network.json"
    return finished(
        tmp_path_factory, "random", "--mode=random", f"--arch={arch}", "--num_random=2", *SHORT_FINAL
    )


@pytest.fixture(scope="session")
def envelope_run(tmp_path_factory):
    """The envelope of the finished construction, trained as it is (oneshot)."""
    return finished(tmp_path_factory, "envelope", "--mode=oneshot", "--envelope=8/2-1/6", *SHORT_FINAL)


@pytest.fixture(scope="session")
def worstcase_run(tmp_path_factory):
    """A one-iteration worst-case construction (prunes the most active branches)."""
    return finished(
        tmp_path_factory,
        "worstcase",
        "--worstcase",
        "--envelope=8/2-1/6",
        "--dataset=synthetic",
        "--iterations=1",
        "--construction_steps=4",
        "--final_steps=4",
        "--eval_every=2",
        "--stats_every=2",
        "--seed=4",
        "--nosave_models",
        "--notensorboard",
        "--noprogress",
    )


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """A --data_dir holding tfds:stripes (1 channel, 8x8, horizontal/vertical; train 120, test 40)
    and tfds:colours/small (3 channels, 8x8, blue/green/red; a train split of 60 only)."""
    from helpers import write_tfds_set

    data_dir = tmp_path_factory.mktemp("tfds")
    write_tfds_set(data_dir, "stripes", {"train": 120, "test": 40}, channels=1)
    write_tfds_set(data_dir, "colours", {"train": 60}, channels=3, config="small")
    return data_dir
