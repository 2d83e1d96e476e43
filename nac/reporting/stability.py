"""Featuremap stability, the paper's central claim, measured on recorded statistic series.

Per construction iteration: Kendall's tau-b between the branch ranking at each recorded step
(`stats_series.json`) and the ranking at the end of the iteration (`stats.json`, else the last
recorded step), computed per stage and averaged over stages weighted by branch count. Stages
with fewer than two branches, and steps where a stage's ranking is all ties (tau undefined),
are left out of the average. An iteration is *stable from* the first recorded step after which
tau stays >= the threshold (default 0.9) up to its end. No TensorFlow is imported.
"""

from __future__ import annotations

import math

from nac.run.rundir import CONSTRUCTION_ROLES, Inconsistent, Run, Step, series_values, warn
from nac.search import criteria
from nac.search.stability import kendall_tau_b, stable_from, weighted_tau
from nac.spec import arch as arch_lib


def series_is_not_the_driver(run: Run) -> str | None:
    """The criterion that drove `run`'s restructures when it is not accumulated in training
    (random, l1_kernel, snip, oracle): `stats.json` then holds it and the series l2; else None."""
    statistic = run.run_config.get("statistic", "l2")
    recorded = statistic not in criteria.REGISTRY or criteria.REGISTRY[statistic].recorded
    return None if recorded else statistic


def iteration_stability(
    step: Step, threshold: float, notes: list[str], label: str, own_reference: bool = False
) -> dict | None:
    """Kendall tau-b of each recorded ranking against the end-of-iteration ranking.

    `own_reference`: the series' last record is the reference instead of `stats.json` (which
    holds another criterion; `series_is_not_the_driver`), so the table shows how stable l2's
    ranking was in that run."""
    where = f"{step.path}/stats_series.json"
    steps, values, _, _ = series_values(step, where)
    if not steps:
        notes.append(f"{label} {step.name}: stats_series.json has no recorded steps (stats_every 0?)")
        return None
    final = step.stats
    if own_reference:
        final = {b: vs[-1] for b, vs in values.items()}
    elif final is None:
        final = {b: vs[-1] for b, vs in values.items()}
        notes.append(f"{label} {step.name}: no stats.json; the last recorded step is the reference")
    elif steps[-1] == step.row["steps"]:
        drift = [b for b in final if b in values and not math.isclose(values[b][-1], final[b], rel_tol=1e-6)]
        if drift:
            message = (
                f"{label} {step.name}: stats_series.json at the last step {steps[-1]} differs from "
                f"stats.json for {len(drift)} branches (e.g. {drift[0]})"
            )
            warn(message)
            notes.append(message)
    per_stage = []
    for s, stage in enumerate(arch_lib.body_stages(step.body())):
        ids = [arch_lib.BranchId(k, key).original for k, cell in stage for key, _ in cell.branches]
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
    tau = [weighted_tau([(p["branches"], p["tau"][t]) for p in per_stage]) for t in range(len(steps))]
    stable = stable_from(steps, tau, threshold)
    total = step.row["steps"]
    stop = step.metrics.get("stability_stop") or {}
    return {
        "steps_planned": step.metrics.get("steps_planned", total),
        "stopped_at": total if step.metrics.get("stopped_early") else None,
        "stop_tau_threshold": stop.get("tau_threshold"),
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
        driver = series_is_not_the_driver(run)
        if driver:
            notes.append(f"{run.label}: driven by {driver}; its stability rows are l2's ranking")
        for i, step in run.iteration_steps():
            if step.series is None or step.network_list is None:
                notes.append(f"{run.label} iter_{i}: no stats_series.json or network.json; no stability")
                continue
            try:
                result = iteration_stability(step, threshold, notes, run.label, bool(driver))
            except Inconsistent as e:
                warn(f"{e}; no stability for {run.label} iter_{i}")
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
        f"recorded step after which tau stays >= {threshold:g}. *Stability stop*: where "
        f"`--stats_stop_tau` ended the iteration (its tau compares consecutive records; "
        f"Steps are the steps trained, Planned steps the fixed window).",
        "",
        "| Run | Iteration | Network | Steps | Recorded steps | tau at first record | Stable from step | Fraction of iteration | Planned steps | Stability stop |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for it in r["iterations"]:
            first = it["tau"][0]
            first_text = "n/a" if math.isnan(first) else f"{first:.3f}"
            stable = "never" if it["stable_step"] is None else str(it["stable_step"])
            fraction = "" if it["stable_fraction"] is None else f"{it['stable_fraction']:.2f}"
            if it["stopped_at"] is not None:
                stop = f"stopped at {it['stopped_at']} (tau >= {it['stop_tau_threshold']:g})"
            elif it["stop_tau_threshold"]:
                stop = f"not reached (tau >= {it['stop_tau_threshold']:g})"
            else:
                stop = "off"
            lines.append(
                f"| {r['run']} | {it['iteration']} | {it['notation']} | {it['iteration_steps']} | "
                f"{len(it['recorded_steps'])} | {first_text} | {stable} | {fraction} | "
                f"{it['steps_planned']} | {stop} |"
            )
    return "\n".join(lines) + "\n"
