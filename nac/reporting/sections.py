"""The report's sections: each writes its part of report.md and its files (`Writer`) and
returns its part of report.json (`nac.reporting.report.build_report` calls them in order)."""

from __future__ import annotations

import math
import os

from nac.reporting import chance
from nac.reporting.ablation import ablation_section, read_ablations
from nac.reporting.gather import accuracy_curves, first_panels, replay_iterations, width_profiles
from nac.reporting.mechanism import mechanism_section
from nac.reporting.stability import stability, stability_markdown
from nac.reporting.table1 import net_results, table_csv, table_markdown, table_rows
from nac.run.rundir import CONSTRUCTION_ROLES, ROLE_LABELS, Run
from nac.spec.jsonio import write_atomic, write_json


def json_safe(value):
    """`value` with non-finite floats as None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


FIGURE_FORMATS = ("png", "svg", "pdf")


def figure_links(stem: str, formats=FIGURE_FORMATS) -> str:
    """A figure's Markdown: the PNG (else the SVG) inline, then a link to each file written."""
    inline = [f"![{stem}]({stem}.{ext})\n" for ext in ("png", "svg") if ext in formats][:1]
    links = " · ".join(f"[{stem}.{ext}]({stem}.{ext})" for ext in formats)
    return "\n".join([*inline, links + "\n"])


class Writer:
    """The report being written: report.md's lines, the files written, the notes."""

    def __init__(self, out_dir, plots, notes: list[str], formats=FIGURE_FORMATS):
        self.out_dir, self.plots, self.notes, self.formats = out_dir, plots, notes, tuple(formats)
        self.md: list[str] = []
        self.files: list[str] = []

    def figure(self, fig, stem) -> list[str]:
        """Writes the figure in every format of the report; returns the file names."""
        names = self.plots.save(fig, self.out_dir, stem, self.formats)
        self.files.extend(names)
        return names

    def links(self, stem: str) -> str:
        """The Markdown of a figure written by `figure`."""
        return figure_links(stem, self.formats)

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
            self.md += [caption, "", self.links(stem)]


def runs_section(out: Writer, runs: list[Run]) -> None:
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


def table1_section(out: Writer, active, variants, runs_by_label):
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


def figure2_section(out: Writer, active, iteration: int, originals: bool):
    out.md += ["## Figure 2: featuremap statistic", ""]
    fig2 = first_panels(
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
            out.links("figure2_statistic"),
        ]
    else:
        out.notes.append(
            f"Figure 2: no construction run has a recorded series for iteration {iteration}; not drawn"
        )
        out.md += [f"*No construction run has a recorded statistic series for iteration {iteration}.*", ""]
    fig2_original = first_panels(
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
            out.links("figure2_statistic_original"),
        ]
    elif originals:
        out.notes.append(f"Figure 2 (original): no res.log for iteration {iteration}; not drawn")
    return fig2, fig2_original


def figure3_section(out: Writer, active, variants):
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


def figure4_section(out: Writer, active):
    out.md += ["## Figure 4: layer widths of constructed networks", ""]
    # Runs of different settings apart; beside them, restructures with random statistics.
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


def architectures_section(out: Writer, active) -> list[dict]:
    out.md += ["## Architectures per iteration", ""]
    arch_json = []
    for run in active:
        if run.role not in CONSTRUCTION_ROLES:
            continue
        if run.origin == "original" and run.config is None:
            out.notes.append(f"{run.label}: no --original_config; the replay check was skipped")
        for entry in replay_iterations(run, out.notes):
            stem = f"arch_{run.file_label}_iter{entry['iteration']}"
            files = out.figure(out.plots.architecture(run.label, entry), stem)
            report = entry["report"]
            out.md.append(f"### {run.label} iteration {entry['iteration']} ({entry['notation']})")
            out.md.append("")
            if report is not None:
                out.md += [f"- {s.describe()}" for s in report.stages]
                if entry["matches_next"] is False:
                    out.md.append("- **the recomputed network differs from the next step's network.json**")
                out.md.append("")
            out.md.append(out.links(stem))
            arch_json.append(
                {
                    "run": run.label,
                    "iteration": entry["iteration"],
                    "notation": entry["notation"],
                    "next_notation": entry.get("next_notation"),
                    "restructure": None if report is None else report.to_dict(),
                    "matches_next": entry["matches_next"],
                    "files": files,
                }
            )
    if not arch_json:
        out.notes.append("Architecture pictures: no construction iteration finished; none drawn")
        out.md += ["*No construction iteration finished.*", ""]
    return arch_json


def stability_section(out: Writer, active, threshold: float) -> list[dict]:
    out.md += ["## Featuremap stability", ""]
    stab = stability(active, threshold, out.notes)
    if stab:
        out.figure(out.plots.stability(stab, threshold), "stability")
        stab_md = stability_markdown(stab, threshold)
        out.text("stability.md", stab_md)
        out.json("stability.json", json_safe({"threshold": threshold, "runs": stab}))
        out.md += [
            stab_md,
            "Numbers: [stability.json](stability.json) · [stability.md](stability.md)",
            "",
            out.links("stability"),
        ]
    else:
        out.notes.append("Stability: no construction iteration with a recorded series; not computed")
        out.md += ["*No construction iteration with a recorded statistic series.*", ""]
    return stab


def controls_sections(out: Writer, active) -> dict:
    """The criteria against the oracle (`ablation.json`) and the seeds' pruning agreement
    against chance; returns their parts of report.json."""
    entries = read_ablations(active, out.notes)
    return {
        "ablation": ablation_section(out, active, entries),
        "mechanism": mechanism_section(out, entries, active),
        "pruning_agreement": chance.agreement_section(out, active),
    }
