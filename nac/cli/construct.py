"""`python -m nac.construct --flagfile=...`: construct an EnvelopeNet end to end.

Modes:
  construct  train the EnvelopeNet briefly while collecting each branch's featuremap statistic,
             restructure (prune the weakest branches of every stage, append an EnvelopeCell),
             repeat --iterations times, then train the result for the final budget
             (best case; --worstcase prunes the strongest branches instead);
  oneshot    train one fixed network (--envelope, --arch or --config) for the final budget;
  random     train --num_random seeded random baselines matched to --arch.

Artefacts go to --run_dir: `iter_<i>/` per construction iteration and `final/` (network.json,
stats.json, res.log, stats_series.json, metrics.json, saved_model/), `random_<j>/`, and
`config.json` (the original's v2.0 schema), `run_config.json`, `flags.txt`, `summary.json`.
Rerunning the same command resumes: finished steps are kept, an interrupted one restarts.

--config=ORIGINAL.json runs an original v2.0 config as it is; flags given explicitly override
it. Its fields map to: steps -> --construction_steps (all of them are trained; oneshot configs:
--final_steps), evalintval -> --eval_every, batchsize -> --batch_size, iterations ->
--iterations (random configs: --num_random), image_size, dataset, data_dir, the envelopenet
section -> --maxlayersperstage, --construction, --parameterlimits, --maxfilterprune, --skip,
--worstcase; gpus is superseded by --strategy.

Output: nac's progress and results. TensorFlow's own logging is silenced (nac.training.runtime);
--verbosity=1 (or -v 1), or NAC_TF_LOGS=1 in the environment, shows it.

Exit codes: 0 done (or already complete), 2 bad flags or input (including corrupt data and
a run directory in use by another process), 3 the training diverged (a non-finite loss or
statistic), 4 a file could not be written (disk full, no permission), 130/143 stopped by
SIGINT/SIGTERM (rerun to resume), 1 unexpected failure. Every error but an unexpected one is
one line on stderr; finished steps are always kept.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from nac.cli import common as cli
from nac.cli import flags as flag_table
from nac.run import runconfig
from nac.spec.errors import NacError

PROG = "nac.construct"
FLAGS = flags.FLAGS

_before = set(FLAGS)
flag_table.define_all()
_NAC_FLAGS = frozenset(set(FLAGS) - _before)

_LIST_INT = ("maxlayersperstage",)
_LIST_BOOL = ("construction", "parameterlimits")


def _parse_bool(flag: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise NacError(f"--{flag}: got {text!r}; expected comma-separated true/false, e.g. true,true,false")


def _parse_int(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise NacError(f"--{flag}: got {text!r}; expected comma-separated integers, e.g. 15,5,3,3") from None
    if value < 1:
        raise NacError(f"--{flag}: got {value}; expected positive integers")
    return value


def flag_values() -> tuple[dict, set]:
    """Reads FLAGS into RunConfig fields and the set of flags given explicitly."""
    fields = ("run_dir", "mode", *runconfig.SECTION_OF)
    values, present = {}, set()
    for name in fields:
        if name not in FLAGS:
            continue
        value = FLAGS[name].value
        if FLAGS[name].present:
            present.add(name)
        if value is not None and name in _LIST_INT:
            value = tuple(_parse_int(name, v) for v in value)
        elif value is not None and name in _LIST_BOOL:
            value = tuple(_parse_bool(name, v) for v in value)
        elif value is not None and name == "random_pool":
            value = tuple(value)
        values[name] = value
    values["deterministic"] = values.get("seed") is not None  # --seed: repeatable CPU runs
    if not values.get("run_dir"):
        raise NacError(
            "--run_dir: missing; give a directory for the run's artefacts, e.g. --run_dir=runs/quickstart"
        )
    return values, present


def describe(config) -> str:
    """The resolved plan of a run, for --dry_run."""
    from nac.spec import cost

    network = config.initial_network()
    image_size = config.resolved_image_size
    lines = [
        f"mode {config.mode} (role {config.role()}), dataset {config.data.dataset} at {image_size}x{image_size}, "
        f"global batch {config.training.batch_size}"
        + (
            f" ({config.training.original_gpus} GPUs x the original's per-GPU {config.per_gpu_batch_size})"
            if config.training.original_gpus > 1
            else ""
        )
        + f", seed {config.runtime.seed if config.runtime.seed is not None else 'drawn at start'}",
        f"network {network.notation(len(config.envelope_cell()))}: "
        f"{cost.count_params(network, image_size):,} trainable parameters",
    ]
    epochs = config.steps_per_epoch()
    if config.mode == "construct":
        lists = config.policy_lists()
        lines.append(
            f"{config.search.iterations} iterations of {config.construction_budget()} steps "
            f"({config.construction_budget() / epochs:.3g} epochs), statistic {config.statistic.statistic}"
        )
        lines.append(
            "per stage: maxlayersperstage "
            + ",".join(map(str, lists["maxlayersperstage"]))
            + "; construction "
            + ",".join(str(v).lower() for v in lists["construction"])
            + f"; maxfilterprune {config.search.maxfilterprune}; worstcase {str(config.search.worstcase).lower()}"
        )
        every = config.train_config(config.construction_budget(), iteration=True).eval_every
        lines.append(
            f"iterations evaluated every {every} steps" if every else "iterations evaluated at their end"
        )
        if config.search.stats_stop_tau:
            rule = config.stop_rule()
            lines.append(
                f"stability stop: tau >= {rule.tau:g} for {rule.patience} records of {config.statistic.stats_every} "
                f"steps, not before step {rule.min_steps}"
            )
        if config.search.inherit_weights:
            lines.append(
                "weights inherited between iterations"
                + (
                    " and into the final network"
                    if config.search.inherit_final
                    else "; the final network from scratch"
                )
            )
    count = config.search.num_random if config.mode == "random" else 1
    lines.append(
        f"{count} final training(s) of {config.final_budget()} steps ({config.final_budget() / epochs:.3g} "
        f"epochs), evaluation every {config.eval_interval()} steps"
    )
    lines.append(f"artefacts in {os.path.abspath(config.run_dir)}")
    return "\n".join(lines)


def nac_flags_text() -> str:
    """nac's own flags (not absl's) with their resolved values, one per line, as a flagfile."""
    return "".join(
        FLAGS[name].serialize() + "\n" for name in sorted(_NAC_FLAGS) if FLAGS[name].value is not None
    )


def command_line() -> str:
    return " ".join([f"python -m {PROG}"] + sys.argv[1:])


def main(argv):
    if len(argv) > 1:
        raise NacError(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --help)")
    from nac.run.runconfig import from_flags

    config = from_flags(*flag_values())  # validated before TensorFlow is imported
    if FLAGS.dry_run:
        print(describe(config))
        return 0
    from nac.training import runtime

    # Before TensorFlow's first import: oneDNN's kernels on (x86-64) and TensorFlow's chatter
    # off unless asked for (nac.training.runtime).
    runtime.enable_onednn()
    runtime.quiet_tensorflow(FLAGS.verbosity if FLAGS["verbosity"].present else 0)
    from nac.run import runner

    return runner.run(config, command_line(), flags_text=nac_flags_text())


def _parse_flags(argv):
    try:
        return FLAGS(argv)
    except flags.Error as e:
        cli.fail(PROG, str(e))
    except SystemExit as e:  # absl's --help exits 1; asking for help is not an error
        if e.code == 1 and any(
            a.split("=")[0] in ("--help", "-h", "--helpshort", "--helpfull", "-?") for a in argv
        ):
            sys.exit(0)
        raise


def run():
    """Console entry point: absl parsing with exit status 2 for user errors."""

    def guarded(argv):
        try:
            return main(argv)
        except NacError as e:
            cli.fail(PROG, str(e), e.exit_code)

    app.run(guarded, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
