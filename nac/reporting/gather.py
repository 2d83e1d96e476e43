"""What the report's sections show, gathered from run directories: the curves, the replayed
restructure steps, the layer widths, the statistic panels and the study's trained networks."""

from __future__ import annotations

import os

import numpy as np

from nac.reporting import studystats
from nac.reporting.table1 import mean_std
from nac.run.rundir import CONSTRUCTION_ROLES, ROLE_LABELS, Inconsistent, Run, Step, series_values, warn
from nac.search import restructure as restructure_lib
from nac.spec import arch as arch_lib
from nac.spec.errors import NacError

FIGURE3_ROLES = ("constructed", "envelope", "worst_case", "random", "oneshot")


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
        if step.network_list is None:
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
                if nxt is not None and nxt.network_list is not None:
                    entry["matches_next"] = new.body == nxt.body()
                    if not entry["matches_next"]:
                        message = (
                            f"{run.label} iter_{i}: restructuring network.json with stats.json and "
                            f"config.json does not give {nxt.name}/network.json; drawn as recomputed"
                        )
                        warn(message)
                        notes.append(message)
            except NacError as e:
                message = f"{run.label} iter_{i}: cannot replay the restructure step: {e}"
                warn(message)
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
        if final is None or final.network_list is None:
            continue
        initial = (run.summary or {}).get("initial_notation") or (
            run.iteration_steps()[0][1].row["notation"] if run.iteration_steps() else "?"
        )
        stages = arch_lib.body_stages(final.body())
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


def statistic_panels(run: Run, step: Step) -> dict:
    """Figure 2 data: per layer of `step`'s network, per branch, the per-image statistic."""
    where = f"{step.path}/stats_series.json"
    steps, values, batch, statistic = series_values(step, where)
    layers = []
    for s, stage in enumerate(arch_lib.body_stages(step.body())):
        for pos, (k, cell) in enumerate(stage):
            branches = []
            for key, op in cell.branches:
                name = arch_lib.BranchId(k, key).original
                if name not in values:
                    raise Inconsistent(f"{where}: no series for {name}, a branch of {step.name}/network.json")
                branches.append({"branch": name, "op": op, "values": [v / batch for v in values[name]]})
            layers.append({"cell": k, "stage": s, "layer": pos, "branches": branches})
    out = {
        "run": run.label,
        "step": step.name,
        "notation": step.row["notation"],
        "dataset": run.dataset,
        "metric": statistic,  # report.json's key, as before
        "batch_size": batch,
        "steps": steps,
        "layers": layers,
    }
    if step.series.get("x"):
        out["x_label"] = step.series["x"]
    return out


def first_panels(candidates, notes: list[str]) -> dict | None:
    """Figure 2's panels of the first (run, step) with a recorded series that reads consistently;
    inconsistent ones are warned about and noted."""
    for run, step in candidates:
        if step is None or not step.series or not step.series.get("steps"):
            continue
        try:
            return statistic_panels(run, step)
        except Inconsistent as e:
            warn(f"{e}; not used for Figure 2")
            notes.append(f"{e}; not used for Figure 2")
    return None


def accuracy_curves(runs: list[Run], notes: list[str], variants: dict | None = None) -> list[dict]:
    """Figure 3: per (dataset, role), the mean ± std test accuracy of the final trainings
    (constructions with the stability stop or inheritance, `variants`, apart)."""
    variants = variants or {}
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
            key = (run.dataset, run.role, run.origin, variants.get(run.label, ""))
            groups.setdefault(key, []).append((f"{run.label}:{step.name}", curve))
    out = []
    for key in sorted(groups, key=lambda k: (k[0], FIGURE3_ROLES.index(k[1]), k[2] != "nac", k[3])):
        dataset, role, origin, variant = key
        members = groups[key]
        agg = aggregate_curves([c for _, c in members])
        if agg is None:
            notes.append(f"Figure 3 {dataset} {role}: the nets' evaluation steps do not overlap; not drawn")
            continue
        grid, mean, std, method = agg
        origin_text = " (original)" if origin == "original" else ""
        origin_text += f" ({variant})" if variant else ""
        out.append(
            {
                "dataset": dataset,
                "role": role,
                "origin": origin,
                "variant": variant,
                "label": f"{ROLE_LABELS[role]}{origin_text} (n={len(members)})",
                "members": [m for m, _ in members],
                "method": method,
                "steps": grid.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
            }
        )
    return out


