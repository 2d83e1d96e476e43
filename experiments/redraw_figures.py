"""Redraws a report's figures from its report.json (the data nac.report plotted), in place.

    python experiments/redraw_figures.py docs/study

Figure 2, Figure 3, Figure 4 and the stability figure are drawn again with the current
drawing code (`nac.reporting.plots`) as PNG, SVG and PDF into the report's folder; the run
directories are not needed. Architecture pictures need the runs: rerun nac.report for them.
"""

from __future__ import annotations

import json
import os
import sys


def redraw(report_dir: str) -> list[str]:
    """Redraws the figures of `report_dir/report.json`; returns the files written."""
    from nac.reporting import plots

    with open(os.path.join(report_dir, "report.json")) as f:
        report = json.load(f)
    figures = []
    if report.get("figure2"):
        figures.append((plots.figure2(report["figure2"]), "figure2_statistic"))
    if report.get("figure2_original"):
        figures.append((plots.figure2(report["figure2_original"]), "figure2_statistic_original"))
    if report.get("figure3"):
        figures.append((plots.figure3(report["figure3"]), "figure3_accuracy"))
    if report.get("figure4"):
        figures.append((plots.figure4(report["figure4"]), "figure4_widths"))
    stability = report.get("stability") or {}
    if stability.get("runs"):
        figures.append((plots.stability(stability["runs"], stability["threshold"]), "stability"))
    written = []
    for fig, stem in figures:
        written += plots.save(fig, report_dir, stem)
    return written


def main(argv) -> int:
    if len(argv) != 2 or not os.path.isfile(os.path.join(argv[1], "report.json")):
        print("usage: python experiments/redraw_figures.py REPORT_DIR (holding report.json)", file=sys.stderr)
        return 2
    for name in redraw(argv[1]):
        print(os.path.join(argv[1], name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
