"""TensorFlow's process settings: thread pools and quiet logging.

`configure_threads(intra, inter)` must run before TensorFlow's runtime starts (before the
first tensor, model or device listing); the driver calls it first thing. `quiet_tensorflow()`
must run before TensorFlow is first imported.

Quiet output. A default run prints nac's own progress and results. TensorFlow's chatter is
silenced where it starts: `TF_CPP_MIN_LOG_LEVEL=2` (C++ INFO and WARNING lines off, C++ errors
still shown) is set before the first import unless the user set it; lines that TensorFlow's
C++ code writes before its logging is initialised (so no level applies: "All log messages
before absl::InitializeLog()", "cudart_stub.cc ... Could not find cuda drivers", on every
machine without a GPU) and the "failed call to cuInit ... (303)" error of a GPU-less machine
are dropped from the native stderr while TensorFlow is imported and its devices are first
listed (`native_stderr_filtered`; every other line written then is passed through); Python
INFO records of TensorFlow's SavedModel writer (saver sharding, fingerprint, signature
renaming, "Assets written") are held back by a WARNING-level filter on the `absl` and
`tensorflow` loggers. Python
warnings and TensorFlow's own warnings and errors still show. `NAC_TF_LOGS=1` in the
environment (or the driver's `--verbosity=1`) leaves all of TensorFlow's logging as it is.

oneDNN. TensorFlow's oneDNN kernels (`TF_ENABLE_ONEDNN_OPTS`) are switched on by TensorFlow
itself only on CPUs with AVX-512 neural-network features (VNNI, BF16, AMX); on AVX2-only
CPUs such as AMD EPYC they stay off, and these networks train several times slower for it
(docs/runtime.md). `enable_onednn()` sets
`TF_ENABLE_ONEDNN_OPTS=1` before TensorFlow loads on x86-64 unless the user set the variable
(`TF_ENABLE_ONEDNN_OPTS=0` keeps TensorFlow's plain kernels). The same functions, computed by
other kernels: results differ in float round-off, not in meaning.

Thread pools. `None` picks nac's automatic choice, `0` leaves TensorFlow's default (as many
threads as cores in each pool), a positive number is used as it is. The automatic choice is
intra-op 1 / inter-op 2 on a machine with at most 2 cores (faster there than TensorFlow's
default for these small-op graphs, docs/runtime.md: two independent ops, e.g. two branches'
convolutions, run side by side instead of splitting each small op over both cores), and
TensorFlow's defaults on larger machines, where nothing was measured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import sys
import tempfile

AUTO_THREADS_MAX_CORES = 2
TF_LOGS_ENV = "NAC_TF_LOGS"
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
ONEDNN_MACHINES = ("x86_64", "amd64")

# Native stderr lines of a normal start-up that carry no information for a user.
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
)

_quiet = False
_shown = False


def enable_onednn(machine: str | None = None) -> str | None:
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` on x86-64 unless the user set it; returns its value.

    Call before TensorFlow is first imported (TensorFlow reads the variable once). None: the
    variable is unset and TensorFlow decides (other machines).
    """
    machine = (platform.machine() if machine is None else machine).lower()
    if machine in ONEDNN_MACHINES:
        os.environ.setdefault(ONEDNN_ENV, "1")
    return os.environ.get(ONEDNN_ENV)


def tf_logs_wanted(verbosity: int = 0) -> bool:
    """True when the user asked for TensorFlow's own logging (`NAC_TF_LOGS=1` or verbosity >= 1)."""
    return verbosity >= 1 or os.environ.get(TF_LOGS_ENV, "").strip().lower() in ("1", "true", "yes")


def quiet_tensorflow(verbosity: int = 0):
    """Silences TensorFlow's chatter for this process (see the module docstring) and imports it.

    Call before TensorFlow is first imported. With `tf_logs_wanted(verbosity)` it only imports.
    """
    global _quiet, _shown
    if tf_logs_wanted(verbosity):
        _quiet, _shown = False, True
        import tensorflow  # noqa: F401

        return
    _quiet = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_filtered():
        import tensorflow  # noqa: F401
    # A level filter, not `setLevel`: absl resets its logger's level whenever its verbosity
    # flag is touched (TensorFlow's SavedModel writing does), a logger filter stays.
    for name in ("absl", "tensorflow"):
        logger = logging.getLogger(name)
        if _warnings_and_above not in logger.filters:
            logger.addFilter(_warnings_and_above)


def _warnings_and_above(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def tf_logs_shown() -> bool:
    """Whether the user asked for TensorFlow's logging (through `quiet_tensorflow` or the env)."""
    return _shown or tf_logs_wanted()


@contextlib.contextmanager
def native_stderr_filtered(enabled: bool | None = None):
    """Captures file descriptor 2 inside the block and re-emits every line but the `NOISE`.

    `enabled` None: only after `quiet_tensorflow()` silenced this process. Lines appear when
    the block ends (in their order); a crash inside the block still shows them.
    """
    if not (_quiet if enabled is None else enabled):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def auto_threads(cores: int | None = None) -> tuple[int, int]:
    """nac's automatic (intra-op, inter-op) threads for `cores` cores; 0 is TF's default."""
    cores = os.cpu_count() if cores is None else cores
    if cores is not None and cores <= AUTO_THREADS_MAX_CORES:
        return 1, cores
    return 0, 0


def configure_threads(intra: int | None = None, inter: int | None = None) -> tuple[int, int]:
    """Sets TensorFlow's intra-op and inter-op thread pools; returns what was set (0: TF's).

    None picks `auto_threads()` for that pool. Call before TensorFlow's runtime starts.
    """
    auto = auto_threads()
    intra = auto[0] if intra is None else int(intra)
    inter = auto[1] if inter is None else int(inter)
    import tensorflow as tf

    threading = tf.config.threading
    try:
        if intra and threading.get_intra_op_parallelism_threads() != intra:
            threading.set_intra_op_parallelism_threads(intra)
        if inter and threading.get_inter_op_parallelism_threads() != inter:
            threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # the runtime started already (e.g. a run inside a test process)
        logging.getLogger("nac").debug("thread pools: TensorFlow's runtime started already; kept as they are")
        return threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()
    return intra, inter
