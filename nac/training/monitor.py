"""Progress display and TensorBoard event files for training runs."""

from __future__ import annotations

import math
import sys
import time

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _scalar_metadata():
    # What TensorBoard's scalar plugin writes; built here so that nac does not need the
    # tensorboard package to write event files (TensorBoard reads them as usual).
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata


_SCALAR = _scalar_metadata()


def write_scalar(tag: str, value, step: int):
    """Writes one TensorBoard scalar to the default summary writer."""
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=_SCALAR)


def format_duration(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressLine:
    """One updating line on a terminal (`\\r`), or a plain line per report otherwise.

    Called with the trainer's progress dicts: step, steps, loss, accuracy, images_per_sec, eta_s.
    With `later_steps` (the steps of the trainings still to come in the run) and `batch_size`,
    the line also shows the whole run's ETA (`run ETA ...`): the later steps at the current
    speed plus `later_fixed_s` (the later trainings' expected set-up, evaluation and export
    time); an estimate that ignores the growth of later networks.
    """

    def __init__(
        self,
        label: str,
        stream=None,
        min_interval_s: float = 0.5,
        log=None,
        later_steps: int = 0,
        batch_size: int = 0,
        later_fixed_s: float = 0.0,
    ):
        self.label = label
        self.later_steps = later_steps
        self.batch_size = batch_size
        self.later_fixed_s = later_fixed_s
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval_s = min_interval_s if self.tty else 10.0
        self.log = log
        self._last = 0.0
        self._width = 0

    def __call__(self, info: dict):
        now = time.monotonic()
        last_step = info["step"] >= info["steps"]
        if now - self._last < self.min_interval_s and not last_step:
            return
        self._last = now
        text = (
            f"{self.label} step {info['step']}/{info['steps']} loss {info['loss']:.4f} "
            f"acc {info['accuracy']:.3f} {info['images_per_sec']:.0f} img/s "
            f"ETA {format_duration(info.get('eta_s'))}"
        )
        if self.later_steps and self.batch_size:
            text += f" (run ETA {format_duration(self.run_eta(info))})"
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if last_step else ""))
            self.stream.flush()
            self._width = len(text)
        elif self.log is not None:
            self.log(text)
        else:
            print(text, file=self.stream, flush=True)

    def run_eta(self, info: dict):
        """Seconds left in the run: this training's ETA plus the later steps at this speed."""
        eta, speed = info.get("eta_s"), info.get("images_per_sec")
        if eta is None or not speed:
            return None
        return eta + self.later_steps * self.batch_size / speed + self.later_fixed_s


class TensorBoardScalars(keras.callbacks.Callback):
    """Writes loss, learning rate, evaluation metrics, the featuremap statistic curves, the
    run's hyperparameters and the network.

    Args:
      log_dir: event file directory.
      statistics: the `nac.net.stats.FeaturemapStatistics` callback whose records are written
        as they are taken, every `--stats_every` steps (one curve per branch, tag
        `featuremap/<Cell k>/<Branch N>`); records not yet written are written at the end.
      every: write training scalars every this many steps.
      params: trainable parameters, written once as `network/params`.
      hparams: the run's hyperparameters for TensorBoard's HParams dashboard (str, int,
        float or bool values), written once; needs the `tensorboard` package.
      architecture: the network as Markdown text, written once as `network/architecture`.
      trial_id: the HParams session name (default: a hash of `hparams`).
    """

    def __init__(
        self,
        log_dir: str,
        statistics=None,
        every: int = 50,
        params: int | None = None,
        hparams: dict | None = None,
        architecture: str | None = None,
        trial_id: str | None = None,
    ):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.statistics = statistics
        self.every = max(1, every)
        self.params = params
        self.hparams = hparams
        self.architecture = architecture
        self.trial_id = trial_id
        self._step = 0
        self._records_written = 0

    def on_train_begin(self, logs=None):
        self._records_written = 0
        with self.writer.as_default():
            if self.params is not None:
                write_scalar("network/params", self.params, step=0)
            if self.hparams or self.architecture:
                _write_run_description(self.hparams, self.architecture, self.trial_id)

    def on_train_batch_end(self, batch, logs=None):
        self._step = batch + 1
        if logs and self._step % self.every == 0:
            with self.writer.as_default():
                for key in ("loss", "accuracy", "lr", "images_per_sec"):
                    if key in logs:
                        write_scalar(f"train/{key}", logs[key], step=self._step)
        every = getattr(self.statistics, "series_every", 0)
        if every and self._step % every == 0:  # the statistic callback recorded at this step
            self._write_new_records()

    def _write_new_records(self):
        """Writes the statistic records taken since the last call (one per --stats_every)."""
        if self.statistics is None:
            return
        series = self.statistics.series
        with self.writer.as_default():
            for index in range(self._records_written, len(series["steps"])):
                step = series["steps"][index]
                for branch, values in series["values"].items():
                    write_scalar(f"featuremap/{branch}", values[index], step=step)
        self._records_written = len(series["steps"])

    def on_test_end(self, logs=None):
        if not logs:
            return
        step = int(logs.get("step", self._step))
        with self.writer.as_default():
            for key, value in logs.items():
                if key not in ("step", "wall_time") and isinstance(value, (int, float)):
                    write_scalar(f"eval/{key}", value, step=step)

    def on_train_end(self, logs=None):
        self._write_new_records()
        final = getattr(self.statistics, "final", None)
        if not self._records_written and final:  # no record taken (a window shorter than K)
            values = self.statistics.scaled(final)[self.statistics.statistics[0]]
            with self.writer.as_default():
                for branch, value in values.items():
                    write_scalar(f"featuremap/{branch}", value, step=self._step)
        self.writer.flush()
        self.writer.close()


def _write_run_description(hparams: dict | None, architecture: str | None, trial_id: str | None):
    """The HParams session (tensorboard's plugin) and the architecture text, at step 0."""
    try:
        from tensorboard.plugins.hparams import api as hp
    except ImportError:  # tensorboard is a dependency of nac; an install without it still trains
        return
    if hparams:
        hp.hparams(hparams, trial_id=trial_id)
    if architecture:
        tf.summary.text("network/architecture", architecture, step=0)
