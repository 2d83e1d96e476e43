"""`python -m nac.report RUN_DIR... --out DIR`: the paper's Table 1 and Figures 2-4 from run dirs.

Reads run directories written by `python -m nac.construct` (any mix of roles: constructed,
worst_case, envelope, random, oneshot; complete or partial) and writes into DIR:

* `table1.md`, `table1.csv` - Table 1. One row per group of trained networks with equal
  (role, dataset, notation), in the paper's order (envelope, constructed, worst case, random,
  oneshot), giving n and mean ± std of parameters, FLOPs (per batch of 50, as the paper, and
  per image), test error (%) and, for constructed and worst-case rows, the construction cost
  in epochs and wall-clock time (from `summary.json`). A group's members are the `final`
  networks of construct and oneshot runs and every `random_<j>` net of random runs, so the
  random nets of a (dataset, notation) form one "Random (n nets)" row. The CSV holds the
  group rows (`row_type=group`) followed by one row per member net (`row_type=net`, with its
  run directory, step and seed), so individual random nets are listed there. Numbers are the
  runs' own (`summary.json` step rows, else the step's `metrics.json`); std is the sample
  standard deviation (ddof 1), 0 for a single member.
* `figure2_statistic.{png,svg}` - the running featuremap statistic of every branch against
  training steps, one panel per layer, for iteration `--iteration` (default 0) of the first
  constructed run (else the first worst-case run) that recorded a series. Values are
  `stats_series.json` divided by its batch size: the per-image mean squared activation, i.e.
  the squared l2 norm normalised by the featuremap size (the paper's Figure 2).
* `figure3_accuracy.{png,svg}` - test accuracy against steps of the final training, mean ±
  std band per role (constructed, envelope, worst case, random, oneshot), one panel per
  dataset. Members whose evaluation steps are identical are aggregated as they are; otherwise
  every curve is linearly interpolated onto the union of their steps inside the range that
  all of them cover (no extrapolation).
* `figure4_widths.{png,svg}` - mean ± std number of branches per layer of the final networks
  of the constructed runs, one panel per (dataset, initial notation). Layers are aligned by
  (stage, position in stage); a position that only some runs have averages over those runs.
* `arch_<run>_iter<i>.{png,svg}` - per construction iteration, the trained network with the
  branches that iteration pruned (hatched red) and the EnvelopeCell it appended (green),
  recomputed with `nac.restructure.restructure_with_report` from the iteration's
  `network.json`, `stats.json` and the run's `config.json`; when the result differs from the
  next step's `network.json` it is drawn anyway and a warning goes to stderr.
* `stability.{png,svg,json,md}` - featuremap stability: per iteration, Kendall's tau-b
  between the branch ranking at each recorded step and the ranking at the end of the
  iteration (`stats.json`), computed per stage (stages of < 2 branches, or whose ranking is
  all ties, are skipped) and averaged over stages weighted by branch count; the first
  recorded step from which tau stays >= `--stability_threshold` (0.9) for the rest of the
  iteration, and that step as a fraction of the iteration's steps.
* `report.md` (embeds the table, links the figures, lists notes) and `report.json` (every
  number above).

Partial runs are reported as far as they got: a run without `summary.json` is read from its
finished step directories; a construction without `final/` contributes its iterations to
Figure 2, the stability analysis and the architecture pictures but no Table 1 row; a run with
no finished step is skipped. Every figure without data is skipped with a note in `report.md`.
A path that is not a run directory, corrupt JSON, or no run directory at all is one line on
stderr and exit status 2. No TensorFlow is imported (matplotlib with the Agg backend draws).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import os
import re
import sys

import numpy as np

from nac import arch as arch_lib
from nac import cli, statsio
from nac import restructure as restructure_lib
from nac.artifacts import SUMMARY_STEP_FIELDS
from nac.config import OriginalConfig
from nac.errors import NacError, RunError
from nac.jsonio import load_json, write_atomic, write_json

PROG = "nac.report"

ROLES = ("envelope", "constructed", "worst_case", "random", "oneshot")
ROLE_LABELS = {
    "envelope": "Envelope",
    "constructed": "Constructed",
    "worst_case": "Worst case",
    "random": "Random",
    "oneshot": "Oneshot",
}
CONSTRUCTION_ROLES = ("constructed", "worst_case")
FIGURE3_ROLES = ("constructed", "envelope", "worst_case", "random", "oneshot")
DEFAULT_THRESHOLD = 0.9
_STEP_RE = re.compile(r"^(iter|random)_([0-9]+)$")


class Inconsistent(RunError):
    """A run's files disagree with each other (e.g. a branch without a statistic)."""


def _warn(message: str):
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Statistics helpers


