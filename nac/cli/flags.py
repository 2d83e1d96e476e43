"""The construct command's flag table: one `define_<section>()` per `[section]` of its help.

Every flag that is a RunConfig field defaults to that field's default; `define_all()` defines
the table in the order of the help's sections.
"""

from __future__ import annotations

from absl import flags

from nac.run import runconfig
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

# Every flag that is a RunConfig field defaults to that field's default.
_DEFAULTS = runconfig.flat_defaults()


def define_output():
    """The [output] flags: where artefacts go and which are written."""
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


def define_data():
    """The [data] flags: dataset, image size and input pipeline."""
    flags.DEFINE_string(
        "dataset",
        _DEFAULTS["dataset"],
        f"[data] Dataset: {', '.join([*DATASETS, *DATASET_ALIASES])} (synthetic: smoke tests "
        "only), tfds:NAME[/CONFIG] (a prepared tensorflow-datasets image classification set in "
        "--data_dir or ~/tensorflow_datasets) or folder:PATH (PATH/train/<class>/*.png|jpg and "
        "PATH/test/<class>/*).",
    )
    flags.DEFINE_string("data_dir", None, "[data] Where the dataset's files are (see README).")
    flags.DEFINE_integer(
        "image_size",
        None,
        "[data] Input size after cropping (default: 28 for cifar10, "
        "fashion_mnist and mnist; 299 for imagenet2012; 16 for synthetic; tfds: the stored "
        "size; folder: the first training image's smaller side, every image resized to it).",
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
    _define_data_sources()


def _define_data_sources():
    """The [data] flags of the sources with named splits (tfds:, folder:)."""
    flags.DEFINE_string(
        "train_split",
        _DEFAULTS["train_split"],
        "[data] The split trained on (tfds: and folder: datasets; a folder's subfolder).",
    )
    flags.DEFINE_string(
        "test_split",
        _DEFAULTS["test_split"],
        "[data] The split evaluated on (tfds: and folder: datasets; a folder's subfolder).",
    )
    flags.DEFINE_float(
        "validation_fraction",
        _DEFAULTS["validation_fraction"],
        "[data] Without a test split (tfds: and folder: datasets), hold out this fraction of "
        "the training split, drawn with the seed, as the test split (0: require a test split).",
    )


def define_search():
    """The [search] flags: the search space, the stability stop and weight inheritance."""
    _define_search_space()
    _define_search_stop_and_inheritance()


def _define_search_space():
    """The [search] flags of the mode, the starting network and the restructuring policy."""
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
        "match_params",
        _DEFAULTS["match_params"],
        "[search] With --mode=random, redraw each random network until its parameter count is "
        "within this fraction of --arch's (e.g. 0.05; 0: no matching). Draws are seeded and "
        "counted in metrics.json.",
    )


def _define_search_stop_and_inheritance():
    """The [search] flags of the stability stop and weight inheritance."""
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


def define_statistic():
    """The [statistic] flags: the featuremap statistic and how it is recorded."""
    flags.DEFINE_enum(
        "statistic",
        _DEFAULTS["statistic"],
        list(CRITERIA),
        "[statistic] Branch criterion that drives construction (l2: mean squared activation, "
        "the paper's; variance; taylor: |activation x gradient|; l1_kernel: mean |kernel "
        "weight|; random: the control; snip: zero-cost, at the iteration's start, so "
        "--construction_steps=0 is allowed; oracle: the loss increase on --validation_examples "
        "held-out training images when the branch is zeroed, see nac.ablate). stats.json holds "
        "its values; l2, variance and taylor are recorded side by side in criteria.json.",
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


def define_training():
    """The [training] flags: budgets, evaluation, batch, optimiser and numerics."""
    _define_training_budgets()
    _define_training_optimizer()


def _define_training_budgets():
    """The [training] flags of the step budgets, evaluations and batch."""
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


def _define_training_optimizer():
    """The [training] flags of the learning rate, optimiser, batch norm and numerics."""
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


def define_runtime():
    """The [runtime] flags: strategy, threads and seed."""
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


def define_all():
    """Defines the whole table, section by section."""
    define_output()
    define_data()
    define_search()
    define_statistic()
    define_training()
    define_runtime()
