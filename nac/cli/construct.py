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

import dataclasses
import os
import sys

from absl import app, flags

from nac.cli import common as cli
from nac.run.runconfig import RunConfig
from nac.search.criteria import NAMES as CRITERIA
from nac.spec.choices import (
    AUGMENTATIONS,
    BN_EVAL_MODES,
    BRANCH_ORDERS,
    CELL_IMPLS,
    DATASET_ALIASES,
    DATASETS,
    LR_SCHEDULES,
    MODES,
    STEMS,
    STRATEGIES,
)
from nac.spec.errors import NacError

PROG = "nac.construct"
FLAGS = flags.FLAGS
# Every flag that is a RunConfig field defaults to that field's default.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _define_flags():
    # -- output ---------------------------------------------------------------------------------
    flags.DEFINE_string(
        "run_dir",
        None,
        "[output] Directory for the run's artefacts; rerun with the same directory to resume.",
    )
    flags.DEFINE_boolean(
        "save_models", _DEFAULTS["save_models"], "[output] Write SavedModels (--nosave_models: none at all)."
    )
    flags.DEFINE_boolean(
        "save_iteration_models",
        _DEFAULTS["save_iteration_models"],
        "[output] Also write a SavedModel per construction iteration (with --save_models; "
        "by default only the final network and every oneshot and random network are exported).",
    )
    flags.DEFINE_boolean("tensorboard", _DEFAULTS["tensorboard"], "[output] Write TensorBoard event files.")
    flags.DEFINE_boolean(
        "progress", _DEFAULTS["progress"], "[output] Show a progress line (one updating line on a terminal)."
    )
    flags.DEFINE_boolean(
        "dry_run", False, "[output] Validate the flags, print the plan and exit (no TensorFlow)."
    )
    flags.DEFINE_boolean(
        "force", _DEFAULTS["force"], "[output] Resume even if the flags change the construction."
    )
    # -- data -----------------------------------------------------------------------------------
    flags.DEFINE_enum(
        "dataset",
        _DEFAULTS["dataset"],
        [*DATASETS, *DATASET_ALIASES],
        "[data] Dataset (synthetic: smoke tests only).",
    )
    flags.DEFINE_string("data_dir", None, "[data] Where the dataset's files are (see README).")
    flags.DEFINE_integer(
        "image_size",
        None,
        "[data] Input size after cropping (default: 28 for cifar10, "
        "fashion_mnist and mnist; 299 for imagenet2012; 16 for synthetic).",
    )
    flags.DEFINE_integer(
        "downsample",
        _DEFAULTS["downsample"],
        "[data] Average-pool the stored images by this factor once at load time (array "
        "datasets: cifar10, fashion_mnist, mnist, synthetic), e.g. 2 with --image_size=14 "
        "trains on 14x14 Fashion-MNIST (default 1: as stored).",
    )
    flags.DEFINE_enum(
        "augment",
        _DEFAULTS["augment"],
        list(AUGMENTATIONS),
        "[data] Training augmentation: original (the original's: random crop from the unpadded "
        "image, flip, brightness, contrast; on ImageNet its Inception pipeline: distorted crop "
        "of area [0.05, 1] in 100 attempts, random resize method, flip, colour distortion), "
        "padded (pad 4 + crop + flip), crop_flip (ImageNet: crop of area [0.08, 1] in 10 "
        "attempts, flip; nac's earlier ImageNet pipeline), none.",
    )
    flags.DEFINE_integer(
        "validation_examples",
        _DEFAULTS["validation_examples"],
        "[data] Examples carved from the end of the training "
        "split for a validation set (0: none, as the original).",
    )
    flags.DEFINE_boolean(
        "cache", _DEFAULTS["cache"], "[data] Cache decoded examples in memory (tfds datasets)."
    )
    # -- search space ---------------------------------------------------------------------------
    flags.DEFINE_enum("mode", _DEFAULTS["mode"], list(MODES), "[search] What to run.")
    flags.DEFINE_string(
        "envelope",
        _DEFAULTS["envelope"],
        "[search] The EnvelopeNet C/n1-n2-.../M (C: stem width, n_i: layers per stage, M: EnvelopeCell ops).",
    )
    flags.DEFINE_enum(
        "stem",
        _DEFAULTS["stem"],
        list(STEMS),
        "[search] Stem: conv1x1 (net A: 1x1 conv + LRN), conv3x3 (net B), imagenet (the "
        "original's ImageNet stem: three layers of parallel stride-2 3x3/5x5/7x7 convs of 32, "
        "64 and 96 filters, fixed whatever C, which sets the body's widths; head keep 0.7 "
        "and 1001 classes on imagenet2012).",
    )
    flags.DEFINE_boolean(
        "skip", _DEFAULTS["skip"], "[search] DenseNet-style skip inputs on every cell (net B)."
    )
    flags.DEFINE_string(
        "arch",
        None,
        "[search] A network file (original network.json list, nac network "
        "JSON or original config) for --mode=oneshot/random, or to construct from.",
    )
    flags.DEFINE_string(
        "config", None, "[search] An original v2.0 config to run as it is; explicit flags override it."
    )
    flags.DEFINE_integer(
        "iterations", _DEFAULTS["iterations"], "[search] Restructuring iterations N (the paper's 5)."
    )
    flags.DEFINE_list(
        "maxlayersperstage",
        None,
        "[search] Per stage, the most layers a stage may have before "
        "it stops being restructured (comma-separated, or one value for all; default: no "
        "stage stops growing before the last iteration).",
    )
    flags.DEFINE_integer(
        "maxfilterprune",
        _DEFAULTS["maxfilterprune"],
        "[search] Branches pruned per stage and iteration (at most 1/3 of the stage's branches).",
    )
    flags.DEFINE_list("construction", None, "[search] Per stage, true/false: restructure it (default: all).")
    flags.DEFINE_list(
        "parameterlimits",
        None,
        "[search] Per stage, true/false: the original's parameter "
        "limit on layer widths (default: all false).",
    )
    flags.DEFINE_boolean(
        "worstcase", _DEFAULTS["worstcase"], "[search] Prune the strongest branches (the paper's worst case)."
    )
    flags.DEFINE_integer(
        "num_random", _DEFAULTS["num_random"], "[search] Random baselines to train in --mode=random."
    )
    flags.DEFINE_list("random_pool", None, "[search] Ops of random baselines (default: the EnvelopeCell's).")
    flags.DEFINE_float(
        "stats_stop_tau",
        _DEFAULTS["stats_stop_tau"],
        "[search] Stability stop: end a construction iteration once Kendall's tau-b between "
        "the branch rankings at consecutive --stats_every records (per stage, weighted by "
        "branches) is >= this for --stats_stop_patience records in a row (0: off, the fixed "
        "windows of the paper).",
    )
    flags.DEFINE_integer(
        "stats_stop_patience",
        _DEFAULTS["stats_stop_patience"],
        "[search] Stability stop: consecutive stable records needed.",
    )
    flags.DEFINE_integer(
        "stats_stop_min_steps",
        None,
        "[search] Stability stop: never before this many steps (default: a quarter of the window).",
    )
    flags.DEFINE_boolean(
        "inherit_weights",
        _DEFAULTS["inherit_weights"],
        "[search] Start every construction iteration after the first from the previous "
        "iteration's trained weights (stem, wideners, head, kept branches; see BUILD_NOTES); "
        "keeps each iteration's weights on disk.",
    )
    flags.DEFINE_boolean(
        "inherit_final",
        _DEFAULTS["inherit_final"],
        "[search] With --inherit_weights, the final network inherits too (default: it trains "
        "from scratch, as Table 1's comparison with random networks needs).",
    )
    # -- statistic ------------------------------------------------------------------------------
    flags.DEFINE_enum(
        "statistic",
        _DEFAULTS["statistic"],
        list(CRITERIA),
        "[statistic] Branch criterion that drives construction (l2: mean squared activation, "
        "the paper's; variance; taylor: |activation x gradient|; l1_kernel: mean |kernel "
        "weight|; random: the control; snip: zero-cost, at the iteration's start, so "
        "--construction_steps=0 is allowed; oracle: loss increase when the branch is zeroed, "
        "needs --validation_examples). stats.json holds its values; l2, variance and taylor "
        "are recorded side by side in criteria.json.",
    )
    flags.DEFINE_integer(
        "stats_every",
        _DEFAULTS["stats_every"],
        "[statistic] Record the running statistic every K steps "
        "(stats_series.json, the paper's Figure 2); 0: only at the end.",
    )
    flags.DEFINE_enum(
        "branch_order",
        _DEFAULTS["branch_order"],
        list(BRANCH_ORDERS),
        "[statistic] Branch op order: the original code's, or the paper text's.",
    )
    flags.DEFINE_enum(
        "cell_impl",
        _DEFAULTS["cell_impl"],
        list(CELL_IMPLS),
        "[statistic] per_cell: one batch norm, ReLU and dropout per cell over its concatenated "
        "branch convolutions (faster; the same function and the same per-branch statistic); "
        "per_branch: Keras layers per branch, as the original's graph (weight names differ).",
    )
    # -- training -------------------------------------------------------------------------------
    flags.DEFINE_integer("construction_steps", None, "[training] Steps per construction iteration.")
    flags.DEFINE_float(
        "construction_epochs",
        None,
        "[training] Epochs per construction iteration "
        "(default 10, the paper's; give steps or epochs, not both).",
    )
    flags.DEFINE_integer("final_steps", None, "[training] Steps of the final (or oneshot/random) training.")
    flags.DEFINE_float("final_epochs", None, "[training] Epochs of the final training (default 100).")
    flags.DEFINE_integer(
        "eval_every",
        None,
        "[training] Steps between test evaluations (default: one epoch for the final, "
        "oneshot and random trainings; construction iterations only at their end).",
    )
    flags.DEFINE_integer(
        "construction_eval_every",
        None,
        "[training] Steps between test evaluations within construction iterations (default: "
        "--eval_every when given, else only at the end of each iteration). Lets a study read "
        "dense curves inside the short construction windows and sparse ones in long trainings.",
    )
    flags.DEFINE_integer(
        "eval_examples",
        _DEFAULTS["eval_examples"],
        "[training] Test images of the evaluations before the last of every training (the "
        "first N; cheaper curves); 0: the whole test set. The last evaluation of every "
        "training, the one reported, always uses the whole test set.",
    )
    flags.DEFINE_integer(
        "batch_size",
        _DEFAULTS["batch_size"],
        "[training] GLOBAL batch size: per-replica batch x replicas (the original's 50).",
    )
    flags.DEFINE_integer(
        "original_gpus",
        _DEFAULTS["original_gpus"],
        "[training] Train as the original did on N GPUs: --batch_size (or the config's "
        "batchsize) is per GPU, the global batch N times it, and the learning rate decays "
        "every decay_epochs x 50,000 images (CIFAR-10's epoch, the original's on every "
        "dataset) / per-GPU batch steps. 0: --batch_size is the global batch (nac's).",
    )
    flags.DEFINE_float("learning_rate", _DEFAULTS["learning_rate"], "[training] Initial learning rate.")
    flags.DEFINE_enum(
        "lr_schedule",
        _DEFAULTS["lr_schedule"],
        list(LR_SCHEDULES),
        "[training] exponential: x decay_rate every decay_epochs (the original's).",
    )
    flags.DEFINE_float(
        "decay_epochs", _DEFAULTS["decay_epochs"], "[training] Epochs per exponential decay step."
    )
    flags.DEFINE_float("decay_rate", _DEFAULTS["decay_rate"], "[training] Exponential decay factor.")
    flags.DEFINE_float(
        "momentum", _DEFAULTS["momentum"], "[training] SGD momentum (the original: plain SGD)."
    )
    flags.DEFINE_float(
        "weight_decay", _DEFAULTS["weight_decay"], "[training] L2 weight decay (the original: none)."
    )
    flags.DEFINE_boolean(
        "ema",
        _DEFAULTS["ema"],
        "[training] Evaluate and export the exponential moving average of "
        "the weights (decay min(0.9999, (1+t)/(10+t)), the original's).",
    )
    flags.DEFINE_enum(
        "bn_eval",
        _DEFAULTS["bn_eval"],
        list(BN_EVAL_MODES),
        "[training] Batch norm at evaluation: recalibrate (re-estimate statistics on "
        "training images first), moving (Keras moving averages), batch_stats (each test "
        "batch's own statistics, the original's behaviour).",
    )
    flags.DEFINE_integer(
        "bn_recalibration_examples",
        _DEFAULTS["bn_recalibration_examples"],
        "[training] Images used to re-estimate batch norm.",
    )
    flags.DEFINE_boolean(
        "synchronized_bn", _DEFAULTS["synchronized_bn"], "[training] Batch statistics over all replicas."
    )
    flags.DEFINE_boolean("mixed_precision", _DEFAULTS["mixed_precision"], "[training] mixed_float16 (GPU).")
    flags.DEFINE_boolean(
        "jit_compile",
        _DEFAULTS["jit_compile"],
        "[training] XLA-compile the training step (GPU; slow on CPU).",
    )
    flags.DEFINE_integer(
        "steps_per_loop",
        None,
        "[training] Training steps per device call; the host reads results once per loop. "
        "Loops end at every statistic record, log line, evaluation and interruption check, so "
        "results equal one step per call. Default: 20 with a GPU, 1 on a CPU alone.",
    )
    # -- runtime --------------------------------------------------------------------------------
    flags.DEFINE_enum(
        "strategy",
        _DEFAULTS["strategy"],
        list(STRATEGIES),
        "[runtime] auto: MultiWorkerMirroredStrategy when TF_CONFIG names several workers, "
        "MirroredStrategy over several GPUs, else one device.",
    )
    flags.DEFINE_integer(
        "intra_op_threads",
        None,
        "[runtime] TensorFlow's intra-op threads (0: TensorFlow's default; default: 1 on a "
        "machine with at most 2 cores, else TensorFlow's default).",
    )
    flags.DEFINE_integer(
        "inter_op_threads",
        None,
        "[runtime] TensorFlow's inter-op threads (0: TensorFlow's default; default: the "
        "number of cores on a machine with at most 2, else TensorFlow's default).",
    )
    flags.DEFINE_integer(
        "seed",
        None,
        "[runtime] Seed; with it, CPU runs are repeatable (op determinism). "
        "Without it one is drawn and saved, so a resumed run still repeats its steps.",
    )


