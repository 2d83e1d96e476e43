"""The paper's Table 1 from the trained networks of run directories: Markdown and CSV.

One row per group of trained networks with equal (role, dataset, notation), in the paper's
order (envelope, constructed, worst case, random, oneshot): n and mean ± sample standard
deviation (ddof 1, 0 for one member) of parameters, FLOPs, test error (%) and, for
construction runs, the construction cost in epochs and wall-clock time. The CSV adds one row
per member net. Numbers are the runs' own; nothing is recomputed here.

FLOPs come in two counts (see `nac.spec.cost`): forward, and training (what the paper's profiler
counted for its net B and ImageNet rows), per image and per batch of the paper's batch (50,
64 on ImageNet). Runs of an older nac carry only `flops_per_image` (the forward count); their
training count is left empty.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np

from nac.reporting.studystats import natural_key
from nac.run.rundir import CONSTRUCTION_ROLES, ROLE_LABELS, ROLES, Run
from nac.spec.cost import paper_batch


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value, and for values equal
    up to float rounding: sums of the same epochs in another order differ in the last bit)."""
    a = np.asarray(values, np.float64)
    if len(a) < 2 or np.ptp(a) <= 1e-12 * max(1.0, float(np.abs(a).max())):
        return float(a.mean()), 0.0
    return float(a.mean()), float(a.std(ddof=1))


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
    flops_training_per_image: float | None = None  # None for runs of an older nac
    origin: str = "nac"  # "original": from the original's results folder
    construction_cost_epochs_planned: float | None = None
    inherited: bool = False
    # "stability stop", "inherited weights" or both for constructions run with them
    variant: str = ""
    test_top5_error: float | None = None  # where the run recorded top-5 accuracy (ImageNet)

    @property
    def flops_batch(self) -> int:
        """The paper's batch for this dataset (50; 64 on ImageNet)."""
        return paper_batch(self.dataset)

    @property
    def flops_forward_per_batch(self) -> float:
        return self.flops_per_image * self.flops_batch

    @property
    def flops_training_per_batch(self) -> float | None:
        t = self.flops_training_per_image
        return None if t is None else t * self.flops_batch


def row_flops(row: dict) -> tuple[float, float | None]:
    """(forward, training or None) FLOPs per image of a metrics or summary row, old or new."""
    return row.get("flops_forward_per_image", row["flops_per_image"]), row.get("flops_training_per_image")


def _construction_cost(run: Run):
    """(epochs, wall seconds) of a finished construction, from summary.json when it has them."""
    s = run.summary or {}
    if "construction_cost_epochs" in s and "construction_cost_wall_time_s" in s and run.complete:
        return s["construction_cost_epochs"], s["construction_cost_wall_time_s"], None
    steps = [run.steps[n] for n in run.steps if n.startswith("iter_") or n == "final"]
    note = f"{run.label}: construction cost summed over the steps' metrics.json (summary.json incomplete)"
    if run.origin == "original":
        note = (
            f"{run.label}: construction cost from its folders' last evaluated steps and event wall "
            "times (the original's results record no more)"
        )
    return (
        sum(st.row["epochs"] for st in steps),
        sum(st.row["wall_time_s"] for st in steps),
        note,
    )


def net_results(runs: list[Run], notes: list[str], variants: dict | None = None) -> list[NetResult]:
    """The trained networks of `runs`; `variants` maps a run label to its construction variant."""
    variants = variants or {}
    out = []
    for run in runs:
        nets = run.trained_nets()
        if not nets:
            if run.steps:
                notes.append(f"{run.label}: no final network yet ({run.role} run incomplete); not in Table 1")
            continue
        cost = (None, None)
        planned = None
        if run.role in CONSTRUCTION_ROLES:
            epochs, wall, note = _construction_cost(run)
            cost = (epochs, wall)
            # The fixed-window cost (the same unless the stability stop ended iterations early).
            planned = (run.summary or {}).get("construction_cost_epochs_planned", epochs)
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
                    flops_per_image=row_flops(r)[0],
                    test_error=r["test_error"],
                    seed=step.metrics.get("seed"),
                    construction_cost_epochs=cost[0],
                    construction_cost_wall_time_s=cost[1],
                    flops_training_per_image=row_flops(r)[1],
                    origin=run.origin,
                    construction_cost_epochs_planned=planned,
                    inherited=bool(step.metrics.get("inherited")),
                    variant=variants.get(run.label, ""),
                    test_top5_error=_top5_error(step.metrics),
                )
            )
    return out


def _top5_error(metrics: dict) -> float | None:
    """1 - the last evaluation's top-5 accuracy, when the training recorded it."""
    top5 = (metrics.get("final") or {}).get("test_top5")
    return None if top5 is None else 1.0 - float(top5)


