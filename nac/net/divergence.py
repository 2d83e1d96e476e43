"""Divergence: a non-finite loss or statistic stops the run with one line (NumPy, no TensorFlow).

The training loop calls these checks where the host reads its numbers: the training loss
after each device call (`check_loss`), the evaluation metrics (`checked_metrics`), the
re-estimated batch-norm statistics (`float32_or_raise`, which also keeps NumPy's "overflow
encountered in cast" warning from printing), and the featuremap statistic (`nac.net.stats`).

With mixed precision, Keras' loss-scale optimizer skips a step whose scaled gradients are not
finite and lowers the scale; that is not divergence. The loss the host reads is the unscaled
float32 cross-entropy of the batch, computed before the gradients, so a skipped step usually
shows a finite loss here and does not trip the check. A non-finite loss means the forward pass
itself overflowed or the weights hold NaN: in float32 training cannot recover from that; with
mixed precision the step is skipped too, so only a non-finite loss that persists
(`LossWatch`) is divergence.

`nac.run.runner` adds the step's name and the learning rate, writes nothing for that step and
exits with status 3; finished steps are kept.
"""

from __future__ import annotations

import math

import numpy as np

from nac.spec.errors import NacError


class Diverged(NacError):
    """A loss or statistic went non-finite during training.

    Attributes:
      what: what went non-finite (e.g. `training loss`, `featuremap statistic of Cell1/Branch2`).
      value: the value read (nan, inf or -inf).
      step: the training step (1-based) after which it was read, if known.
      step_name: the run's step (`iter_1`, `final`), set by the runner.
      learning_rate: the run's --learning_rate, set by the runner.
    """

    exit_code = 3

    def __init__(self, what: str, value: float, step: int | None = None):
        super().__init__(what)
        self.what = what
        self.value = value
        self.step = step
        self.step_name: str | None = None
        self.learning_rate: float | None = None

    def __str__(self) -> str:
        where = f"{self.step_name}: " if self.step_name else ""
        at = f" at training step {self.step}" if self.step is not None else ""
        lr = f" (now {self.learning_rate:g})" if self.learning_rate is not None else ""
        return (
            f"{where}training diverged{at}: the {self.what} is {self.value}; nothing was written "
            f"for this step and finished steps are kept; lower --learning_rate{lr} and rerun "
            "with --force (a changed flag needs it), or use another --run_dir"
        )


def _bad(value) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return True


def check_loss(step: int, loss_sum: float, regularization: float = 0.0):
    """Raises `Diverged` if the training loss (or its weight-decay term) read after `step` is not finite."""
    if _bad(loss_sum):
        raise Diverged("training loss", float(loss_sum), step)
    if _bad(regularization):
        raise Diverged("weight-decay loss", float(regularization), step)


# Under mixed precision, consecutive device calls with a non-finite training loss tolerated
# before it counts as divergence (see `LossWatch`).
MIXED_PRECISION_PATIENCE = 10


class LossWatch:
    """`check_loss` for a training loop. With mixed precision a non-finite loss is first taken
    for what the loss-scale optimizer makes of it, a skipped step (float16 activations can
    overflow where float32 would not; the weights are left as they were); only
    `MIXED_PRECISION_PATIENCE` consecutive reads of a non-finite loss are divergence. In
    float32 the first one is."""

    def __init__(self, mixed_precision: bool):
        self.patience = MIXED_PRECISION_PATIENCE if mixed_precision else 1
        self.bad_reads = 0

    def check(self, step: int, loss_sum: float, regularization: float = 0.0):
        self.bad_reads = self.bad_reads + 1 if _bad(loss_sum) else 0
        if 0 < self.bad_reads < self.patience:
            return
        check_loss(step, loss_sum, regularization)


def check_metrics(step: int, metrics: dict):
    """Raises `Diverged` if an evaluation loss (`test_loss`, `validation_loss`) is not finite."""
    for key, value in metrics.items():
        if key.endswith("_loss") and _bad(value):
            raise Diverged(f"evaluation {key.replace('_', ' ')}", float(value), step)


def checked_metrics(step: int, evaluate, *args, **kwargs) -> dict:
    """`evaluate(*args, **kwargs)` after `step` steps, with `check_metrics`; a `Diverged` raised while
    evaluating (batch-norm re-estimation) gets the step."""
    try:
        metrics = evaluate(*args, **kwargs)
    except Diverged as e:
        if e.step is None:
            e.step = step
        raise
    check_metrics(step, metrics)
    return metrics


def float32_or_raise(values, what: str, step: int | None = None) -> np.ndarray:
    """`values` cast to float32; raises `Diverged` if a value is not finite there.

    The cast happens with NumPy's overflow warning silenced: a value beyond float32's range is
    reported by this error instead of a RuntimeWarning with a source line.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values, np.float64).astype(np.float32)
    if not np.isfinite(out).all():
        first = out[~np.isfinite(out)].flat[0]
        raise Diverged(what, float(first), step)
    return out