def run_variant(run: Run) -> str:
    """ "statistic NAME" (a criterion other than l2), "stability stop", "inherited weights"
    for constructions run with them, joined by commas; else ""."""
    rc = run.run_config
    parts = []
    if rc.get("statistic", "l2") != "l2" and rc.get("mode") == "construct":
        parts.append(f"statistic {rc['statistic']}")
    if rc.get("stats_stop_tau"):
        parts.append("stability stop")
    if rc.get("inherit_weights"):
        parts.append("inherited weights")
    return ", ".join(parts)


def _random_match(run: Run, runs: list[Run]) -> str | None:
    """The constructed net a random run's nets were drawn to match: its --arch is that run's
    `final/network.json`."""
    arch = run.run_config.get("arch")
    if not arch:
        return None
    home = os.path.realpath(os.path.dirname(os.path.dirname(arch)))
    for other in runs:
        if other.role == "constructed" and os.path.realpath(other.path) == home and "final" in other.steps:
            return f"{other.label}:final"
    return None


def _end_on_subset(history: list) -> tuple | None:
    """(accuracy, images) of the last evaluation on the shortened evaluations' images, if recorded."""
    last = history[-1] if history else {}
    if "test_subset_accuracy" in last and "test_subset_examples" in last:
        return (last["test_subset_accuracy"], last["test_subset_examples"])
    return None


def _same_images_curve(entries: list) -> tuple:
    """((step, test accuracy), ...) for question 2: when the earlier evaluations read a subset
    (--eval_examples) and the last one recorded its accuracy on that subset, the last point is
    that accuracy, so the whole curve reads the same images."""
    curve = [(h["step"], h["test_accuracy"]) for h in entries]
    end = _end_on_subset(entries)
    if len(curve) > 1 and end is not None and all(h.get("test_examples") == end[1] for h in entries[:-1]):
        curve[-1] = (curve[-1][0], end[0])
    return tuple(curve)


def length_variants(runs: list[Run]) -> dict:
    """ "N steps" for trained networks of a role (envelope, oneshot, worst case) that trained
    fewer steps than the longest of their (role, dataset, notation): runs stopped at points of
    a window (a study's mechanism part) are kept apart from the full-length ones."""
    lengths: dict[tuple, dict[str, int]] = {}
    for run in runs:
        if run.role in CONSTRUCTION_ROLES or run.role == "random" or "final" not in run.steps:
            continue
        row = run.steps["final"].row
        lengths.setdefault((run.role, run.dataset, row["notation"]), {})[run.label] = row["steps"]
    out = {}
    for members in lengths.values():
        longest = max(members.values())
        out.update({label: f"{n} steps" for label, n in members.items() if n < longest})
    return out


def study_statistics(runs: list[Run], stab: list[dict], variants: dict) -> dict:
    """report.json's "study" section (see `nac.reporting.studystats`) from the runs' trained networks;
    `variants` maps construction runs' labels to `run_variant`."""
    nets = []
    histories, curves = {}, {}
    for run in runs:
        if run.origin != "nac":
            continue
        variant = variants.get(run.label, "")
        match = _random_match(run, runs) if run.role == "random" else None
        for step in run.steps.values():
            entries = [h for h in step.metrics["history"] if "step" in h]
            histories[(run.label, step.name)] = tuple((h["step"], h["test_accuracy"]) for h in entries)
            curves[(run.label, step.name)] = _same_images_curve(entries)
        for step in run.trained_nets():
            nets.append(
                studystats.StudyNet(
                    id=f"{run.label}:{step.name}",
                    role=run.role,
                    dataset=run.dataset,
                    test_error_pct=100.0 * step.row["test_error"],
                    params=step.row["trainable_params"],
                    seed=run.seed,
                    variant=variant,
                    match=match,
                    history=histories[(run.label, step.name)],
                    steps=step.row.get("steps"),
                    examples=tuple(h.get("test_examples") for h in step.metrics["history"] if "step" in h),
                    end_on_subset=_end_on_subset(step.metrics["history"]),
                )
            )
    return studystats.study(nets, stab, curves)