def kendall_tau_b(x, y) -> float:
    """Kendall's rank correlation tau-b of two equally long sequences (ties allowed).

    tau_b = (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y)), n0 = n(n-1)/2,
    computed over all pairs with numpy. Returns NaN when either sequence is constant (or has
    fewer than two elements): the ranking says nothing there.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau_b: shapes {x.shape} and {y.shape}; expected two equal 1-D shapes")
    i, j = np.triu_indices(len(x), k=1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(y[i] - y[j])
    untied_x = np.count_nonzero(sx)
    untied_y = np.count_nonzero(sy)
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return float(np.sum(sx * sy) / math.sqrt(float(untied_x) * float(untied_y)))


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def stable_from(steps, taus, threshold: float):
    """The first recorded step from which every later tau is >= `threshold`, else None.

    NaN taus (no ranking) count as below the threshold.
    """
    start = None
    for step, tau in zip(steps, taus):
        if tau is not None and not math.isnan(tau) and tau >= threshold:
            if start is None:
                start = step
        else:
            start = None
    return start


def aggregate_curves(curves):
    """Mean ± std of curves `[(steps, values), ...]` on a common step grid.

    Identical step grids are used as they are (`method` "identical"). Otherwise each curve is
    linearly interpolated onto the union of all steps inside [max first step, min last step]
    ("interpolated"). Returns `(grid, mean, std, method)` or None if the curves share no range.
    """
    curves = [(np.asarray(s, np.float64), np.asarray(v, np.float64)) for s, v in curves if len(s)]
    if not curves:
        return None
    first = curves[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in curves):
        grid, stack, method = first, np.stack([v for _, v in curves]), "identical"
    else:
        lo = max(s[0] for s, _ in curves)
        hi = min(s[-1] for s, _ in curves)
        if lo > hi:
            return None
        grid = np.unique(np.concatenate([s[(s >= lo) & (s <= hi)] for s, _ in curves]))
        stack, method = np.stack([np.interp(grid, s, v) for s, v in curves]), "interpolated"
    std = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros(len(grid))
    return grid, stack.mean(axis=0), std, method


# ---------------------------------------------------------------------------------------
# Reading run directories


@dataclasses.dataclass
class Step:
    """One trained network of a run (`iter_<i>`, `final` or `random_<j>`)."""

    name: str
    path: str
    metrics: dict
    row: dict  # the summary.json step row, else the metrics' Table 1 fields
    arch: list | None = None  # network.json (original list format)
    stats: dict | None = None
    series: dict | None = None

    def body(self):
        return (
            None if self.arch is None else arch_lib.body_from_original(self.arch, f"{self.path}/network.json")
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


# Everything `summary.json` lists per step except the throughput, which the table does not use.
_TABLE_FIELDS = tuple(f for f in SUMMARY_STEP_FIELDS if f != "images_per_sec")
_NUMBER = (int, float)


def _check_row(row: dict, where: str):
    for key in _TABLE_FIELDS:
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
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a directory"
        raise RunError(f"{path!r} {what}; pass run directories written by python -m nac.construct")
    has_summary = os.path.isfile(os.path.join(path, "summary.json"))
    has_run_config = os.path.isfile(os.path.join(path, "run_config.json"))
    if not has_summary and not has_run_config:
        raise RunError(
            f"{path!r} is not a run directory (no summary.json or run_config.json); "
            "pass directories written by python -m nac.construct"
        )
    notes = []
    summary = None
    if has_summary:
        summary = _load(os.path.join(path, "summary.json"), "summary")
        where = f"{path}/summary.json"
        if not isinstance(summary, dict) or summary.get("format") != "nac-summary/1":
            raise RunError(f'{where}: expected an object with "format": "nac-summary/1"')
        for i, row in enumerate(_require(summary, "steps", where, list)):
            _check_row(row, f"{where} steps[{i}]")
    else:
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
    names = sorted(
        (n for n in os.listdir(path) if (_STEP_RE.match(n) or n == "final")),
        key=_step_order,
    )
    for name in names:
        step_dir = os.path.join(path, name)
        if not os.path.isfile(os.path.join(step_dir, "metrics.json")):
            notes.append(f"{name}/ has no metrics.json; skipped")
            continue
        metrics = _load(os.path.join(step_dir, "metrics.json"), "metrics file")
        _check_row(metrics, f"{step_dir}/metrics.json")
        _require(metrics, "history", f"{step_dir}/metrics.json", list)
        row = rows.get(name)
        if row is None:
            row = {k: metrics[k] for k in _TABLE_FIELDS}
            if summary is not None:
                notes.append(f"{name} is not in summary.json; its numbers come from {name}/metrics.json")
        else:
            for key in ("test_error", "trainable_params", "flops_per_batch_50", "notation"):
                if row[key] != metrics[key]:
                    message = (
                        f"summary.json says {name} {key} = {row[key]!r}, {name}/metrics.json {metrics[key]!r}"
                    )
                    _warn(f"{path}: {message}")
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
            ("arch", "network.json"),
            ("stats", "stats.json"),
            ("series", "stats_series.json"),
        ):
            if os.path.isfile(os.path.join(step_dir, file)):
                setattr(step, attr, _load(os.path.join(step_dir, file), file))
        if step.stats is not None:
            step.stats = statsio.parse_stats_json(step.stats, f"{step_dir}/stats.json")
        if step.series is not None:
            _series_values(step, f"{step_dir}/stats_series.json")
        steps[name] = step
    for name in sorted(os.listdir(path)):
        if name.startswith(".") and ".partial-" in name:
            notes.append(f"{name}/ is a step in progress or an interrupted one; ignored")
    for name in rows:
        if name not in steps:
            notes.append(f"summary.json lists {name}, but {name}/ is missing; left out")
    seed = source.get("seed")
    return Run(path, role, mode, dataset, seed, iterations, summary, config, steps, notes=notes)


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


# ---------------------------------------------------------------------------------------
# Table 1


@dataclasses.dataclass(frozen=True)
class NetResult:
    """One trained network that enters Table 1."""

    run: str
    run_dir: str
    step: str
    role: str
    dataset: str
    notation: str
    trainable_params: int
    flops_per_batch_50: float
    flops_per_image: float
    test_error: float
    seed: int | None
    construction_cost_epochs: float | None = None
    construction_cost_wall_time_s: float | None = None


def _construction_cost(run: Run):
    """(epochs, wall seconds) of a finished construction, from summary.json when it has them."""
    s = run.summary or {}
    if "construction_cost_epochs" in s and "construction_cost_wall_time_s" in s and run.complete:
        return s["construction_cost_epochs"], s["construction_cost_wall_time_s"], None
    steps = [run.steps[n] for n in run.steps if n.startswith("iter_") or n == "final"]
    note = f"{run.label}: construction cost summed over the steps' metrics.json (summary.json incomplete)"
    return (
        sum(st.row["epochs"] for st in steps),
        sum(st.row["wall_time_s"] for st in steps),
        note,
    )


def net_results(runs: list[Run], notes: list[str]) -> list[NetResult]:
    out = []
    for run in runs:
        nets = run.trained_nets()
        if not nets:
            if run.steps:
                notes.append(f"{run.label}: no final network yet ({run.role} run incomplete); not in Table 1")
            continue
        cost = (None, None)
        if run.role in CONSTRUCTION_ROLES:
            epochs, wall, note = _construction_cost(run)
            cost = (epochs, wall)
            if note:
                notes.append(note)
        for step in nets:
            r = step.row
            out.append(
                NetResult(
                    run=run.label,
                    run_dir=run.path,
                    step=step.name,
                    role=run.role,
                    dataset=run.dataset,
                    notation=r["notation"],
                    trainable_params=r["trainable_params"],
                    flops_per_batch_50=r["flops_per_batch_50"],
                    flops_per_image=r["flops_per_image"],
                    test_error=r["test_error"],
                    seed=step.metrics.get("seed"),
                    construction_cost_epochs=cost[0],
                    construction_cost_wall_time_s=cost[1],
                )
            )
    return out


_STAT_FIELDS = (
    "trainable_params",
    "flops_per_batch_50",
    "flops_per_image",
    "test_error_pct",
    "construction_cost_epochs",
    "construction_cost_wall_time_s",
)


def _net_value(net: NetResult, field: str):
    return 100.0 * net.test_error if field == "test_error_pct" else getattr(net, field)


def table_rows(nets: list[NetResult]) -> list[dict]:
    """Group rows of Table 1 (role, dataset, notation), in the paper's order."""
    groups: dict[tuple, list[NetResult]] = {}
    for net in nets:
        groups.setdefault((net.role, net.dataset, net.notation), []).append(net)
    rows = []
    for role, dataset, notation in sorted(groups, key=lambda k: (ROLES.index(k[0]), k[1], k[2])):
        members = groups[(role, dataset, notation)]
        label = ROLE_LABELS[role]
        if role == "random":
            label += f" ({len(members)} net{'s' if len(members) > 1 else ''})"
        row = {
            "network": label,
            "role": role,
            "dataset": dataset,
            "notation": notation,
            "n": len(members),
            "runs": sorted({m.run for m in members}),
            "members": [f"{m.run}:{m.step}" for m in members],
        }
        for field in _STAT_FIELDS:
            values = [_net_value(m, field) for m in members]
            if any(v is None for v in values):
                row[field] = None
                continue
            mean, std = mean_std(values)
            row[field] = {"mean": mean, "std": std, "values": values}
        rows.append(row)
    return rows


