"""The report over run directories: Table 1, Figures 2-4, stability, study statistics.

`build_report` reads the runs once and writes every section into the output folder; what each
file holds is the command's help (`nac.cli.report`).
"""

from __future__ import annotations

import dataclasses
import os

from nac.reporting import original_results, sections, studystats
from nac.reporting.gather import (  # noqa: F401 (re-exported: the report's data functions)
    FIGURE3_ROLES,
    accuracy_curves,
    aggregate_curves,
    length_variants,
    replay_iterations,
    run_variant,
    statistic_panels,
    study_statistics,
    width_profiles,
)
from nac.run.rundir import CONSTRUCTION_ROLES, Run, file_label, load_runs
from nac.search.stability import DEFAULT_THRESHOLD
from nac.spec.errors import RunError
from nac.spec.jsonio import write_json

PROG = "nac.report"


def build_report(
    paths,
    out_dir,
    iteration: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    originals=(),
    original_config: str | None = None,
    formats=sections.FIGURE_FORMATS,
) -> dict:
    """Reads the runs and writes every report file into `out_dir`; returns report.json's dict.

    `originals`: the original's results folders, read with `original_config`; `formats`: figures'.

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
    out = sections.Writer(out_dir, plots, notes, formats)
    out.md += ["# NAC report", ""]
    sections.runs_section(out, runs)
    variants = {r.label: run_variant(r) for r in active if r.role in CONSTRUCTION_ROLES}
    variants |= length_variants(active)
    rows, nets = sections.table1_section(out, active, variants, {r.label: r for r in runs})
    fig2, fig2_original = sections.figure2_section(out, active, iteration, bool(originals))
    curves = sections.figure3_section(out, active, variants)
    widths = sections.figure4_section(out, active)
    arch_json = sections.architectures_section(out, active)
    stab = sections.stability_section(out, active, threshold)
    controls = sections.controls_sections(out, active)
    study = study_statistics(active, stab, variants)
    out.md += ["## Study statistics", "", studystats.study_markdown(study), "## Notes", ""]
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
        **controls,
        "study": study,
        "notes": notes,
        "files": out.files + ["report.json"],
    }
    write_json(os.path.join(out_dir, "report.json"), sections.json_safe(report))
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
