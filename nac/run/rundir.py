"""The run directory of `python -m nac.construct`: writing it (`RunDir`) and reading it back
(`load_runs`). No TensorFlow is imported.

Writing. Layout of `RUN/`:
  `config.json`   the resolved configuration in the original's v2.0 schema
  `run_config.json`, `flags.txt`   nac's full resolved configuration and the exact flags
  `iter_<i>/`, `final/`, `random_<j>/`   one directory per trained network
  `summary.json`  what the paper's Table 1 needs (rewritten after every finished step)
The records' schemas (`metrics.json`, `summary.json`, the cost fields) are defined once, in
`nac.run.schema`; the statistic files are `nac.search.statsio`'s.

A step's directory is built under a hidden staging name (`.iter_1.partial-<pid>`) and renamed
into place only when every file in it is written, so `RUN/iter_1/` exists if and only if
iteration 1 finished. Staging directories left by a killed process, or by a step whose write
failed (disk full), are discarded on the next start (which holds the run's lock,
`nac.run.lock`). Single files are written with `nac.spec.jsonio.write_atomic`.

Reading. `load_runs(paths)` reads each directory once into a `Run`: its role (constructed, worst_case,
envelope, random, oneshot), `summary.json` when it exists, `config.json`, and one `Step` per
finished step directory (`iter_<i>`, `final`, `random_<j>`) with its `metrics.json`,
`network.json`, `stats.json` and `stats_series.json`. Step directories still being written
(`.partial-*`) are ignored with a note. Disagreements between `summary.json` and a step's
`metrics.json` become warnings and notes; anything that cannot be read is a `RunError` naming
the file. No TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import sys
import tempfile

from nac.run.schema import SUMMARY, SUMMARY_FORMAT, SUMMARY_STEP_FIELDS  # noqa: F401  (re-exported)
from nac.search import statsio
from nac.spec import arch as arch_lib
from nac.spec.config import OriginalConfig
from nac.spec.errors import RunError, WriteError
from nac.spec.jsonio import load_json, write_json

PARTIAL = ".partial-"


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


ROLES = ("envelope", "constructed", "worst_case", "random", "oneshot")

ROLE_LABELS = {
    "envelope": "Envelope",
    "constructed": "Constructed",
    "worst_case": "Worst case",
    "random": "Random",
    "oneshot": "Oneshot",
}

CONSTRUCTION_ROLES = ("constructed", "worst_case")

_STEP_RE = re.compile(r"^(iter|random)_([0-9]+)$")


class Inconsistent(RunError):
    """A run's files disagree with each other (e.g. a branch without a statistic)."""


def warn(message: str):
    """One warning line on stderr, prefixed like the report's other messages."""
    print(f"nac.report: warning: {' '.join(str(message).split())}", file=sys.stderr)


@dataclasses.dataclass
class Step:
    """One trained network of a run (`iter_<i>`, `final` or `random_<j>`)."""

    name: str
    path: str
    metrics: dict
    row: dict  # the summary.json step row, else the metrics' Table 1 fields
    network_list: list | None = None  # network.json (the original's list format)
    stats: dict | None = None
    series: dict | None = None

    def body(self):
        return (
            None
            if self.network_list is None
            else arch_lib.body_from_original(self.network_list, f"{self.path}/network.json")
        )


@dataclasses.dataclass
class Run:
    """A run directory as far as it got."""

    path: str
    role: str
    mode: str
    dataset: str
    seed: int | None
    iterations: int
    summary: dict | None
    config: OriginalConfig | None
    steps: dict  # name -> Step, finished steps in plan order
    label: str = ""
    file_label: str = ""
    notes: list = dataclasses.field(default_factory=list)
    origin: str = "nac"  # or "original": a results folder of the original (nac.reporting.original_results)
    run_config: dict = dataclasses.field(default_factory=dict)  # run_config.json; {} without one

    @property
    def complete(self) -> bool:
        return bool(self.summary and self.summary.get("complete"))

    def iteration_steps(self) -> list[tuple[int, Step]]:
        return sorted(
            (int(name.split("_")[1]), step) for name, step in self.steps.items() if name.startswith("iter_")
        )

    def trained_nets(self) -> list[Step]:
        """The networks that enter Table 1 and Figure 3 (final, or every random net)."""
        if self.role == "random":
            return [s for n, s in self.steps.items() if n.startswith("random_")]
        return [self.steps["final"]] if "final" in self.steps else []

    def cell_size(self) -> int | None:
        if self.config is not None and self.config.envelopenet is not None:
            return len(self.config.envelopenet.envelopecell)
        return None


