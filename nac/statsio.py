"""Featuremap statistics on disk: `stats.json` and the original's `res.log` (no TensorFlow).

Both files hold values on the original's scale: global batch size x statistic.

* `stats.json`: a flat JSON object `{"Cell<k>/<BranchKey>": value}` of the statistic that
  drives the construction.
* `res.log`: lines `MeanSSS:Cell<k>/<BranchKey>:[value]` (the l2 statistic) and, when the
  variance is collected, `Variance:Cell<k>/<BranchKey>:[value]`. When reading, a line may carry
  TensorFlow's log prefix (`2018-06-01 12:00:00.000001: I tensorflow/...] MeanSSS:...`),
  other lines are ignored, and the last value per branch wins.
"""

from __future__ import annotations

import json
import math
import re

from nac import arch as arch_lib
from nac.choices import STATISTICS
from nac.errors import StatsError
from nac.jsonio import parse_json, read_text, write_atomic, write_json

LOG_TAGS = {"l2": "MeanSSS", "variance": "Variance"}
_LINE_RE = re.compile(r"(MeanSSS|Variance):(Cell[0-9]+/Branch[0-9]+):\[([^\]]*)\]\s*$")


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
    """Formats `{"l2": {branch: value}, "variance": {...}}` as res.log lines, branch-major."""
    lines = []
    branches = next(iter(values.values())).keys() if values else []
    for branch in branches:
        for metric in STATISTICS:
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
