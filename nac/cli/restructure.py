"""`python -m nac.restructure --config CONFIG.json --arch ARCH.json --stats STATS --out NEXT.json`.

One EnvelopeNet restructure step (`nac.search.restructure`) on an original v2.0 construction
config, the original's `network.json` list and a `stats.json` or original `res.log`; writes
the next `network.json` (indent 4, sorted keys) atomically. Any error is one line on stderr,
exit status 2, and no output file.
"""

from __future__ import annotations

import argparse

from nac.cli import common as cli
from nac.search import statsio
from nac.search.restructure import Policy, restructure_with_report
from nac.spec import arch as arch_lib
from nac.spec.config import OriginalConfig
from nac.spec.errors import SpecError
from nac.spec.jsonio import load_json, write_json

PROG = "nac.restructure"


def _parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(PROG, "One EnvelopeNet restructure step on an original network.json.")
    parser.add_argument("--config", required=True, help="original v2.0 construction config")
    parser.add_argument("--arch", required=True, help="the trained network.json (a JSON list)")
    parser.add_argument("--stats", required=True, help="stats.json or the original's res.log")
    parser.add_argument("--out", required=True, help="where to write the next network.json")
    parser.add_argument(
        "--statistic",
        "--metric",  # the flag's former name; kept so that existing commands still run
        dest="statistic",
        choices=sorted(statsio.LOG_TAGS),
        default="l2",
        help="statistic read from a res.log: l2 (MeanSSS lines) or variance (--metric: the same)",
    )
    return parser


def main(argv) -> int:
    """Reads the inputs, restructures, writes `--out` and prints a summary."""
    args = _parser().parse_args(argv)
    config = OriginalConfig.load(args.config)
    policy = Policy.from_config(config)
    value = load_json(args.arch, SpecError, "architecture file")
    try:
        body = arch_lib.body_from_original(value)
    except SpecError as e:
        raise SpecError(f"{args.arch}: {e}") from None
    network = config.network(body)
    stats = statsio.read_stats(args.stats, args.statistic)
    new, report = restructure_with_report(network, stats, policy)
    try:
        write_json(args.out, new.arch_json(), original_format=True)
    except OSError as e:
        cli.fail(PROG, f"cannot write {args.out!r}: {e.strerror or e}; check the path")
    cell_size = len(policy.envelopecell)
    for stage in report.stages:
        print(stage.describe())
    print(f"{network.notation(cell_size)} -> {new.notation(cell_size)}; wrote {args.out}")
    return 0


run = cli.console_script(PROG, main)


if __name__ == "__main__":
    run()