def _si(x: float) -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{suffix}"
    return f"{x:.3g}"


def _fmt(stat, fmt, n) -> str:
    if stat is None:
        return ""
    text = fmt(stat["mean"])
    if n > 1 and stat["std"] > 0:
        text += f" ± {fmt(stat['std'])}"
    return text


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _cost_text(row, runs_by_label) -> str:
    stat = row["construction_cost_epochs"]
    if stat is None:
        return ""
    text = _fmt(stat, lambda v: f"{v:.4g}", row["n"])
    # The paper's form N*f+final when every run of the row shares it.
    forms = set()
    for label in row["runs"]:
        s = runs_by_label[label].summary or {}
        if "construction_epochs_per_iteration" in s and runs_by_label[label].complete:
            forms.add((s["iterations"], s["construction_epochs_per_iteration"], s["final_epochs"]))
    if len(forms) == 1:
        n_it, per, final = forms.pop()
        text = f"{n_it}×{per:.3g}+{final:.3g} = {text}"
    return text


TABLE_HEADER = (
    "Network",
    "Dataset",
    "Specification",
    "Params",
    "FLOPs / batch of 50",
    "FLOPs / image",
    "Test error (%)",
    "Construction cost (epochs)",
    "Construction wall time",
    "n",
)


def table_markdown(rows, runs_by_label) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "|".join(["---"] * len(TABLE_HEADER)) + "|"]
    for r in rows:
        n = r["n"]
        cells = [
            r["network"],
            r["dataset"],
            r["notation"],
            _fmt(r["trainable_params"], lambda v: f"{v:,.0f}", n),
            _fmt(r["flops_per_batch_50"], _si, n),
            _fmt(r["flops_per_image"], _si, n),
            _fmt(r["test_error_pct"], lambda v: f"{v:.2f}", n),
            _cost_text(r, runs_by_label),
            _fmt(r["construction_cost_wall_time_s"], _duration, n),
            str(n),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Mean ± sample standard deviation over the n trained networks of a row (rows group equal "
        "role, dataset and notation; std is shown when n > 1 and it is not 0). FLOPs count "
        "2 × multiply-adds. Construction cost: iterations × epochs per iteration + final "
        "epochs, and the wall-clock time of all of a run's training steps."
    )
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "row_type",
    "network",
    "role",
    "dataset",
    "notation",
    "n",
    *(f"{f}_{s}" for f in _STAT_FIELDS for s in ("mean", "std")),
    "group",
    "run",
    "run_dir",
    "step",
    "seed",
)


