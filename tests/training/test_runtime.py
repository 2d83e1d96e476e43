"""nac.training.runtime: thread-pool choice and the native stderr filter."""

import os
import platform
import subprocess
import sys

import pytest

from nac.training import runtime


def test_auto_threads():
    assert runtime.auto_threads(1) == (1, 1)
    assert runtime.auto_threads(2) == (1, 2)
    assert runtime.auto_threads(8) == (0, 0)


def test_tf_logs_wanted(monkeypatch):
    monkeypatch.delenv(runtime.TF_LOGS_ENV, raising=False)
    assert not runtime.tf_logs_wanted()
    assert runtime.tf_logs_wanted(verbosity=1)
    monkeypatch.setenv(runtime.TF_LOGS_ENV, "1")
    assert runtime.tf_logs_wanted()


def test_native_stderr_filter_drops_only_the_known_noise(capfd):
    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1.5 4839 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
        "E0000 00:00:1.6 4839 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)\n"
    )
    real = "E0000 00:00:1.7 4839 some_kernel.cc:9] a real error\n"
    with runtime.native_stderr_filtered(enabled=True):
        os.write(2, noise.encode())
        os.write(2, real.encode())
    err = capfd.readouterr().err
    assert err == real
    with runtime.native_stderr_filtered(enabled=False):
        os.write(2, noise.encode())
    assert capfd.readouterr().err == noise


def test_enable_onednn_on_x86_64_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
    assert runtime.enable_onednn("aarch64") is None  # elsewhere TensorFlow decides
    assert runtime.ONEDNN_ENV not in os.environ
    assert runtime.enable_onednn("x86_64") == "1"
    monkeypatch.setenv(runtime.ONEDNN_ENV, "0")  # the user's choice stands
    assert runtime.enable_onednn("x86_64") == "0"


@pytest.mark.skipif(platform.machine().lower() not in runtime.ONEDNN_MACHINES, reason="x86-64 only")
def test_tensorflow_takes_onednn_from_enable_onednn():
    """TensorFlow reads the variable at import: set by enable_onednn, its kernels are on (it
    says so in a log line that nac's quiet mode drops and NAC_TF_LOGS=1 shows)."""
    env = {k: v for k, v in os.environ.items() if k not in (runtime.ONEDNN_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    code = "from nac.training import runtime; runtime.enable_onednn(); import tensorflow"
    err = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stderr
    assert "oneDNN custom operations are on" in err
