"""The report's mechanism summary: each criterion's tau against the oracle over seeds.

Steps holding an `ablation.json` that trained the same network (notation) for the same number
of steps are one group: the same point of a training window, measured in several seeds. For
every group of at least two steps, per stage and criterion: the mean Kendall tau-b against the
oracle over the seeds, its 95% t interval over seeds (`nac.reporting.power.t_interval`), the
mean prune agreement, and the steps' mean test accuracy, so that the ranking's information can
be read against the training's progress. Intervals here are over seeds, clipped to tau's range
[-1, 1] (with few seeds a t interval reaches past it); a single step's (the ablation tables)
are over images.
"""

from __future__ import annotations

import numpy as np

from nac.reporting.power import t_interval

MIN_SEEDS = 2


def _clipped(ci):
    return None if ci is None else (max(-1.0, ci[0]), min(1.0, ci[1]))


def groups(entries: list[dict], runs) -> list[dict]:
    """`[{"notation", "steps", "members": [entry, ...], "accuracy": [...]}]`, by steps trained."""
    by_label = {run.label: run for run in runs}
    found: dict[tuple, dict] = {}
    for e in entries:
        step = by_label[e["run"]].steps[e["step"]]
        key = (step.metrics.get("notation"), int(step.metrics.get("steps", 0)))
        g = found.setdefault(key, {"notation": key[0], "steps": key[1], "members": [], "accuracy": []})
        g["members"].append(e)
        g["accuracy"].append(float(step.metrics.get("test_accuracy", float("nan"))))
    return [
        found[k]
        for k in sorted(found, key=lambda k: (str(k[0]), k[1]))
        if len(found[k]["members"]) >= MIN_SEEDS
    ]


def summarise(group: dict) -> list[dict]:
    """Per stage: `{"stage", "n", "tau": {criterion: {"mean", "ci", "values"}}, "agreement": ...}`."""
    stages: dict[int, dict] = {}
    for e in group["members"]:
        for s in e["doc"]["stages"]:
            slot = stages.setdefault(int(s["stage"]), {"tau": {}, "agreement": {}})
            for name, tau in s["tau"].items():
                if tau.get("value") is not None:
                    slot["tau"].setdefault(name, []).append(float(tau["value"]))
            for name, value in s.get("prune_agreement", {}).items():
                if value is not None:
                    slot["agreement"].setdefault(name, []).append(float(value))
    out = []
    for stage in sorted(stages):
        slot = stages[stage]
        out.append(
            {
                "stage": stage,
                "tau": {
                    n: {"mean": float(np.mean(v)), "ci": _clipped(t_interval(v)), "values": v}
                    for n, v in sorted(slot["tau"].items())
                },
                "agreement": {n: float(np.mean(v)) for n, v in sorted(slot["agreement"].items())},
            }
        )
    return out


def _cell(t: dict) -> str:
    ci = t["ci"]
    return f"{t['mean']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "") + f" (n={len(t['values'])})"


def mechanism_markdown(summary: list[dict]) -> list[str]:
    """One table per group: a row per stage, a column per criterion (mean tau [95% over seeds])."""
    lines = []
    for g in summary:
        names = sorted({n for s in g["stages"] for n in s["tau"]})
        acc = np.mean(g["accuracy"])
        lines += [
            f"### {g['notation']} after {g['steps']} steps: {len(g['runs'])} seeds, "
            f"test accuracy {100 * acc:.2f}% (mean)",
            "",
            "| stage | " + " | ".join(f"tau {n}" for n in names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for s in g["stages"]:
            cells = [_cell(s["tau"][n]) if n in s["tau"] else "n/a" for n in names]
            lines.append(f"| {s['stage']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def mechanism_section(out, entries: list[dict], runs) -> list[dict]:
    """Writes "Criteria against the oracle over seeds" when a group has 2+ seeds; its JSON."""
    summary = [
        {
            "notation": g["notation"],
            "steps": g["steps"],
            "runs": [e["run"] for e in g["members"]],
            "accuracy": g["accuracy"],
            "stages": summarise(g),
        }
        for g in groups(entries, runs)
    ]
    if not summary:
        return []
    out.md += [
        "## Criteria against the oracle over seeds",
        "",
        "Steps that trained the same network for the same number of steps, one per seed: per "
        "stage, each criterion's Kendall tau-b against the oracle's delta_loss, mean over seeds "
        "with its 95% t interval over seeds.",
        "",
        *mechanism_markdown(summary),
    ]
    return summary
