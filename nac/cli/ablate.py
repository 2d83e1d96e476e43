"""`python -m nac.ablate STEP_DIR [--examples=N] [--split=test|train|validation] [--out=FILE]`.

The oracle of branch utility: for every branch of a trained step (`RUN/iter_K`, `RUN/final`,
`RUN/random_J`), the loss and accuracy with that branch's featuremap zeroed (after its ReLU,
where the tap sits), the rest of the network as evaluated at the step's end (evaluation
weights, batch-norm statistics as saved). Writes `nac-ablation/1` JSON (default
STEP_DIR/ablation.json): the base loss and accuracy, per branch the ablated loss, accuracy,
their changes and the step's criteria, and per stage Kendall tau-b of each criterion against
delta_loss (95% bootstrap interval over images) and the restructure rule's prune agreement.
Any error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os

from nac.cli import common as cli
from nac.run import ablate as ablate_lib
from nac.search.ablation import ABLATION_FILE
from nac.spec.errors import NacError
from nac.spec.jsonio import write_json

PROG = "nac.ablate"
DEFAULT_EXAMPLES = 2000


def _parser():
    parser = cli.ArgumentParser(PROG, __doc__)
    parser.add_argument(
        "step_dir", metavar="STEP_DIR", help="a trained step: RUN/iter_K, RUN/final, RUN/random_J"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"the first N images of the split (default {DEFAULT_EXAMPLES}; 0: all of them)",
    )
    parser.add_argument("--split", choices=ablate_lib.SPLITS, default="test", help="images to evaluate on")
    parser.add_argument("--out", default=None, help=f"output file (default STEP_DIR/{ABLATION_FILE})")
    return parser


def main(argv) -> int:
    """Validates the arguments and the step (before TensorFlow loads), ablates, writes --out."""
    args = _parser().parse_args(argv)
    if args.examples < 0:
        raise NacError(f"--examples: got {args.examples}; expected an integer >= 0 (0: the whole split)")
    step = ablate_lib.prepare(args.step_dir)
    out = args.out or os.path.join(step.step_dir, ABLATION_FILE)
    from nac.training import runtime

    runtime.enable_onednn()  # before TensorFlow's first import, as nac.construct
    runtime.quiet_tensorflow()
    with runtime.native_stderr_filtered():
        runtime.configure_threads(step.config.runtime.intra_op_threads, step.config.runtime.inter_op_threads)
    doc = ablate_lib.ablate_step(step, args.split, args.examples or None)
    try:
        write_json(out, doc)
    except OSError as e:
        cli.fail(PROG, f"cannot write {out!r}: {e.strerror or e}; check the path")
    for stage in doc["stages"]:
        taus = ", ".join(
            f"{n} {t['value']:+.2f}" if t["value"] is not None else f"{n} n/a"
            for n, t in stage["tau"].items()
        )
        print(f"stage {stage['stage']}: tau vs oracle: {taus}")
    print(f"wrote {out}")
    return 0


run = cli.console_script(PROG, main)


if __name__ == "__main__":
    run()
