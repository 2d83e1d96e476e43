"""Featuremap statistics on disk: `stats.json` and the original's `res.log` (no TensorFlow).

Both files hold values on the original's scale: global batch size x statistic.

* `stats.json`: a flat JSON object `{"Cell<k>/<BranchKey>": value}` of the statistic that
  drives the construction.
* `res.log`: lines `MeanSSS:Cell<k>/<BranchKey>:[value]` (the l2 statistic) and, when the
  variance drives the construction, `Variance:Cell<k>/<BranchKey>:[value]`; with another
  driving criterion, its tag (`nac.search.criteria`: Taylor, L1Kernel, Random, Snip,
  Oracle) in place of Variance. When reading, a line may carry
  TensorFlow's log prefix (`2018-06-01 12:00:00.000001: I tensorflow/...] MeanSSS:...`),
  other lines are ignored, and the last value per branch wins.
"""

from __future__ import annotations

import json
import math
import os
import re

from nac.search import criteria
from nac.spec import arch as arch_lib
from nac.spec.errors import StatsError
from nac.spec.jsonio import parse_json, read_text, write_atomic, write_json

LOG_TAGS = {name: c.log_tag for name, c in criteria.REGISTRY.items()}  # l2 MeanSSS, ...
_LINE_RE = re.compile(r"([A-Za-z0-9]+):(Cell[0-9]+/Branch[0-9]+):\[([^\]]*)\]\s*$")


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StatsError(f"{where}: got {json.dumps(value)}; expected a number")
    if not math.isfinite(value):
        raise StatsError(f"{where}: got {value}; expected a finite number")
    return float(value)


def parse_stats_json(value, source: str = "stats") -> dict[str, float]:
    """Validates a decoded `stats.json` object."""
    if not isinstance(value, dict):
        raise StatsError(f'{source}: expected a JSON object {{"Cell1/Branch1": value, ...}}')
    out = {}
    for key, v in value.items():
        try:
            arch_lib.BranchId.parse(key, f"{source} key")
        except Exception as e:  # SpecError
            raise StatsError(str(e)) from None
        out[key] = _number(v, f"{source}[{key!r}]")
    return out


def parse_res_log(text: str, metric: str = "l2", source: str = "res.log") -> dict[str, float]:
    """Reads the last value per branch of `metric` (`l2` -> MeanSSS, `variance` -> Variance)."""
    tag = LOG_TAGS[metric]
    out: dict[str, float] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _LINE_RE.search(line)
        if not match or match.group(1) != tag:
            continue
        raw = match.group(3).strip()
        try:
            value = float(raw)
        except ValueError:
            raise StatsError(
                f"{source} line {lineno}: got {raw!r} for {match.group(2)}; expected a number"
            ) from None
        out[match.group(2)] = _number(value, f"{source} line {lineno}")
    if not out:
        raise StatsError(f"{source}: no {tag}:Cell<k>/Branch<N>:[value] lines found")
    return out


def read_stats(path, metric: str = "l2") -> dict[str, float]:
    """Reads statistics from a `stats.json` object or an original `res.log`.

    Raises:
      StatsError: the file is missing, unreadable, or holds malformed values.
    """
    if metric not in LOG_TAGS:
        raise StatsError(f"metric: got {metric!r}; expected one of {sorted(LOG_TAGS)}")
    text = read_text(path, StatsError, "statistics file", "a stats.json or res.log file")
    if text.lstrip().startswith(("{", "[")):  # JSON (a list is refused as the wrong shape)
        return parse_stats_json(parse_json(text, path, StatsError, "statistics file"), str(path))
    return parse_res_log(text, metric, str(path))


def format_res_log(values: dict[str, dict[str, float]]) -> str:
    """Formats `{"l2": {branch: value}, "variance": {...}}` as res.log lines, branch-major,
    criteria in registry order (`l2` MeanSSS, `variance` Variance, then the others' tags)."""
    lines = []
    branches = next(iter(values.values())).keys() if values else []
    for branch in branches:
        for metric in criteria.NAMES:
            if metric in values:
                lines.append(f"{LOG_TAGS[metric]}:{branch}:[{float(values[metric][branch])!r}]")
    return "\n".join(lines) + "\n"