def _num(v):
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def table_csv(rows, nets: list[NetResult]) -> str:
    """Group rows (row_type=group) then one row per member net (row_type=net)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, r in enumerate(rows):
        stats = []
        for f in _STAT_FIELDS:
            stats += ["", ""] if r[f] is None else [_num(r[f]["mean"]), _num(r[f]["std"])]
        writer.writerow(
            ["group", r["network"], r["role"], r["dataset"], r["notation"], r["n"], *stats, i]
            + [";".join(r["runs"]), "", "", ""]
        )
    group_of = {}
    for i, r in enumerate(rows):
        for m in r["members"]:
            group_of[m] = i
    for net in sorted(nets, key=lambda m: group_of[f"{m.run}:{m.step}"]):
        stats = []
        for f in _STAT_FIELDS:
            stats += [_num(_net_value(net, f)), ""]
        writer.writerow(
            ["net", ROLE_LABELS[net.role], net.role, net.dataset, net.notation, 1, *stats]
            + [group_of[f"{net.run}:{net.step}"], net.run, net.run_dir, net.step, _num(net.seed)]
        )
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# Structure: stages, restructure replay, widths


def body_stages(body) -> list[list[tuple[int, arch_lib.Cell]]]:
    """Per stage, (1-based body index, Cell) pairs (wideners split stages)."""
    stages = [[]]
    for k, entry in enumerate(body, start=1):
        if isinstance(entry, arch_lib.Widener):
            stages.append([])
        else:
            stages[-1].append((k, entry))
    return stages


def _next_step(run: Run, i: int) -> Step | None:
    name = f"iter_{i + 1}" if i + 1 < run.iterations else "final"
    return run.steps.get(name)


def replay_iterations(run: Run, notes: list[str]) -> list[dict]:
    """Recomputes each iteration's restructure step; checks it against the next network."""
    out = []
    policy = None
    if run.config is not None:
        try:
            policy = restructure_lib.Policy.from_config(run.config)
        except NacError as e:
            notes.append(f"{run.label}: config.json gives no restructure policy ({e})")
    else:
        notes.append(f"{run.label}: no config.json; pruned branches are not marked")
    for i, step in run.iteration_steps():
        if step.arch is None:
            notes.append(f"{run.label} iter_{i}: no network.json; no architecture picture")
            continue
        body = step.body()
        entry = {"iteration": i, "step": step.name, "body": body, "report": None, "matches_next": None}
        entry["notation"] = step.row["notation"]
        if policy is not None and step.stats is not None:
            try:
                network = run.config.network(body)
                new, report = restructure_lib.restructure_with_report(network, step.stats, policy)
                entry["report"] = report
                entry["envelopecell"] = policy.envelopecell
                entry["next_notation"] = new.notation(run.cell_size())
                nxt = _next_step(run, i)
                if nxt is not None and nxt.arch is not None:
                    entry["matches_next"] = new.body == nxt.body()
                    if not entry["matches_next"]:
                        message = (
                            f"{run.label} iter_{i}: restructuring network.json with stats.json and "
                            f"config.json does not give {nxt.name}/network.json; drawn as recomputed"
                        )
                        _warn(message)
                        notes.append(message)
            except NacError as e:
                message = f"{run.label} iter_{i}: cannot replay the restructure step: {e}"
                _warn(message)
                notes.append(message)
        elif step.stats is None:
            notes.append(f"{run.label} iter_{i}: no stats.json; pruned branches are not marked")
        out.append(entry)
    return out


