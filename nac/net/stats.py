"""The featuremap statistic: read the branch taps, hand back `{branch_id: value}`.

What is measured. Each branch of an EnvelopeCell ends in a `nac.net.ops.FeaturemapTap`. By
default (`BuildOptions.branch_order="conv_bn_relu"`, the original code) the tap sits after
the ReLU and before the branch dropout, so dropout never changes the statistic. The tap
accumulates only in training mode, so it sees the featuremaps of the (augmented) training
batches the training loop feeds, with batch norm normalising each batch by its own
statistics. Over a *window* (the training steps since the last `reset()`), per branch:

* `l2` (default; the paper's and the original's "MeanSSS"): the mean over the window's
  images of the per-image mean over H, W, C of x**2, i.e. `l2_sum / images`.
* `variance` (the paper's alternative, never used by the original): per channel c,
  `var_c = channel_sq_sum_c / positions - (channel_sum_c / positions)**2` over all images and
  positions (H x W) of the window (clipped at 0 against rounding), then the mean over channels.
* `taylor` (Molchanov et al. 2016): the mean over the window's images of |sum over H, W, C of
  a * dl/da|, l the image's own cross-entropy (the tap accumulates the loss gradient of the
  mean over the global batch; `values()` multiplies by `global_batch_size` to undo the mean).

Scale. `values()` returns these per-image statistics. The original logged, for every step,
the running mean of the batch *sum* of per-image means, i.e. batch size x the l2 statistic.
`scaled()` multiplies by `global_batch_size` (the batch over all replicas and workers) to
give that scale; `stats.json`, `res.log` and `stats_series.json` hold values on it. With
equal batches this is exactly the original's number; a short last batch is weighted per
image, not per step. The scale is one constant, so the ranking of branches (what drives
construction) does not depend on it.

Distribution. Keras 3 implements `Variable.assign_add` as `assign(self + delta)`; with the
usual on-write variables (`add_weight(aggregation="sum")`) under MirroredStrategy every
replica's assignment is summed across replicas, and counts grow wrongly (2 replicas, 4 steps
of 50 images counted 750, not 200); `aggregation="mean"` halves them and
`"only_first_replica"` drops data. The taps therefore keep their sums in variables with
`synchronization="on_read"` and `aggregation="sum"`: each replica adds to its own copy with
no communication, and a read in cross-replica context returns the exact sum over replicas
(and workers). So:

* read in cross-replica context: call the hooks from Python in the training loop, never
  inside `strategy.run`. Values in a train step's `logs` are averaged over replicas, so the
  statistic is never taken from `logs`;
* every read goes through one `tf.function` that reads all accumulators at once. Under
  MultiWorkerMirroredStrategy each read is a collective all-reduce: every worker must call
  `values()` (hence `on_train_batch_end` with series recording, and `on_train_end`) at the
  same steps, which the deterministic schedule below guarantees;
* `reset()` assigns zero to every copy on every replica (local, no communication);
* the accumulators are model weights, so `model.get_weights()`, checkpoints and exports
  read them too: under MultiWorkerMirroredStrategy those are collectives as well, and every
  worker must make them at the same point (a chief-only `get_weights()` hangs or fails).

Batch-norm re-estimation passes also run in training mode; wrap the code that traces them in
`collection_disabled(model)`. The taps' `collect` flag is read when a function is traced
(and on every call in eager mode): a `tf.function` traced with collection on keeps
collecting whatever `collect` later says, and one traced inside `collection_disabled` never
collects.

Schedule of the callback: `on_train_begin` resets the accumulators and clears the series;
`on_train_batch_end(batch)` (batch = 0-based step index within the window) records the
running values when `(batch + 1) % series_every == 0`; `on_train_end` stores the final values
in `final`. This module uses no distribution API itself; the strategy is the caller's.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from nac.net import model as model_lib
from nac.net import tracing
from nac.net.divergence import Diverged
from nac.net.model import collection_disabled  # noqa: F401  (re-exported)
from nac.search import statsio
from nac.search.statsio import SERIES_FILE, SERIES_FORMAT, to_original_scale  # noqa: F401  (re-exported)
from nac.spec.checks import is_int, statistics_in_order
from nac.spec.errors import StatsError

# The accumulators each statistic needs, by attribute name on `FeaturemapTap`.
_ACCUMULATORS = {
    "l2": ("l2_sum", "images"),
    "variance": ("images", "channel_sum", "channel_sq_sum", "positions"),
    "taylor": ("images", "taylor_sum"),
}


def l2_statistic(l2_sum: float, images: float) -> float:
    """The mean over images of the per-image mean of x**2 (`l2_sum / images`)."""
    return float(l2_sum) / float(images)


def variance_statistic(channel_sum, channel_sq_sum, positions: float) -> float:
    """The mean over channels of each channel's variance over images and positions."""
    s = np.asarray(channel_sum, np.float64) / float(positions)
    sq = np.asarray(channel_sq_sum, np.float64) / float(positions)
    return float(np.mean(np.maximum(sq - s * s, 0.0)))


