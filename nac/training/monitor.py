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
    """Writes loss, learning rate, evaluation metrics and the featuremap statistic curves.

    Args:
      log_dir: event file directory.
      statistics: the `nac.net.stats.FeaturemapStatistics` callback whose series is written at the
        end of training (one curve per branch, tag `featuremap/<Cell k>/<Branch N>`).
      every: write training scalars every this many steps.
      params: trainable parameters, written once as `network/params`.
    """

    def __init__(self, log_dir: str, statistics=None, every: int = 50, params: int | None = None):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.statistics = statistics
        self.every = max(1, every)
        self.params = params
        self._step = 0

    def on_train_begin(self, logs=None):
        if self.params is not None:
            with self.writer.as_default():
                write_scalar("network/params", self.params, step=0)

    def on_train_batch_end(self, batch, logs=None):
        self._step = batch + 1
        if logs and self._step % self.every == 0:
            with self.writer.as_default():
                for key in ("loss", "accuracy", "lr", "images_per_sec"):
                    if key in logs:
                        write_scalar(f"train/{key}", logs[key], step=self._step)

    def on_test_end(self, logs=None):
        if not logs:
            return
        step = int(logs.get("step", self._step))
        with self.writer.as_default():
            for key, value in logs.items():
                if key not in ("step", "wall_time") and isinstance(value, (int, float)):
                    write_scalar(f"eval/{key}", value, step=step)

    def on_train_end(self, logs=None):
        if self.statistics is not None:
            series = self.statistics.series
            with self.writer.as_default():
                for branch, values in series["values"].items():
                    for step, value in zip(series["steps"], values):
                        write_scalar(f"featuremap/{branch}", value, step=step)
        self.writer.flush()
        self.writer.close()
