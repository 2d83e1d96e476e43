"""The report's ablation section: how each criterion ranks branches against the oracle.

For every step of every run that holds an `ablation.json` (`python -m nac.ablate`): per
stage, Kendall tau-b of each criterion against the oracle's `delta_loss` with its 95%
interval over images and the prune agreement, as a Markdown table; and one scatter figure per
step, one panel per criterion, of the criterion (x) against `delta_loss` (y), coloured by
stage. Intervals here are over the images of one step; a study's are over seeds.
"""

from __future__ import annotations

import json
import os

from nac.search.ablation import ABLATION_FILE, FORMAT


def read_ablations(runs, notes: list[str]) -> list[dict]:
    """`[{"run", "step", "doc"}]` of the steps holding a readable `nac-ablation/1` file."""
    out = []
    for run in runs:
        for name, step in run.steps.items():
            path = os.path.join(step.path, ABLATION_FILE)
            if not os.path.exists(path):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
            except (OSError, json.JSONDecodeError) as e:
                notes.append(f"{run.label}/{name}: {ABLATION_FILE} unreadable ({e}); skipped")
                continue
            if doc.get("format") != FORMAT:
                notes.append(f"{run.label}/{name}: {ABLATION_FILE} is not {FORMAT}; skipped")
                continue
            out.append({"run": run.label, "step": name, "doc": doc})
    return out


def _cell(tau) -> str:
    if tau is None or tau.get("value") is None:
        return "n/a"
    ci = tau.get("ci")
    return f"{tau['value']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def ablation_markdown(entries: list[dict]) -> str:
    """One table per step: a row per stage, a column per criterion (tau [95% interval]),
    and the prune agreement per criterion."""
    lines = []
    for e in entries:
        doc = e["doc"]
        names = sorted({n for s in doc["stages"] for n in s["tau"]})
        lines += [
            f"### {e['run']} {e['step']}: {doc['examples']} {doc.get('split', 'test')} images, "
            f"base accuracy {doc['base']['accuracy']:.4f}",
            "",
            "| stage | " + " | ".join(f"tau {n}" for n in names) + " | prune agreement |",
            "|---|" + "---|" * (len(names) + 1),
        ]
        for s in doc["stages"]:
            agree = ", ".join(
                f"{n} {v:.2f}" if v is not None else f"{n} -" for n, v in sorted(s["prune_agreement"].items())
            )
            lines.append(
                f"| {s['stage']} | " + " | ".join(_cell(s["tau"].get(n)) for n in names) + f" | {agree} |"
            )
        lines += ["", *[f"- {note}" for note in doc.get("notes", [])], ""]
    return "\n".join(lines)


def scatter_figure(entry: dict):
    """Criterion (x) against delta_loss (y) for each criterion of one step, by stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = entry["doc"]
    branches = doc["branches"]
    names = sorted({n for b in branches.values() for n in b["criteria"]})
    stage_of = {b: s["stage"] for s in doc["stages"] for b in s.get("branches", [])}
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.2 * max(1, len(names)), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for stage in sorted(set(stage_of.values())):
            points = [
                (b["criteria"][name], b["delta_loss"])
                for bid, b in branches.items()
                if name in b["criteria"] and stage_of.get(bid) == stage
            ]
            if points:
                xs, ys = zip(*points)
                ax.scatter(xs, ys, s=14, label=f"stage {stage}")
        ax.set_xlabel(name)
        ax.axhline(0.0, color="#999999", linewidth=0.5)
    axes[0][0].set_ylabel("delta_loss (oracle)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{entry['run']} {entry['step']}: criteria against the oracle", fontsize=9)
    return fig


def ablation_section(out, active, entries=None) -> list[dict]:
    """Writes the section into the report (`out`: the report's writer); returns its JSON.
    `entries`: `read_ablations(active, ...)` when the caller has read them already."""
    out.md += ["## Criteria against the oracle (ablation)", ""]
    if entries is None:
        entries = read_ablations(active, out.notes)
    if not entries:
        out.md += ["*No step holds an ablation.json (python -m nac.ablate STEP_DIR writes one).*", ""]
        return []
    out.md += [ablation_markdown(entries)]
    result = []
    for e in entries:
        stem = f"ablation_{e['run']}_{e['step']}".replace("/", "_").replace(" ", "_")
        files = out.figure(scatter_figure(e), stem)
        out.md += [out.links(stem), ""]
        result.append({"run": e["run"], "step": e["step"], "stages": e["doc"]["stages"], "files": files})
    return result