def _int_at_least(name, value, minimum):
    if not is_int(value):
        raise StatsError(f"{name}: got {value!r}; expected an integer >= {minimum}")
    if value < minimum:
        raise StatsError(f"{name}: got {value}; expected an integer >= {minimum}")
    return int(value)


class FeaturemapStatistics(keras.callbacks.Callback):
    """Resets and reads the featuremap taps of a model built by `nac.net.model.build_model`.

    Args:
      model: the model whose taps are read (built under the training strategy's scope).
      global_batch_size: images per training step over all replicas and workers; the
        original's scale factor (see `scaled`).
      statistics: the statistics collected, in `("l2", "variance")`; each must be
        accumulated by the taps (`BuildOptions.statistics`).
      series_every: record the running values every this many steps (0: never); the
        series behind the paper's Figure 2.
      on_record: called after every record with `(steps, {"l2": {branch: value}, ...})`
        (per-image values, all-reduced, so equal on every worker); when it returns True the
        callback sets `model.stop_training`, which ends training after that step (the
        stability stop, `nac.search.stopping`).

    Attributes:
      final: per-image values at `on_train_end` (`{"l2": {branch: value}, ...}`), else None.

    Raises:
      StatsError: the model has no taps, or an argument is invalid.
    """

    def __init__(
        self,
        model: keras.Model,
        global_batch_size: int,
        statistics=("l2",),
        series_every: int = 0,
        on_record=None,
    ):
        super().__init__()
        self.on_record = on_record
        self.global_batch_size = _int_at_least("global_batch_size", global_batch_size, 1)
        self.series_every = _int_at_least("series_every", series_every, 0)
        self.statistics = statistics_in_order(statistics, StatsError)
        self._taps = model_lib.taps(model)
        if not self._taps:
            raise StatsError(
                f"model {model.name!r} has no featuremap taps; build it with nac.net.model.build_model"
            )
        for branch, tap in self._taps.items():
            missing = [s for s in self.statistics if s not in tap.statistics]
            if missing:
                raise StatsError(
                    f"statistics: {missing} requested but the tap of {branch} accumulates "
                    f"only {list(tap.statistics)}; build the model with "
                    f"BuildOptions(statistics={self.statistics})"
                )
        self._names = tuple(dict.fromkeys(n for s in self.statistics for n in _ACCUMULATORS[s]))
        self._read_fn = tracing.own_function(self._read_graph, autograph=False)
        self._reset_fn = tracing.own_function(self._reset_graph, autograph=False)
        self.set_model(model)
        self.final = None
        self._clear_series()

    # -- reading and resetting -------------------------------------------------------------

    def _read_graph(self):
        return {
            branch: {n: tf.convert_to_tensor(getattr(tap, n)) for n in self._names}
            for branch, tap in self._taps.items()
        }

    def _reset_graph(self):
        # Assign to the backend variable with read_value=False: Keras' `assign` reads the
        # result back, and a cross-replica read of an on-read variable is an all-reduce
        # (one collective per accumulator under MultiWorkerMirroredStrategy).
        for tap in self._taps.values():
            for variable in tap.accumulators():
                variable.value.assign(tf.zeros(variable.shape, variable.dtype), read_value=False)

    def reset(self):
        """Zeroes every accumulator of every tap (on every replica): a new window starts."""
        self._reset_fn()

    def totals(self) -> dict[str, dict[str, np.ndarray]]:
        """The window's raw sums, summed over replicas and workers, as float64 arrays.

        Returns `{branch: {"l2_sum": ..., "images": ..., ...}}` with the accumulators the
        collected statistics need. Under MultiWorkerMirroredStrategy every worker must call
        it at the same point.
        """
        read = self._read_fn()
        return {
            branch: {n: np.asarray(t.numpy(), np.float64) for n, t in sums.items()}
            for branch, sums in read.items()
        }

    def values(self) -> dict[str, dict[str, float]]:
        """The window's per-image statistics: `{"l2": {branch: value}, "variance": {...}}`.

        Only the collected statistics appear; branches are in network order.

        Raises:
          StatsError: a branch saw no images since the last reset.
          Diverged: a sum is not finite (the featuremaps overflowed or hold NaN).
        """
        totals = self.totals()
        empty = [b for b, sums in totals.items() if not sums["images"] > 0]
        if empty:
            shown = ", ".join(empty[:3]) + (", ..." if len(empty) > 3 else "")
            raise StatsError(
                f"featuremap statistic: {len(empty)} branch(es) ({shown}) saw no training "
                "images since the last reset; run training steps (model called with "
                "training=True, taps collecting) before reading"
            )
        bad = [b for b, sums in totals.items() if not all(np.isfinite(v).all() for v in sums.values())]
        if bad:
            value = next(v for s in totals[bad[0]].values() for v in np.ravel(s) if not np.isfinite(v))
            raise Diverged(f"featuremap statistic of {', '.join(bad[:3])}", float(value))
        out: dict[str, dict[str, float]] = {}
        if "l2" in self.statistics:
            out["l2"] = {b: l2_statistic(s["l2_sum"], s["images"]) for b, s in totals.items()}
        if "variance" in self.statistics:
            out["variance"] = {
                b: variance_statistic(s["channel_sum"], s["channel_sq_sum"], s["positions"])
                for b, s in totals.items()
            }
        if "taylor" in self.statistics:
            per_image = float(self.global_batch_size)  # undoes the loss's mean over the batch
            out["taylor"] = {
                b: per_image * l2_statistic(s["taylor_sum"], s["images"]) for b, s in totals.items()
            }
        return out

    def scaled(self, values=None) -> dict[str, dict[str, float]]:
        """`values` (default: `values()`) on the original's scale: global batch size x value."""
        if values is None:
            values = self.values()
        return statsio.to_original_scale(values, self.global_batch_size)

    # -- series ------------------------------------------------------------------------------

    def _clear_series(self):
        self._series = statsio.Series(self.statistics, self._taps)

    def record(self, step: int):
        """Appends the running values after `step` steps of the window to the series."""
        current = self.values()
        self._series.append(step, current)
        if self.on_record is not None and self.on_record(int(step), current):
            self.model.stop_training = True

    def series_of(self, metric: str = "l2") -> dict:
        """`{"steps": [...], "values": {branch: [...]}}` of `metric`, on the original's scale.

        `steps` counts the window's steps completed when each value was recorded.
        """
        return self._series.of(metric, self.global_batch_size)

    @property
    def series(self) -> dict:
        """The series of the first collected statistic (`l2` unless only `variance`)."""
        return self.series_of(self.statistics[0])

    # -- Keras callback hooks ---------------------------------------------------------------

    def on_train_begin(self, logs=None):
        """Starts a window: zeroes the accumulators and clears the series and `final`."""
        self.reset()
        self._clear_series()
        self.final = None

    def on_train_batch_end(self, batch, logs=None):
        """Records the series when `(batch + 1) % series_every == 0` (batch is 0-based)."""
        if self.series_every and (batch + 1) % self.series_every == 0:
            self.record(batch + 1)

    def on_train_end(self, logs=None):
        """Stores the window's final per-image values in `final`."""
        self.final = self.values()

    # -- files -------------------------------------------------------------------------------

    def write(self, directory, metric: str = "l2", values=None, logged=None):
        """Writes `stats.json`, `res.log` and `stats_series.json` into `directory`
        (`statsio.write_step_statistics`). Reads nothing from the model, so under several
        workers the chief alone may call it.

        Args:
          directory: the iteration's directory (created if missing).
          metric: the statistic in `stats.json`; must be in `values`.
          values: per-image values to write (default: `final`); may add criteria the taps
            do not collect (`{"l1_kernel": {branch: value}}`).
          logged: the statistics `res.log` and `stats_series.json` hold (default: all
            collected); the series holds only the collected ones among them.

        Raises:
          StatsError: `metric` has no values (neither collected nor given).
          RuntimeError: no `values` given and `on_train_end` has not run.
        """
        if values is None:
            values = self.final
        if values is None:
            raise RuntimeError(
                "FeaturemapStatistics.write: no final values; call on_train_end() first or pass values"
            )
        if metric not in values:
            raise StatsError(
                f"metric: got {metric!r}; this callback collects {list(self.statistics)} and no "
                f"values of {metric!r} were given"
            )
        if logged is not None:
            values = {s: values[s] for s in values if s in logged or s == metric}
        series = self._series
        kept = tuple(s for s in series.statistics if logged is None or s in logged)
        if kept != series.statistics:
            series = series.subset(kept)
        # A driving criterion the taps do not record has no series: the series file keeps l2's.
        series_metric = metric if metric in series.statistics else series.statistics[0]
        statsio.write_step_statistics(directory, values, series, series_metric, self.global_batch_size)
        if series_metric != metric:
            statsio.write_stats(directory, self.scaled(values), metric)