_before = set(FLAGS)
_define_flags()
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
    fields = {f for f in RunConfig.__dataclass_fields__}
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
        f"mode {config.mode} (role {config.role()}), dataset {config.dataset} at {image_size}x{image_size}, "
        f"global batch {config.batch_size}"
        + (
            f" ({config.original_gpus} GPUs x the original's per-GPU {config.per_gpu_batch_size})"
            if config.original_gpus > 1
            else ""
        )
        + f", seed {config.seed if config.seed is not None else 'drawn at start'}",
        f"network {network.notation(len(config.envelope_cell()))}: "
        f"{cost.count_params(network, image_size):,} trainable parameters",
    ]
    epochs = config.steps_per_epoch()
    if config.mode == "construct":
        lists = config.policy_lists()
        lines.append(
            f"{config.iterations} iterations of {config.construction_budget()} steps "
            f"({config.construction_budget() / epochs:.3g} epochs), statistic {config.statistic}"
        )
        lines.append(
            "per stage: maxlayersperstage "
            + ",".join(map(str, lists["maxlayersperstage"]))
            + "; construction "
            + ",".join(str(v).lower() for v in lists["construction"])
            + f"; maxfilterprune {config.maxfilterprune}; worstcase {str(config.worstcase).lower()}"
        )
        every = config.train_config(config.construction_budget(), iteration=True).eval_every
        lines.append(
            f"iterations evaluated every {every} steps" if every else "iterations evaluated at their end"
        )
        if config.stats_stop_tau:
            rule = config.stop_rule()
            lines.append(
                f"stability stop: tau >= {rule.tau:g} for {rule.patience} records of {config.stats_every} "
                f"steps, not before step {rule.min_steps}"
            )
        if config.inherit_weights:
            lines.append(
                "weights inherited between iterations"
                + (
                    " and into the final network"
                    if config.inherit_final
                    else "; the final network from scratch"
                )
            )
    count = config.num_random if config.mode == "random" else 1
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
