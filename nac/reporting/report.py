"""The report over run directories: Table 1, Figures 2-4, stability, study statistics.

`build_report` reads the runs once and writes every section into the output folder; what each
file holds is the command's help (`nac.cli.report`).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from nac.reporting import original_results, studystats
from nac.reporting.stability import stability, stability_markdown
from nac.reporting.table1 import mean_std, net_results, table_csv, table_markdown, table_rows
from nac.run.rundir import (
    CONSTRUCTION_ROLES,
    ROLE_LABELS,
    Inconsistent,
    Run,
    Step,
    file_label,
    load_runs,
    series_values,
    warn,
)
from nac.search import restructure as restructure_lib
from nac.search.stability import DEFAULT_THRESHOLD
from nac.spec import arch as arch_lib
from nac.spec.errors import NacError, RunError
from nac.spec.jsonio import load_json, write_atomic, write_json

PROG = "nac.report"

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


def _first_panels(candidates, notes: list[str]) -> dict | None:
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


def _variant(run: Run) -> str:
    """ "stability stop" / "inherited weights" for constructions run with them, else ""."""
    path = os.path.join(run.path, "run_config.json")
    if run.origin != "nac" or not os.path.isfile(path):
        return ""
    rc = load_json(path, RunError, "run config")
    parts = []
    if isinstance(rc, dict) and rc.get("stats_stop_tau"):
        parts.append("stability stop")
    if isinstance(rc, dict) and rc.get("inherit_weights"):
        parts.append("inherited weights")
    return ", ".join(parts)


def _random_match(run: Run, runs: list[Run]) -> str | None:
    """The constructed net a random run's nets were drawn to match: its --arch is that run's
    `final/network.json`."""
    path = os.path.join(run.path, "run_config.json")
    if not os.path.isfile(path):
        return None
    rc = load_json(path, RunError, "run config")
    arch = rc.get("arch") if isinstance(rc, dict) else None
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


def study_statistics(runs: list[Run], stab: list[dict], variants: dict) -> dict:
    """report.json's "study" section (see `nac.reporting.studystats`) from the runs' trained networks;
    `variants` maps construction runs' labels to `_variant`."""
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


def build_report(
    paths,
    out_dir,
    iteration: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    originals=(),
    original_config: str | None = None,
) -> dict:
    """Reads the runs and writes every report file into `out_dir`; returns report.json's dict.

    `originals` are results folders of the original, read with `original_config` (or none).

    Raises:
      RunError: bad input (see `load_run`), or `out_dir` cannot be written.
    """
    if not paths and not originals:
        raise RunError(
            "RUN_DIR or --original is required; pass run directories written by python -m "
            "nac.construct, or the original's results folder"
        )
    runs, notes = _read_runs(paths, originals, original_config)
    _make_out_dir(out_dir)
    from nac.reporting import plots  # matplotlib only once the input is known to be good

    active = []
    for run in runs:
        for note in run.notes:
            notes.append(f"{run.label}: {note}")
        if not run.steps:
            notes.append(f"{run.label}: no finished step; skipped")
        else:
            active.append(run)
    out = _Writer(out_dir, plots, notes)
    out.md += ["# NAC report", ""]
    _runs_section(out, runs)
    variants = {r.label: _variant(r) for r in active if r.role in CONSTRUCTION_ROLES}
    rows, nets = _table1_section(out, active, variants, {r.label: r for r in runs})
    fig2, fig2_original = _figure2_section(out, active, iteration, bool(originals))
    curves = _figure3_section(out, active, variants)
    widths = _figure4_section(out, active)
    arch_json = _architectures_section(out, active)
    stab = _stability_section(out, active, threshold)
    from nac.reporting import chance
    from nac.reporting.ablation import ablation_section  # --- ablation ---

    ablation = ablation_section(out, active)
    agreement = chance.agreement_section(out, active)
    study = study_statistics(active, stab, variants)
    out.md += ["## Study statistics", "", studystats.study_markdown(study)]

    out.md += ["## Notes", ""]
    out.md += [f"- {n}" for n in notes] if notes else ["- none"]
    out.text("report.md", "\n".join(out.md) + "\n")

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
                "origin": r.origin,
            }
            for r in runs
        ],
        "table1": {"rows": rows, "nets": [dataclasses.asdict(n) for n in nets]},
        "figure2": fig2,
        "figure2_original": fig2_original,
        "figure3": curves,
        "figure4": widths,
        "architectures": arch_json,
        "stability": {"threshold": threshold, "runs": stab},
        "ablation": ablation,
        "pruning_agreement": agreement,
        "study": study,
        "notes": notes,
        "files": out.files + ["report.json"],
    }
    write_json(os.path.join(out_dir, "report.json"), _json_safe(report))
    return report