def width_profiles(runs: list[Run], notes: list[str]) -> list[dict]:
    """Figure 4: branches per layer of constructed runs' final networks, per
    (dataset, initial notation), aligned by (stage, position in stage)."""
    groups: dict[tuple, list] = {}
    for run in runs:
        if run.role != "constructed":
            continue
        final = run.steps.get("final")
        if final is None or final.arch is None:
            continue
        initial = (run.summary or {}).get("initial_notation") or (
            run.iteration_steps()[0][1].row["notation"] if run.iteration_steps() else "?"
        )
        stages = body_stages(final.body())
        groups.setdefault((run.dataset, initial), []).append(
            (run.label, [[c.num_branches for _, c in stage] for stage in stages])
        )
    out = []
    for (dataset, initial), members in sorted(groups.items()):
        n_stages = max(len(w) for _, w in members)
        if any(len(w) != n_stages for _, w in members):
            notes.append(
                f"Figure 4 {dataset} {initial}: runs differ in stage count; stages aligned from the stem"
            )
        stages = []
        for s in range(n_stages):
            depth = max(len(w[s]) for _, w in members if s < len(w))
            layers = []
            for pos in range(depth):
                vals = [w[s][pos] for _, w in members if s < len(w) and pos < len(w[s])]
                mean, std = mean_std(vals)
                layers.append({"mean": mean, "std": std, "n": len(vals), "values": vals})
            stages.append(layers)
        out.append(
            {
                "dataset": dataset,
                "initial_notation": initial,
                "runs": [label for label, _ in members],
                "stages": stages,
            }
        )
    return out


# ---------------------------------------------------------------------------------------
# Featuremap statistic series and stability


def _series_values(step: Step, where: str):
    """(steps, {branch: values}, batch_size, metric) of a step's stats_series.json."""
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


def statistic_panels(run: Run, step: Step) -> dict:
    """Figure 2 data: per layer of `step`'s network, per branch, the per-image statistic."""
    where = f"{step.path}/stats_series.json"
    steps, values, batch, metric = _series_values(step, where)
    layers = []
    for s, stage in enumerate(body_stages(step.body())):
        for pos, (k, cell) in enumerate(stage):
            branches = []
            for key, op in cell.branches:
                name = f"Cell{k}/{key}"
                if name not in values:
                    raise Inconsistent(f"{where}: no series for {name}, a branch of {step.name}/network.json")
                branches.append({"branch": name, "op": op, "values": [v / batch for v in values[name]]})
            layers.append({"cell": k, "stage": s, "layer": pos, "branches": branches})
    return {
        "run": run.label,
        "step": step.name,
        "notation": step.row["notation"],
        "dataset": run.dataset,
        "metric": metric,
        "batch_size": batch,
        "steps": steps,
        "layers": layers,
    }


