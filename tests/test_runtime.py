"""nac.runtime: thread-pool choice and the native stderr filter."""

import os

from nac import runtime


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
