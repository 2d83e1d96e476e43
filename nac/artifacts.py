"""The run directory: atomic artefacts, completed steps, leftovers (no TensorFlow).

Layout of `RUN/`:
  `config.json`   the resolved configuration in the original's v2.0 schema
  `run_config.json`, `flags.txt`   nac's full resolved configuration and the exact flags
  `iter_<i>/`, `final/`, `random_<j>/`   one directory per trained network
  `summary.json`  what the paper's Table 1 needs (rewritten after every finished step)

A step's directory is built under a hidden staging name (`.iter_1.partial-<pid>`) and renamed
into place only when every file in it is written, so `RUN/iter_1/` exists if and only if
iteration 1 finished. Staging directories left by a killed process, or by a step whose write
failed (disk full), are discarded on the next start (which holds the run's lock,
`nac.lock`). Single files are written with `nac.jsonio.write_atomic`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from nac.errors import RunError, WriteError
from nac.jsonio import load_json, write_json

PARTIAL = ".partial-"

# The per-step numbers `summary.json` lists (from each step's `metrics.json`); Table 1's input.
SUMMARY_STEP_FIELDS = (
    "name",
    "notation",
    "trainable_params",
    "flops_per_image",
    "flops_per_batch_50",
    "flops_forward_per_image",
    "flops_training_per_image",
    "steps",
    "epochs",
    "test_accuracy",
    "test_error",
    "wall_time_s",
    "images_per_sec",
)


class RunDir:
    """A run directory. `writer=False` (non-chief workers) stages into a throwaway place."""

    def __init__(self, path, writer: bool = True):
        self.path = os.path.abspath(os.fspath(path))
        self.writer = writer
        if writer:
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as e:
                raise RunError(f"--run_dir: cannot create {self.path!r}: {e.strerror}") from None

    def __truediv__(self, name) -> str:
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        """True if the step `name` (e.g. `iter_0`) or file finished and is in place."""
        return os.path.exists(self / name)

    def discard_leftovers(self) -> list[str]:
        """Removes staging directories and temporary files of interrupted writes."""
        removed = []
        if not self.writer or not os.path.isdir(self.path):
            return removed
        for name in os.listdir(self.path):
            if PARTIAL in name or ".tmp-" in name:
                target = self / name
                shutil.rmtree(target) if os.path.isdir(target) else os.unlink(target)
                removed.append(name)
        return removed

    @contextlib.contextmanager
    def staging(self, name: str):
        """Yields a directory to fill; renames it to `RUN/name` when the block succeeds."""
        if self.writer:
            staged = self / f".{name}{PARTIAL}{os.getpid()}"
            shutil.rmtree(staged, ignore_errors=True)
            os.makedirs(staged)
        else:
            staged = tempfile.mkdtemp(prefix=f"nac-{name}-")
        try:
            yield staged
        except (OSError, WriteError):
            if not self.writer:
                shutil.rmtree(staged, ignore_errors=True)
            raise  # a failed write: the staging directory is left for the next start to discard
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        if not self.writer:
            shutil.rmtree(staged, ignore_errors=True)
            return
        final = self / name
        if os.path.exists(final):
            shutil.rmtree(staged, ignore_errors=True)
            raise RunError(
                f"{final} appeared while this step ran; is another process using the run directory?"
            )
        os.replace(staged, final)

    def write_json(self, name: str, value, original_format: bool = False):
        if self.writer:
            write_json(self / name, value, original_format)

    def read_json(self, name: str):
        return load_json(self / name, RunError, "run file")