_STAT_FIELDS = (
    "trainable_params",
    "flops_per_batch_50",
    "flops_per_image",
    "test_error_pct",
    "construction_cost_epochs",
    "construction_cost_wall_time_s",
    "flops_training_per_image",
    "flops_batch",
    "flops_forward_per_batch",
    "flops_training_per_batch",
    "construction_cost_epochs_planned",
    "test_top5_error_pct",
)


def _net_value(net: NetResult, field: str):
    if field == "test_top5_error_pct":
        return None if net.test_top5_error is None else 100.0 * net.test_top5_error
    return 100.0 * net.test_error if field == "test_error_pct" else getattr(net, field)


def table_rows(nets: list[NetResult]) -> list[dict]:
    """Group rows of Table 1 (role, dataset, notation), in the paper's order."""
    groups: dict[tuple, list[NetResult]] = {}
    for net in nets:
        key = (net.role, net.dataset, net.notation, net.origin, net.inherited, net.variant)
        groups.setdefault(key, []).append(net)
    rows = []
    for key in sorted(
        groups, key=lambda k: (ROLES.index(k[0]), k[1], k[2], k[3] != "nac", k[4], natural_key(k[5]))
    ):
        role, dataset, notation, origin, inherited, variant = key
        members = groups[key]
        label = ROLE_LABELS[role] + (" (original)" if origin == "original" else "")
        if role == "random":
            label += f" ({len(members)} net{'s' if len(members) > 1 else ''})"
        if inherited:
            label += " (inherited weights)"
        if variant:
            label += f" ({variant})"
        row = {
            "network": label,
            "role": role,
            "origin": origin,
            "dataset": dataset,
            "notation": notation,
            "inherited": inherited,
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
    planned = row.get("construction_cost_epochs_planned")
    stopped = planned is not None and any(
        not math.isclose(p, v) for p, v in zip(planned["values"], stat["values"])
    )
    if stopped:  # the stability stop ended iterations early: the cost with and without it
        form = ""
        if len(forms) == 1:
            n_it, per, final = forms.pop()
            form = f"{n_it}×{per:.3g}+{final:.3g} = "
        return f"{text} (fixed windows: {form}{_fmt(planned, lambda v: f'{v:.4g}', row['n'])})"
    if len(forms) == 1:
        n_it, per, final = forms.pop()
        text = f"{n_it}×{per:.3g}+{final:.3g} = {text}"
    return text


TABLE_HEADER = (
    "Network",
    "Dataset",
    "Specification",
    "Params",
    "FLOPs / batch, forward",
    "FLOPs / batch, training",
    "FLOPs / image, forward",
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
            _fmt(r["flops_forward_per_batch"], _si, n),
            _fmt(r["flops_training_per_batch"], _si, n),
            _fmt(r["flops_per_image"], _si, n),
            _fmt(r["test_error_pct"], lambda v: f"{v:.2f}", n)
            + (
                ""
                if r.get("test_top5_error_pct") is None
                else f" (top-5 {_fmt(r['test_top5_error_pct'], lambda v: f'{v:.2f}', n)})"
            ),
            _cost_text(r, runs_by_label),
            _fmt(r["construction_cost_wall_time_s"], _duration, n),
            str(n),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Mean ± sample standard deviation over the n trained networks of a row (rows group equal "
        "role, dataset and notation; std is shown when n > 1 and it is not 0). FLOPs count "
        "2 × multiply-adds of convolutions and dense layers, per batch of the paper's batch "
        "(50; 64 on ImageNet): forward is one forward pass (the paper's count for net A and the "
        "random nets); training adds each convolution's input and filter gradients and the dense "
        "layers' gradients, no depthwise gradients (the paper's count for net B and ImageNet); "
        "empty for runs of an older nac. Construction cost: iterations × epochs per iteration + "
        "final epochs, and the wall-clock time of all of a run's training steps; with the "
        "stability stop (`--stats_stop_tau`) the epochs actually trained, followed by the "
        "fixed-window cost. *(inherited weights)*: the final network started from the last "
        "construction iteration's weights (`--inherit_final`), not from scratch. Test error is "
        "top-1; where a run recorded top-5 accuracy (ImageNet) its top-5 error follows in "
        "parentheses, the paper's ImageNet figure."
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
    "origin",
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
            + [";".join(r["runs"]), "", "", "", r["origin"]]
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
            + [group_of[f"{net.run}:{net.step}"], net.run, net.run_dir, net.step, _num(net.seed), net.origin]
        )
    return buf.getvalue()
