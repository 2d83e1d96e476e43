"""A line when evaluation or export takes longer than a few seconds.

Evaluation (with batch-norm re-estimation) and SavedModel export show no progress of their
own; on a large test set or network they take minutes. `SlowNotice` logs one line once the
work has taken `after_s` seconds (`final: evaluating (test set, batch-norm re-estimation)...`)
and, if it did, one line with its duration when it ends; quick work stays silent.
`EvaluationNotice` is the same for a Trainer's evaluations, as a Keras callback
(`on_test_begin` / `on_test_end`).
"""

from __future__ import annotations

import threading
import time

import keras

SLOW_AFTER_S = 5.0


class SlowNotice:
    """Context manager: logs `what...` after `after_s` seconds, then `what: done in N s`.

    Args:
      what: what is being done, e.g. `final: exporting the SavedModel`.
      log: a callable taking one message (e.g. a logger's `info`).
      after_s: seconds of silence before the first line.
    """

    def __init__(self, what: str, log, after_s: float = SLOW_AFTER_S):
        self.what = what
        self.log = log
        self.after_s = after_s
        self._timer = None
        self._start = 0.0
        self._announced = threading.Event()

    def _announce(self):
        self._announced.set()
        self.log(f"{self.what}...")

    def start(self):
        self._start = time.monotonic()
        self._announced.clear()
        self._timer = threading.Timer(self.after_s, self._announce)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self):
        if self._timer is None:
            return
        self._timer.cancel()
        self._timer.join()
        self._timer = None
        if self._announced.is_set():
            self.log(f"{self.what}: done in {time.monotonic() - self._start:.0f} s")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class EvaluationNotice(keras.callbacks.Callback):
    """A `SlowNotice` around every evaluation of a training (`label: evaluating ...`)."""

    def __init__(self, label: str, log, recalibrates: bool = False, after_s: float = SLOW_AFTER_S):
        super().__init__()
        what = "evaluating (batch-norm re-estimation, test set)" if recalibrates else "evaluating (test set)"
        self.notice = SlowNotice(f"{label}: {what}", log, after_s)

    def on_test_begin(self, logs=None):
        self.notice.start()

    def on_test_end(self, logs=None):
        self.notice.stop()