def _load(path, what):
    return load_json(path, RunError, what)


def _require(value: dict, key: str, where: str, kind=None):
    if not isinstance(value, dict) or key not in value:
        raise RunError(f"{where}: no {key!r} field; the file is not one nac.construct wrote")
    if kind is not None and not isinstance(value[key], kind):
        raise RunError(f"{where}: {key!r} is {value[key]!r}; the file is not one nac.construct wrote")
    return value[key]


def _role_from_run_config(rc: dict) -> str:
    mode = rc.get("mode")
    if mode == "construct":
        return "worst_case" if rc.get("worstcase") else "constructed"
    if mode == "random":
        return "random"
    return "oneshot" if rc.get("arch") or rc.get("config_network") else "envelope"


# Fields that runs of an older nac do not have (their `flops_per_image` is the forward count).
OPTIONAL_FIELDS = ("flops_forward_per_image", "flops_training_per_image")
# Everything `summary.json` lists per step except the throughput, which the table does not use.
_TABLE_FIELDS = tuple(f for f in SUMMARY_STEP_FIELDS if f != "images_per_sec" and f not in OPTIONAL_FIELDS)


_NUMBER = (int, float)


def _check_row(row: dict, where: str):
    for key in _TABLE_FIELDS + tuple(k for k in OPTIONAL_FIELDS if k in row):
        value = _require(row, key, where)
        if key not in ("name", "notation") and (isinstance(value, bool) or not isinstance(value, _NUMBER)):
            raise RunError(f"{where}: {key!r} is {value!r}, not a number; the file is corrupt")


def _step_order(name: str):
    m = _STEP_RE.match(name)
    return (0, int(m.group(2))) if m else (1, 0)


def load_run(path) -> Run:
    """Reads one run directory (see the module docstring for what may be missing).

    Raises:
      RunError: `path` is not a run directory, or one of its JSON files is corrupt.
    """
    path = os.fspath(path)
    has_summary, has_run_config = _check_run_dir(path)
    notes = []
    summary = _read_summary(path) if has_summary else None
    if summary is None:
        notes.append("no summary.json (killed before its first step finished, or removed)")
    rc = _load(os.path.join(path, "run_config.json"), "run config") if has_run_config else None
    if rc is not None and not isinstance(rc, dict):
        raise RunError(f"{path}/run_config.json: expected a JSON object")
    source = summary if summary is not None else rc
    where = f"{path}/{'summary.json' if summary is not None else 'run_config.json'}"
    mode = _require(source, "mode", where, str)
    role = summary["role"] if summary is not None else _role_from_run_config(rc)
    if role not in ROLES:
        raise RunError(f"{where}: role {role!r}; expected one of {', '.join(ROLES)}")
    dataset = _require(source, "dataset", where, str)
    iterations = _require(source, "iterations", where, int) if mode == "construct" else 0
    config = None
    if os.path.isfile(os.path.join(path, "config.json")):
        config = OriginalConfig.load(os.path.join(path, "config.json"))
    rows = {r["name"]: r for r in summary["steps"]} if summary is not None else {}
    steps = {}
    for name in sorted((n for n in os.listdir(path) if (_STEP_RE.match(n) or n == "final")), key=_step_order):
        step = _read_step(path, name, rows.get(name), summary is not None, notes)
        if step is not None:
            steps[name] = step
    for name in sorted(os.listdir(path)):
        if name.startswith(".") and ".partial-" in name:
            notes.append(f"{name}/ is a step in progress or an interrupted one; ignored")
    for name in rows:
        if name not in steps:
            notes.append(f"summary.json lists {name}, but {name}/ is missing; left out")
    seed = source.get("seed")
    return Run(
        path, role, mode, dataset, seed, iterations, summary, config, steps, notes=notes, run_config=rc or {}
    )


def _check_run_dir(path: str) -> tuple[bool, bool]:
    """Whether the run directory has a summary.json and a run_config.json (one at least)."""
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a directory"
        raise RunError(f"{path!r} {what}; pass run directories written by python -m nac.construct")
    has_summary = os.path.isfile(os.path.join(path, SUMMARY))
    has_run_config = os.path.isfile(os.path.join(path, "run_config.json"))
    if not has_summary and not has_run_config:
        raise RunError(
            f"{path!r} is not a run directory (no summary.json or run_config.json); "
            "pass directories written by python -m nac.construct"
        )
    return has_summary, has_run_config