def iteration_stability(step: Step, threshold: float, notes: list[str], label: str) -> dict | None:
    """Kendall tau-b of each recorded ranking against the end-of-iteration ranking."""
    where = f"{step.path}/stats_series.json"
    steps, values, _, _ = _series_values(step, where)
    if not steps:
        notes.append(f"{label} {step.name}: stats_series.json has no recorded steps (stats_every 0?)")
        return None
    final = step.stats
    if final is None:
        final = {b: vs[-1] for b, vs in values.items()}
        notes.append(f"{label} {step.name}: no stats.json; the last recorded step is the reference")
    elif steps[-1] == step.row["steps"]:
        drift = [b for b in final if b in values and not math.isclose(values[b][-1], final[b], rel_tol=1e-6)]
        if drift:
            message = (
                f"{label} {step.name}: stats_series.json at the last step {steps[-1]} differs from "
                f"stats.json for {len(drift)} branches (e.g. {drift[0]})"
            )
            _warn(message)
            notes.append(message)
    per_stage = []
    for s, stage in enumerate(body_stages(step.body())):
        ids = [f"Cell{k}/{key}" for k, cell in stage for key, _ in cell.branches]
        if len(ids) < 2:
            continue
        missing = [b for b in ids if b not in values or b not in final]
        if missing:
            raise Inconsistent(
                f"{where}: no statistic for {missing[0]}, a branch of {step.name}/network.json"
            )
        end = [final[b] for b in ids]
        taus = [kendall_tau_b([values[b][t] for b in ids], end) for t in range(len(steps))]
        per_stage.append({"stage": s, "branches": len(ids), "tau": taus})
    if not per_stage:
        notes.append(f"{label} {step.name}: no stage has 2 or more branches; no stability")
        return None
    tau = []
    for t in range(len(steps)):
        pairs = [(p["branches"], p["tau"][t]) for p in per_stage if not math.isnan(p["tau"][t])]
        weight = sum(w for w, _ in pairs)
        tau.append(sum(w * v for w, v in pairs) / weight if weight else float("nan"))
    stable = stable_from(steps, tau, threshold)
    total = step.row["steps"]
    return {
        "step": step.name,
        "iteration_steps": total,
        "recorded_steps": list(steps),
        "tau": tau,
        "per_stage": per_stage,
        "stable_step": stable,
        "stable_fraction": None if stable is None else stable / total,
    }


def stability(runs: list[Run], threshold: float, notes: list[str]) -> list[dict]:
    out = []
    for run in runs:
        if run.role not in CONSTRUCTION_ROLES:
            continue
        iterations = []
        for i, step in run.iteration_steps():
            if step.series is None or step.arch is None:
                notes.append(f"{run.label} iter_{i}: no stats_series.json or network.json; no stability")
                continue
            try:
                result = iteration_stability(step, threshold, notes, run.label)
            except Inconsistent as e:
                _warn(f"{e}; no stability for {run.label} iter_{i}")
                notes.append(f"{e}; no stability for {run.label} iter_{i}")
                continue
            if result is not None:
                iterations.append({"iteration": i, "notation": step.row["notation"], **result})
        if iterations:
            out.append({"run": run.label, "role": run.role, "iterations": iterations})
    return out


