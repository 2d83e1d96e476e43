"""`python -m nac.report RUN_DIR... --out DIR`: the paper's Table 1 and Figures 2-4 from run dirs.

Reads run directories written by `python -m nac.construct` (any mix of roles: constructed,
worst_case, envelope, random, oneshot; complete or partial) and writes into DIR (every figure
as PNG, SVG and PDF, or the formats `--formats` names):

* `table1.md`, `table1.csv` - Table 1. One row per group of trained networks with equal
  (role, dataset, notation), in the paper's order (envelope, constructed, worst case, random,
  oneshot), giving n and mean ± std of parameters, FLOPs (forward and training counts per
  batch of the paper's batch, 50 or 64 on ImageNet, and forward per image; see `nac.reporting.table1`),
  test error (%) and, for constructed and worst-case rows, the construction cost
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
  std band per role (constructed, envelope, worst case, random, oneshot; constructions with
  the stability stop or weight inheritance apart, dotted), one panel per dataset. Members whose evaluation steps are identical are aggregated as they are; otherwise
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
* the study statistics (`nac.reporting.studystats`, report.md's "Study statistics" section and
  report.json's "study"): per role mean ± std of test error and parameters; constructed minus
  random, worst case and envelope with 95% bootstrap intervals (paired by construction seed,
  or by the constructed net a random run was drawn for via its --arch, and unpaired); how many
  random nets each constructed net beats; the accuracy gained over the last 20% of every
  training; per construction iteration, the step the ranking is stable from against the step
  accuracy converged from.
* `report.md` (embeds the table, links the figures, lists notes) and `report.json` (every
  number above).

The original's results (`--original results/`, with `--original_config FILE` for the
original config that produced them; see `nac.reporting.original_results`) enter the same outputs,
marked "(original)": a Table 1 row from its networks (parameters and FLOPs counted by nac,
accuracy from its `Precision @ 1` events), `figure2_statistic_original.{png,svg}` from its
`res.log` (x: the n-th logged value of each branch), its curve in Figure 3 (dashed), the
architecture of every iteration and, with a config, whether `nac.restructure` on an
iteration's `res.log` gives the next iteration's `network.json` (skipped with a note
without one). Reading event files imports TensorFlow; nothing else does.

Partial runs are reported as far as they got: a run without `summary.json` is read from its
finished step directories; a construction without `final/` contributes its iterations to
Figure 2, the stability analysis and the architecture pictures but no Table 1 row; a run with
no finished step is skipped. Every figure without data is skipped with a note in `report.md`.
A path that is not a run directory, corrupt JSON, or no run directory at all is one line on
stderr and exit status 2. No TensorFlow is imported (matplotlib with the Agg backend draws).
"""

from __future__ import annotations

import argparse

from nac.cli import common as cli
from nac.reporting.report import build_report
from nac.reporting.sections import FIGURE_FORMATS
from nac.search.stability import DEFAULT_THRESHOLD
from nac.spec.errors import RunError

PROG = "nac.report"


def make_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(PROG, __doc__)
    p.add_argument(
        "run_dirs", nargs="*", metavar="RUN_DIR", help="run directories of python -m nac.construct"
    )
    p.add_argument(
        "--original",
        action="append",
        default=[],
        metavar="RESULTS",
        help="a results folder of the original code (results/<archname>, results/<archname>-<k>); repeatable",
    )
    p.add_argument(
        "--original_config",
        metavar="FILE",
        help="the original config that produced the --original results (stem, head, image size, "
        "batch, restructure policy); without it the replay check is skipped",
    )
    p.add_argument("--out", required=True, help="directory for the report's files (created if missing)")
    p.add_argument("--iteration", type=int, default=0, help="construction iteration of Figure 2 (default 0)")
    p.add_argument(
        "--stability_threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="tau-b a ranking must keep to count as stable (default 0.9)",
    )
    p.add_argument(
        "--formats",
        default=",".join(FIGURE_FORMATS),
        help="comma-separated file formats of every figure, of png, svg, pdf (default png,svg,pdf); "
        "report.md shows the PNG, else the SVG",
    )
    return p


def parse_formats(value: str) -> tuple[str, ...]:
    """`png,svg` -> ("png", "svg"); one line naming the flag, the value and the choices otherwise."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in value.split(",") if f.strip()))
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise RunError(
            f"--formats: got {value!r}; expected a comma-separated list of {', '.join(FIGURE_FORMATS)}"
        )
    return formats


def main(argv) -> int:
    args = make_parser().parse_args(argv)
    formats = parse_formats(args.formats)
    if args.iteration < 0:
        raise RunError(f"--iteration: got {args.iteration}; expected an integer >= 0")
    if not -1.0 <= args.stability_threshold <= 1.0:
        raise RunError(f"--stability_threshold: got {args.stability_threshold}; expected a number in [-1, 1]")
    if args.original_config and not args.original:
        raise RunError("--original_config: given without --original; pass the results folder it produced")
    report = build_report(
        args.run_dirs,
        args.out,
        args.iteration,
        args.stability_threshold,
        args.original,
        args.original_config,
        formats,
    )
    print(f"wrote {len(report['files'])} files to {args.out} ({len(report['notes'])} notes in report.md)")
    return 0


run = cli.console_script(PROG, main)


if __name__ == "__main__":
    run()