def _read_summary(path: str) -> dict:
    summary = _load(os.path.join(path, SUMMARY), "summary")
    where = f"{path}/summary.json"
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT:
        raise RunError(f'{where}: expected an object with "format": "{SUMMARY_FORMAT}"')
    for i, row in enumerate(_require(summary, "steps", where, list)):
        _check_row(row, f"{where} steps[{i}]")
    return summary


def _read_step(path: str, name: str, row: dict | None, has_summary: bool, notes: list[str]) -> Step | None:
    """One finished step (`iter_k/` or `final/`) with its summary row; None when unfinished."""
    step_dir = os.path.join(path, name)
    if not os.path.isfile(os.path.join(step_dir, "metrics.json")):
        notes.append(f"{name}/ has no metrics.json; skipped")
        return None
    metrics = _load(os.path.join(step_dir, "metrics.json"), "metrics file")
    _check_row(metrics, f"{step_dir}/metrics.json")
    _require(metrics, "history", f"{step_dir}/metrics.json", list)
    if row is None:
        row = {k: metrics[k] for k in _TABLE_FIELDS + OPTIONAL_FIELDS if k in metrics}
        if has_summary:
            notes.append(f"{name} is not in summary.json; its numbers come from {name}/metrics.json")
    else:
        for key in ("test_error", "trainable_params", "flops_per_batch_50", "notation"):
            if row[key] != metrics[key]:
                message = (
                    f"summary.json says {name} {key} = {row[key]!r}, {name}/metrics.json {metrics[key]!r}"
                )
                warn(f"{path}: {message}")
                notes.append(message)
    for h in metrics["history"]:
        if not isinstance(h, dict) or not all(
            isinstance(h.get(k), _NUMBER) and not isinstance(h.get(k), bool)
            for k in ("step", "test_accuracy")
        ):
            raise RunError(
                f"{step_dir}/metrics.json: history entry {h!r} lacks a numeric step or test_accuracy"
            )
    step = Step(name, step_dir, metrics, row)
    for attr, file in (
        ("network_list", "network.json"),
        ("stats", "stats.json"),
        ("series", "stats_series.json"),
    ):
        if os.path.isfile(os.path.join(step_dir, file)):
            setattr(step, attr, _load(os.path.join(step_dir, file), file))
    if step.stats is not None:
        step.stats = statsio.parse_stats_json(step.stats, f"{step_dir}/stats.json")
    if step.series is not None:
        series_values(step, f"{step_dir}/stats_series.json")
    return step


def _labels(paths) -> list[str]:
    """Short unique labels: the fewest trailing path components that tell runs apart."""
    parts = [os.path.normpath(os.path.abspath(p)).split(os.sep) for p in paths]
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [os.path.abspath(p) for p in paths]


def file_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "run"


def load_runs(paths) -> tuple[list[Run], list[str]]:
    """Loads every run directory once (in the given order) and labels them uniquely."""
    if not paths:
        raise RunError("no run directories given; pass RUN_DIR... written by python -m nac.construct")
    seen, unique, notes = set(), [], []
    for p in paths:
        real = os.path.realpath(p)
        if real in seen:
            notes.append(f"{p} given twice; read once")
            continue
        seen.add(real)
        unique.append(p)
    runs = [load_run(p) for p in unique]
    used = set()
    for run, label in zip(runs, _labels(unique)):
        run.label = label
        run.file_label = file_label(label)
        while run.file_label in used:
            run.file_label += "_"
        used.add(run.file_label)
    return runs, notes


def series_values(step: Step, where: str):
    """(steps, {branch: values}, batch_size, statistic) of a step's stats_series.json (the
    file's key for the statistic's name is "metric")."""
    s = step.series
    steps = _require(s, "steps", where, list)
    values = _require(s, "values", where, dict)
    batch = _require(s, "batch_size", where, int)
    numbers = [v for vs in values.values() if isinstance(vs, list) for v in vs] + steps
    if any(isinstance(v, bool) or not isinstance(v, _NUMBER) for v in numbers):
        raise RunError(f"{where}: a step or value is not a number; the file is corrupt")
    for branch, vs in values.items():
        if not isinstance(vs, list) or len(vs) != len(steps):
            raise RunError(f"{where}: {branch} has {vs!r}; expected {len(steps)} numbers")
    return steps, values, batch, s.get("metric", "l2")