def write_stats(directory, values: dict[str, dict[str, float]], metric: str = "l2"):
    """Writes `stats.json` (the `metric` that drives construction) and `res.log` into `directory`.

    Args:
      directory: the iteration's directory.
      values: `{"l2": {branch: value}, "variance": {...}}`, on the original's scale.
      metric: which statistic drives the construction.
    """
    write_json(f"{directory}/stats.json", values[metric])
    write_atomic(f"{directory}/res.log", format_res_log(values))


# -- the series and the per-step files --------------------------------------------------------

SERIES_FILE = "stats_series.json"
SERIES_FORMAT = "nac-stats-series/1"


def to_original_scale(
    values: dict[str, dict[str, float]], global_batch_size: int
) -> dict[str, dict[str, float]]:
    """Multiplies every statistic by the global batch size (the original's log scale)."""
    return {
        metric: {b: global_batch_size * v for b, v in per_branch.items()}
        for metric, per_branch in values.items()
    }


class Series:
    """The running per-image values of the collected statistics, recorded during a window
    (the series behind the paper's Figure 2): `append(step, {"l2": {branch: value}, ...})`."""

    def __init__(self, statistics, branches):
        self.statistics = tuple(statistics)
        self.steps: list[int] = []
        self._values = {s: {b: [] for b in branches} for s in self.statistics}

    def append(self, step: int, values: dict[str, dict[str, float]]) -> None:
        self.steps.append(int(step))
        for metric, per_branch in values.items():
            for branch, value in per_branch.items():
                self._values[metric][branch].append(value)

    def subset(self, statistics) -> Series:
        """A copy holding only `statistics` (a subset of this series')."""
        out = Series(statistics, [])
        out.steps = list(self.steps)
        out._values = {s: {b: list(v) for b, v in self._values[s].items()} for s in statistics}
        return out

    def of(self, metric: str, scale: float = 1) -> dict:
        """`{"steps": [...], "values": {branch: [...]}}` of `metric`, each value times `scale`."""
        if metric not in self._values:
            raise StatsError(f"metric: got {metric!r}; this callback collects {list(self.statistics)}")
        return {
            "steps": list(self.steps),
            "values": {b: [scale * v for v in vs] for b, vs in self._values[metric].items()},
        }


def write_step_statistics(directory, values, series: Series, metric: str, global_batch_size: int) -> None:
    """Writes `stats.json`, `res.log` and `stats_series.json` of one trained step.

    All three hold values on the original's scale (global batch size x per-image statistic).
    `stats.json` holds `metric`, the statistic that drives construction; `res.log` every
    collected statistic (MeanSSS / Variance lines); `stats_series.json` is `{"format",
    "metric", "scale", "batch_size", "statistics", "steps", "values", "by_statistic"}` where
    `values` is the series of `metric` keyed by branch id and `by_statistic` maps every
    collected statistic to its series.

    Raises:
      StatsError: `metric` is not collected.
    """
    if metric not in series.statistics:
        raise StatsError(f"metric: got {metric!r}; this callback collects {list(series.statistics)}")
    directory = os.fspath(directory)
    write_stats(directory, to_original_scale(values, global_batch_size), metric)
    by_statistic = {s: series.of(s, global_batch_size)["values"] for s in series.statistics}
    write_json(
        os.path.join(directory, SERIES_FILE),
        {
            "format": SERIES_FORMAT,
            "metric": metric,
            "scale": "global_batch_size x per-image statistic",
            "batch_size": global_batch_size,
            "statistics": list(series.statistics),
            "steps": list(series.steps),
            "values": by_statistic[metric],
            "by_statistic": by_statistic,
        },
    )