def stability_markdown(results, threshold) -> str:
    lines = [
        f"Kendall's tau-b between the branch ranking at each recorded step and at the end of the "
        f"iteration (per stage, averaged weighted by branch count). *Stable from*: the first "
        f"recorded step after which tau stays >= {threshold:g}.",
        "",
        "| Run | Iteration | Network | Steps | Recorded steps | tau at first record | Stable from step | Fraction of iteration |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for it in r["iterations"]:
            first = it["tau"][0]
            first_text = "n/a" if math.isnan(first) else f"{first:.3f}"
            stable = "never" if it["stable_step"] is None else str(it["stable_step"])
            fraction = "" if it["stable_fraction"] is None else f"{it['stable_fraction']:.2f}"
            lines.append(
                f"| {r['run']} | {it['iteration']} | {it['notation']} | {it['iteration_steps']} | "
                f"{len(it['recorded_steps'])} | {first_text} | {stable} | {fraction} |"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Figure 3 data


def accuracy_curves(runs: list[Run], notes: list[str]) -> list[dict]:
    """Figure 3: per (dataset, role), the mean ± std test accuracy of the final trainings."""
    groups: dict[tuple, list] = {}
    for run in runs:
        if run.role not in FIGURE3_ROLES:
            continue
        for step in run.trained_nets():
            history = [h for h in step.metrics["history"] if "step" in h and "test_accuracy" in h]
            if not history:
                notes.append(f"{run.label} {step.name}: no test accuracy history; not in Figure 3")
                continue
            curve = ([h["step"] for h in history], [h["test_accuracy"] for h in history])
            groups.setdefault((run.dataset, run.role), []).append((f"{run.label}:{step.name}", curve))
    out = []
    for dataset, role in sorted(groups, key=lambda k: (k[0], FIGURE3_ROLES.index(k[1]))):
        members = groups[(dataset, role)]
        agg = aggregate_curves([c for _, c in members])
        if agg is None:
            notes.append(f"Figure 3 {dataset} {role}: the nets' evaluation steps do not overlap; not drawn")
            continue
        grid, mean, std, method = agg
        out.append(
            {
                "dataset": dataset,
                "role": role,
                "label": f"{ROLE_LABELS[role]} (n={len(members)})",
                "members": [m for m, _ in members],
                "method": method,
                "steps": grid.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
            }
        )
    return out


# ---------------------------------------------------------------------------------------
# The report


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _figure_links(stem: str) -> str:
    return f"![{stem}]({stem}.png)\n\n[{stem}.png]({stem}.png) · [{stem}.svg]({stem}.svg)\n"


def build_report(paths, out_dir, iteration: int = 0, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Reads the runs and writes every report file into `out_dir`; returns report.json's dict.

    Raises:
      RunError: bad input (see `load_run`), or `out_dir` cannot be written.
    """
    runs, notes = load_runs(paths)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunError(f"--out {out_dir!r} is a file; pass a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise RunError(f"--out {out_dir!r}: cannot create it: {e.strerror or e}") from None
    from nac import plots  # matplotlib only once the input is known to be good

    active = []
    for run in runs:
        for note in run.notes:
            notes.append(f"{run.label}: {note}")
        if not run.steps:
            notes.append(f"{run.label}: no finished step; skipped")
        else:
            active.append(run)
    runs_by_label = {r.label: r for r in runs}
    files: list[str] = []
    md: list[str] = ["# NAC report", ""]

    def save(fig, stem):
        files.extend(plots.save(fig, out_dir, stem))

    # Runs.
    md += [
        "## Runs",
        "",
        "| Run | Role | Dataset | Status | Finished steps | Path |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        status = "complete" if run.complete else "partial"
        md.append(
            f"| {run.label} | {ROLE_LABELS[run.role]} | {run.dataset} | {status} | "
            f"{', '.join(run.steps) or 'none'} | `{run.path}` |"
        )
    md.append("")

    # Table 1.
    nets = net_results(active, notes)
    rows = table_rows(nets)
    table_md = table_markdown(rows, runs_by_label) if rows else ""
    md += ["## Table 1", ""]
    if rows:
        write_atomic(os.path.join(out_dir, "table1.md"), table_md)
        write_atomic(os.path.join(out_dir, "table1.csv"), table_csv(rows, nets))
        files += ["table1.md", "table1.csv"]
        md += [table_md, "Per-network numbers: [table1.csv](table1.csv) (rows with row_type=net).", ""]
    else:
        notes.append("Table 1: no run has a finished final (or random) network; no table")
        md += ["*No run has a finished final or random network; no table.*", ""]

    # Figure 2.
    md += ["## Figure 2: featuremap statistic", ""]
    fig2 = None
    for role in CONSTRUCTION_ROLES:
        for run in active:
            step = run.steps.get(f"iter_{iteration}")
            if run.role == role and step and step.series and step.arch and step.series.get("steps"):
                try:
                    fig2 = statistic_panels(run, step)
                    break
                except Inconsistent as e:
                    _warn(f"{e}; not used for Figure 2")
                    notes.append(f"{e}; not used for Figure 2")
        if fig2:
            break
    if fig2:
        save(plots.figure2(fig2), "figure2_statistic")
        md += [
            f"Running statistic of every branch of {fig2['run']} iteration {iteration} "
            f"({fig2['notation']}), per image (the series divided by the batch size {fig2['batch_size']}).",
            "",
            _figure_links("figure2_statistic"),
        ]
    else:
        notes.append(
            f"Figure 2: no construction run has a recorded series for iteration {iteration}; not drawn"
        )
        md += [f"*No construction run has a recorded statistic series for iteration {iteration}.*", ""]

    # Figure 3.
    md += ["## Figure 3: test accuracy of the final trainings", ""]
    curves = accuracy_curves(active, notes)
    if curves:
        save(plots.figure3(curves), "figure3_accuracy")
        methods = sorted({c["method"] for c in curves if len(c["members"]) > 1})
        md += [
            "Mean ± std over the nets of each role"
            + (f" (step grids: {', '.join(methods)})" if methods else "")
            + ".",
            "",
            _figure_links("figure3_accuracy"),
        ]
    else:
        notes.append("Figure 3: no final training with a test accuracy history; not drawn")
        md += ["*No final training with an accuracy history.*", ""]

    # Figure 4.
    md += ["## Figure 4: layer widths of constructed networks", ""]
    widths = width_profiles(active, notes)
    if widths:
        save(plots.figure4(widths), "figure4_widths")
        md += [
            ", ".join(f"{w['dataset']} from {w['initial_notation']}: {len(w['runs'])} run(s)" for w in widths)
            + ".",
            "",
            _figure_links("figure4_widths"),
        ]
    else:
        notes.append("Figure 4: no constructed run with a final network; not drawn")
        md += ["*No constructed run with a final network.*", ""]

    # Architecture pictures.
    md += ["## Architectures per iteration", ""]
    arch_json = []
    for run in active:
        if run.role not in CONSTRUCTION_ROLES:
            continue
        for entry in replay_iterations(run, notes):
            stem = f"arch_{run.file_label}_iter{entry['iteration']}"
            save(plots.architecture(run.label, entry), stem)
            report = entry["report"]
            md.append(f"### {run.label} iteration {entry['iteration']} ({entry['notation']})")
            md.append("")
            if report is not None:
                md += [f"- {s.describe()}" for s in report.stages]
                if entry["matches_next"] is False:
                    md.append("- **the recomputed network differs from the next step's network.json**")
                md.append("")
            md.append(_figure_links(stem))
            arch_json.append(
                {
                    "run": run.label,
                    "iteration": entry["iteration"],
                    "notation": entry["notation"],
                    "next_notation": entry.get("next_notation"),
                    "restructure": None if report is None else report.to_dict(),
                    "matches_next": entry["matches_next"],
                    "files": [f"{stem}.png", f"{stem}.svg"],
                }
            )
    if not arch_json:
        notes.append("Architecture pictures: no construction iteration finished; none drawn")
        md += ["*No construction iteration finished.*", ""]

    # Stability.
    md += ["## Featuremap stability", ""]
    stab = stability(active, threshold, notes)
    if stab:
        save(plots.stability(stab, threshold), "stability")
        stab_md = stability_markdown(stab, threshold)
        write_atomic(os.path.join(out_dir, "stability.md"), stab_md)
        write_json(
            os.path.join(out_dir, "stability.json"), _json_safe({"threshold": threshold, "runs": stab})
        )
        files += ["stability.md", "stability.json"]
        md += [
            stab_md,
            "Numbers: [stability.json](stability.json) · [stability.md](stability.md)",
            "",
            _figure_links("stability"),
        ]
    else:
        notes.append("Stability: no construction iteration with a recorded series; not computed")
        md += ["*No construction iteration with a recorded statistic series.*", ""]

    md += ["## Notes", ""]
    md += [f"- {n}" for n in notes] if notes else ["- none"]
    write_atomic(os.path.join(out_dir, "report.md"), "\n".join(md) + "\n")
    files.append("report.md")

    report = {
        "format": "nac-report/1",
        "runs": [
            {
                "label": r.label,
                "path": r.path,
                "role": r.role,
                "mode": r.mode,
                "dataset": r.dataset,
                "seed": r.seed,
                "complete": r.complete,
                "finished_steps": list(r.steps),
            }
            for r in runs
        ],
        "table1": {"rows": rows, "nets": [dataclasses.asdict(n) for n in nets]},
        "figure2": fig2,
        "figure3": curves,
        "figure4": widths,
        "architectures": arch_json,
        "stability": {"threshold": threshold, "runs": stab},
        "notes": notes,
        "files": files + ["report.json"],
    }
    write_json(os.path.join(out_dir, "report.json"), _json_safe(report))
    return report


# ---------------------------------------------------------------------------------------
# Command line


def make_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(PROG, __doc__)
    p.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of python -m nac.construct"
    )
    p.add_argument("--out", required=True, help="directory for the report's files (created if missing)")
    p.add_argument("--iteration", type=int, default=0, help="construction iteration of Figure 2 (default 0)")
    p.add_argument(
        "--stability_threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="tau-b a ranking must keep to count as stable (default 0.9)",
    )
    return p


def main(argv) -> int:
    args = make_parser().parse_args(argv)
    if args.iteration < 0:
        raise RunError(f"--iteration: got {args.iteration}; expected an integer >= 0")
    if not -1.0 <= args.stability_threshold <= 1.0:
        raise RunError(f"--stability_threshold: got {args.stability_threshold}; expected a number in [-1, 1]")
    report = build_report(args.run_dirs, args.out, args.iteration, args.stability_threshold)
    print(f"wrote {len(report['files'])} files to {args.out} ({len(report['notes'])} notes in report.md)")
    return 0


def run(argv=None):
    """Console entry point (`nac-report`)."""
    cli.entry_point(PROG, main, argv)


if __name__ == "__main__":
    run()