def _read_runs(paths, originals, original_config) -> tuple[list[Run], list[str]]:
    """nac's run directories and the original's results folders, with unique labels."""
    runs, notes = load_runs(paths) if paths else ([], [])
    used = {r.file_label for r in runs}
    for folder in originals:
        for run in original_results.load_original(folder, original_config):
            while run.label in {r.label for r in runs}:
                run.label += "'"
            run.file_label = file_label(run.label)
            while run.file_label in used:
                run.file_label += "_"
            used.add(run.file_label)
            runs.append(run)
    return runs, notes


def _make_out_dir(out_dir) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunError(f"--out {out_dir!r} is a file; pass a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise RunError(f"--out {out_dir!r}: cannot create it: {e.strerror or e}") from None


class _Writer:
    """The report being written: report.md's lines, the files written, the notes."""

    def __init__(self, out_dir, plots, notes: list[str]):
        self.out_dir, self.plots, self.notes = out_dir, plots, notes
        self.md: list[str] = []
        self.files: list[str] = []

    def figure(self, fig, stem) -> None:
        self.files.extend(self.plots.save(fig, self.out_dir, stem))

    def text(self, name, text) -> None:
        write_atomic(os.path.join(self.out_dir, name), text)
        self.files.append(name)

    def json(self, name, value) -> None:
        write_json(os.path.join(self.out_dir, name), value)
        self.files.append(name)

    def figure_section(self, stem: str, figure, caption: str, note: str, missing: str) -> None:
        """A figure's Markdown: `caption` and links when `figure` was drawn (saved as `stem`),
        else the line `missing` (and `note` in the report's notes)."""
        if figure is None:
            self.notes.append(note)
            self.md += [missing, ""]
        else:
            self.figure(figure, stem)
            self.md += [caption, "", _figure_links(stem)]


def _runs_section(out: _Writer, runs: list[Run]) -> None:
    out.md += [
        "## Runs",
        "",
        "| Run | Role | Dataset | Status | Finished steps | Path |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        status = "complete" if run.complete else "partial"
        if run.origin == "original":
            status = "the original's results"
        out.md.append(
            f"| {run.label} | {ROLE_LABELS[run.role]} | {run.dataset} | {status} | "
            f"{', '.join(run.steps) or 'none'} | `{run.path}` |"
        )
    out.md.append("")


def _table1_section(out: _Writer, active, variants, runs_by_label):
    nets = net_results(active, out.notes, variants)
    rows = table_rows(nets)
    out.md += ["## Table 1", ""]
    if rows:
        table_md = table_markdown(rows, runs_by_label)
        out.text("table1.md", table_md)
        out.text("table1.csv", table_csv(rows, nets))
        out.md += [table_md, "Per-network numbers: [table1.csv](table1.csv) (rows with row_type=net).", ""]
    else:
        out.notes.append("Table 1: no run has a finished final (or random) network; no table")
        out.md += ["*No run has a finished final or random network; no table.*", ""]
    return rows, nets


def _figure2_section(out: _Writer, active, iteration: int, originals: bool):
    out.md += ["## Figure 2: featuremap statistic", ""]
    fig2 = _first_panels(
        (
            (run, step)
            for role in CONSTRUCTION_ROLES
            for run in active
            if run.origin == "nac" and run.role == role
            for step in [run.steps.get(f"iter_{iteration}")]
            if step is not None and step.network_list
        ),
        out.notes,
    )
    if fig2:
        out.figure(out.plots.figure2(fig2), "figure2_statistic")
        out.md += [
            f"Running statistic of every branch of {fig2['run']} iteration {iteration} "
            f"({fig2['notation']}), per image (the series divided by the batch size {fig2['batch_size']}).",
            "",
            _figure_links("figure2_statistic"),
        ]
    else:
        out.notes.append(
            f"Figure 2: no construction run has a recorded series for iteration {iteration}; not drawn"
        )
        out.md += [f"*No construction run has a recorded statistic series for iteration {iteration}.*", ""]
    fig2_original = _first_panels(
        (
            (run, run.steps.get(f"iter_{iteration}") or (run.steps.get("final") if not iteration else None))
            for run in active
            if run.origin == "original"
        ),
        out.notes,
    )
    if fig2_original:
        out.figure(out.plots.figure2(fig2_original), "figure2_statistic_original")
        out.md += [
            f"The original's: {fig2_original['run']} iteration {iteration} ({fig2_original['notation']}) "
            f"from its res.log, divided by the batch size {fig2_original['batch_size']}; x is the n-th "
            "logged value of each branch (res.log has no step numbers).",
            "",
            _figure_links("figure2_statistic_original"),
        ]
    elif originals:
        out.notes.append(f"Figure 2 (original): no res.log for iteration {iteration}; not drawn")
    return fig2, fig2_original


def _figure3_section(out: _Writer, active, variants):
    out.md += ["## Figure 3: test accuracy of the final trainings", ""]
    curves = accuracy_curves(active, out.notes, variants)
    methods = sorted({c["method"] for c in curves if len(c["members"]) > 1})
    out.figure_section(
        "figure3_accuracy",
        out.plots.figure3(curves) if curves else None,
        "Mean ± std over the nets of each role"
        + (f" (step grids: {', '.join(methods)})" if methods else "")
        + ".",
        "Figure 3: no final training with a test accuracy history; not drawn",
        "*No final training with an accuracy history.*",
    )
    return curves


def _figure4_section(out: _Writer, active):
    out.md += ["## Figure 4: layer widths of constructed networks", ""]
    from nac.reporting import chance  # --- ablation ---: settings apart, random statistics beside

    widths = chance.widths_by_setting(active, out.notes, width_profiles)
    out.figure_section(
        "figure4_widths",
        out.plots.figure4(widths) if widths else None,
        ", ".join(
            f"{w['dataset']} from {w['initial_notation']} ({w['setting']}): {len(w['runs'])} run(s)"
            for w in widths
        )
        + f"; black diamonds: mean ± std of {chance.DRAWS} restructures of the same envelope with "
        "random statistics (no training).",
        "Figure 4: no constructed run with a final network; not drawn",
        "*No constructed run with a final network.*",
    )
    return widths


def _architectures_section(out: _Writer, active) -> list[dict]:
    out.md += ["## Architectures per iteration", ""]
    arch_json = []
    for run in active:
        if run.role not in CONSTRUCTION_ROLES:
            continue
        if run.origin == "original" and run.config is None:
            out.notes.append(f"{run.label}: no --original_config; the replay check was skipped")
        for entry in replay_iterations(run, out.notes):
            stem = f"arch_{run.file_label}_iter{entry['iteration']}"
            out.figure(out.plots.architecture(run.label, entry), stem)
            report = entry["report"]
            out.md.append(f"### {run.label} iteration {entry['iteration']} ({entry['notation']})")
            out.md.append("")
            if report is not None:
                out.md += [f"- {s.describe()}" for s in report.stages]
                if entry["matches_next"] is False:
                    out.md.append("- **the recomputed network differs from the next step's network.json**")
                out.md.append("")
            out.md.append(_figure_links(stem))
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
        out.notes.append("Architecture pictures: no construction iteration finished; none drawn")
        out.md += ["*No construction iteration finished.*", ""]
    return arch_json


def _stability_section(out: _Writer, active, threshold: float) -> list[dict]:
    out.md += ["## Featuremap stability", ""]
    stab = stability(active, threshold, out.notes)
    if stab:
        out.figure(out.plots.stability(stab, threshold), "stability")
        stab_md = stability_markdown(stab, threshold)
        out.text("stability.md", stab_md)
        out.json("stability.json", _json_safe({"threshold": threshold, "runs": stab}))
        out.md += [
            stab_md,
            "Numbers: [stability.json](stability.json) · [stability.md](stability.md)",
            "",
            _figure_links("stability"),
        ]
    else:
        out.notes.append("Stability: no construction iteration with a recorded series; not computed")
        out.md += ["*No construction iteration with a recorded statistic series.*", ""]
    return stab
