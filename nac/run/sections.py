"""The sections of a run's configuration (pure Python, no TensorFlow, no absl).

One frozen dataclass per `[section]` of `nac.construct`'s flags: `DataSection`,
`SearchSection`, `StatisticSection`, `TrainingSection`, `RuntimeSection`, `OutputSection`.
Field names are the flag names; each section checks its own fields in `__post_init__` with
one line naming the flag, the value and the fix. Checks that need more than one section sit
in `nac.run.runconfig.RunConfig`. Adding a flag to a section is one field here: the flat
form of `run_config.json` follows the fields (`nac.run.runconfig.SECTIONS`).
"""

from __future__ import annotations

import dataclasses

from nac.search import criteria as criteria_lib
from nac.spec import arch as arch_lib
from nac.spec import datasets
from nac.spec.checks import lists_to_tuples
from nac.spec.choices import (
    AUGMENTATIONS,
    BRANCH_ORDERS,
    CELL_IMPLS,
    DATASETS,
    STEMS,
    STRATEGIES,
    DatasetFacts,
)
from nac.spec.config import RandomParams
from nac.spec.errors import ConfigError, SpecError
from nac.training.recipe import TrainConfig

_RECIPE = TrainConfig(steps=1)
# TrainingSection fields passed to the training recipe (`TrainConfig`) unchanged.
RECIPE_FIELDS = (
    "batch_size",
    "learning_rate",
    "lr_schedule",
    "decay_rate",
    "momentum",
    "weight_decay",
    "ema",
    "bn_eval",
    "bn_recalibration_examples",
    "eval_examples",
    "mixed_precision",
    "jit_compile",
)
# Fields resolved from `--config` (an original v2.0 file), not flags of their own.
RESOLVED_FIELDS = ("config_network", "envelopecell", "config_random")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_choices(section, choices: dict):
    """Each field of `choices` holds one of its allowed values."""
    for flag, allowed in choices.items():
        if getattr(section, flag) not in allowed:
            raise ConfigError.got(
                f"--{flag}", getattr(section, flag), f"expected one of {', '.join(allowed)}"
            )


def check_minimum(section, minimums: dict):
    """Each field of `minimums` is an integer of at least its minimum."""
    for flag, minimum in minimums.items():
        value = getattr(section, flag)
        if not _is_int(value) or value < minimum:
            raise ConfigError.got(f"--{flag}", value, f"expected an integer >= {minimum}")


def check_optional_positive(section, names):
    """Each field of `names` is unset or a positive integer."""
    for flag in names:
        value = getattr(section, flag)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError.got(f"--{flag}", value, "expected a positive integer")


@dataclasses.dataclass(frozen=True)
class DataSection:
    """`[data]`: the dataset, its files and its preprocessing.

    A built-in dataset is checked here against its typed facts; a source's (`tfds:`,
    `folder:`) facts depend on the seed too, so `nac.run.runconfig.RunConfig` resolves them
    and calls `check_facts`.
    """

    dataset: str = "cifar10"
    data_dir: str | None = None
    image_size: int | None = None
    downsample: int = 1
    augment: str = "original"
    validation_examples: int = 0
    cache: bool = False
    # --- data sources ---
    train_split: str = datasets.TRAIN_SPLIT
    test_split: str = datasets.TEST_SPLIT
    validation_fraction: float = 0.0

    def __post_init__(self):
        if isinstance(self.dataset, str):
            object.__setattr__(self, "dataset", datasets.canonical(self.dataset))
        check_choices(self, {"augment": AUGMENTATIONS})
        self._check_source()
        check_minimum(self, {"validation_examples": 0, "downsample": 1})
        if self.augment == "crop_flip" and self.dataset != "imagenet2012":
            raise ConfigError.got(
                "--augment", self.augment, "crop_flip is for imagenet2012; use original, padded or none"
            )
        check_optional_positive(self, ("image_size",))
        if self.builtin:
            self.check_facts(DATASETS[self.dataset])

    @property
    def builtin(self) -> bool:
        """True for a built-in dataset name (typed facts), False for a source's value."""
        return datasets.split_value(self.dataset)[0] is None

    def _check_source(self):
        """`--dataset` (a built-in name, tfds:NAME[/CONFIG], folder:PATH) and its split flags."""
        if not isinstance(self.dataset, str) or not datasets.is_known(self.dataset):
            raise ConfigError.got("--dataset", self.dataset, datasets.usage())
        for flag in ("train_split", "test_split"):
            value = getattr(self, flag)
            if not isinstance(value, str) or not value or "/" in value:
                raise ConfigError.got(f"--{flag}", value, "expected a split name, e.g. train or test")
        datasets.check_fraction(self.validation_fraction)
        if not datasets.has_named_splits(self.dataset) and (
            self.train_split != datasets.TRAIN_SPLIT
            or self.test_split != datasets.TEST_SPLIT
            or self.validation_fraction
        ):
            raise ConfigError.got(
                "--dataset",
                self.dataset,
                "--train_split, --test_split and --validation_fraction are for tfds: and folder: "
                "datasets; the built-in sets and in-memory arrays use --validation_examples",
            )

    def check_facts(self, facts: DatasetFacts):
        """The checks that need the dataset's facts: `--downsample`, `--validation_examples`."""
        self._check_downsample(facts)
        self._check_image_size(facts)
        if self.validation_examples >= facts.train_examples and self.dataset != "synthetic":
            raise ConfigError.got(
                "--validation_examples",
                self.validation_examples,
                f"must be smaller than the {facts.train_examples} training examples",
            )

    def _check_downsample(self, facts: DatasetFacts):
        d = self.downsample
        if d == 1:
            return
        if self.dataset == "imagenet2012":
            raise ConfigError.got(
                "--downsample",
                d,
                "it is for the array datasets (cifar10, fashion_mnist, mnist, synthetic); use 1",
            )
        raw = facts.raw_size
        if raw is not None and raw % d:
            raise ConfigError.got(
                "--downsample", d, f"{self.dataset}'s {raw}x{raw} images need a factor dividing {raw}"
            )
        if raw is not None and self.image_size and self.image_size > raw // d:
            raise ConfigError.got(
                "--image_size",
                self.image_size,
                f"--downsample={d} leaves {raw // d}x{raw // d} images; use --image_size <= {raw // d}",
            )

    def _check_image_size(self, facts: DatasetFacts):
        """`--image_size` must fit the stored images (random and central crops only shrink)."""
        raw, size = facts.raw_size, self.image_size
        if raw is None or self.downsample != 1 or not isinstance(size, int) or size <= raw:
            return  # --downsample's own check covers the pooled sizes
        raise ConfigError.got(
            "--image_size",
            size,
            f"{self.dataset}'s stored images are {raw}x{raw} (crops only shrink them); "
            f"use --image_size <= {raw}",
        )


@dataclasses.dataclass(frozen=True)
class SearchSection:
    """`[search]`: the starting network, the restructure policy and the search's savings."""

    envelope: str = "128/10-1-1-1/6"
    stem: str = "conv1x1"
    skip: bool = False
    arch: str | None = None
    config: str | None = None
    iterations: int = 5
    maxlayersperstage: tuple[int, ...] | None = None
    maxfilterprune: int = 6
    construction: tuple[bool, ...] | None = None
    parameterlimits: tuple[bool, ...] | None = None
    worstcase: bool = False
    num_random: int = 10
    random_pool: tuple[str, ...] | None = None
    stats_stop_tau: float = 0.0
    stats_stop_patience: int = 3
    stats_stop_min_steps: int | None = None
    inherit_weights: bool = False
    inherit_final: bool = False
    match_params: float = 0.0  # --mode=random: redraw until within this fraction of the params
    # resolved from --config (an original v2.0 file), not flags of their own
    config_network: dict | None = None
    envelopecell: tuple[tuple[str, str], ...] | None = None
    config_random: RandomParams | None = None  # run_config.json keeps the original's dict

    def __post_init__(self):
        lists_to_tuples(self, ("maxlayersperstage", "construction", "parameterlimits", "random_pool"))
        if self.envelopecell is not None:
            cell = self.envelopecell.items() if isinstance(self.envelopecell, dict) else self.envelopecell
            object.__setattr__(self, "envelopecell", tuple(sorted(tuple(b) for b in cell)))
        if isinstance(self.config_random, dict):  # read back from run_config.json
            object.__setattr__(self, "config_random", RandomParams.from_original(self.config_random))
        check_choices(self, {"stem": STEMS})
        check_minimum(self, {"maxfilterprune": 1, "num_random": 1, "iterations": 0})
        if self.random_pool is not None:
            for op in self.random_pool:
                try:
                    arch_lib.Op.parse(op, "--random_pool")
                except SpecError as e:
                    raise ConfigError(str(e)) from None
        self._check_savings()

    def _check_savings(self):
        """The stability stop and weight inheritance (`nac.search.stopping`, `nac.search.inherit`)."""
        tau = self.stats_stop_tau
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau <= 1:
            raise ConfigError.got(
                "--stats_stop_tau", tau, "expected a Kendall tau in (0, 1], or 0 to train fixed windows"
            )
        patience = self.stats_stop_patience
        if not _is_int(patience) or patience < 1:
            raise ConfigError.got(
                "--stats_stop_patience", patience, "expected an integer >= 1 (stable records in a row)"
            )
        minimum = self.stats_stop_min_steps
        if minimum is not None and (not _is_int(minimum) or minimum < 0):
            raise ConfigError.got(
                "--stats_stop_min_steps",
                minimum,
                "expected an integer >= 0 (default: a quarter of the window)",
            )
        if self.inherit_final and not self.inherit_weights:
            raise ConfigError.got(
                "--inherit_final", True, "needs --inherit_weights (the final network inherits only then)"
            )
        f = self.match_params
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
            raise ConfigError.got(
                "--match_params", f, "expected a fraction in [0, 1), e.g. 0.05 (0: no matching)"
            )

    def to_flat(self) -> dict:
        out = dataclasses.asdict(self)
        if self.config_random is not None:
            out["config_random"] = self.config_random.to_original()
        return out


@dataclasses.dataclass(frozen=True)
class StatisticSection:
    """`[statistic]`: the featuremap statistic and the cell form it is measured in."""

    statistic: str = "l2"
    stats_every: int = 100
    branch_order: str = "conv_bn_relu"
    cell_impl: str = "per_cell"

    def __post_init__(self):
        check_choices(
            self, {"statistic": criteria_lib.NAMES, "branch_order": BRANCH_ORDERS, "cell_impl": CELL_IMPLS}
        )
        check_minimum(self, {"stats_every": 0})


@dataclasses.dataclass(frozen=True)
class TrainingSection:
    """`[training]`: step budgets, evaluation and the training recipe."""

    construction_steps: int | None = None
    construction_epochs: float | None = None
    final_steps: int | None = None
    final_epochs: float | None = None
    eval_every: int | None = None
    construction_eval_every: int | None = None
    eval_examples: int = _RECIPE.eval_examples
    # the training recipe's defaults are nac.training.recipe.TrainConfig's
    batch_size: int = _RECIPE.batch_size
    learning_rate: float = _RECIPE.learning_rate
    lr_schedule: str = _RECIPE.lr_schedule
    decay_epochs: float = _RECIPE.decay_epochs
    decay_rate: float = _RECIPE.decay_rate
    momentum: float = _RECIPE.momentum
    weight_decay: float = _RECIPE.weight_decay
    ema: bool = _RECIPE.ema
    bn_eval: str = _RECIPE.bn_eval
    bn_recalibration_examples: int = _RECIPE.bn_recalibration_examples
    # >= 1: run an original config as the original did on this many GPUs (its batchsize per
    # GPU, its decay interval); `batch_size` is then the global batch, from_flags multiplies.
    original_gpus: int = 0
    synchronized_bn: bool = False
    mixed_precision: bool = _RECIPE.mixed_precision
    jit_compile: bool = _RECIPE.jit_compile
    steps_per_loop: int | None = None

    def __post_init__(self):
        check_minimum(self, {"batch_size": 1, "eval_examples": 0, "original_gpus": 0})
        if self.original_gpus > 1 and self.batch_size % self.original_gpus:
            raise ConfigError.got(
                "--batch_size",
                self.batch_size,
                f"with --original_gpus={self.original_gpus} the global batch must be a multiple of it",
            )
        check_optional_positive(self, ("eval_every", "construction_eval_every", "final_steps"))
        steps = self.construction_steps  # 0: no training window (RunConfig checks the criterion)
        if steps is not None and (not _is_int(steps) or steps < 0):
            raise ConfigError.got("--construction_steps", steps, "expected an integer >= 0")
        spl = self.steps_per_loop
        if spl is not None and (not _is_int(spl) or spl < 1):
            raise ConfigError.got("--steps_per_loop", spl, "expected an integer >= 1 (unset: automatic)")
        for flag in ("construction_epochs", "final_epochs"):
            value = getattr(self, flag)
            if value is not None and not value > 0:
                raise ConfigError.got(f"--{flag}", value, "expected a positive number")
        try:  # the training recipe's own checks, reported with the flag names
            TrainConfig(steps=1, decay_epochs=self.decay_epochs, **self.recipe())
        except ConfigError as e:
            raise ConfigError(str(e).replace("TrainConfig.", "--", 1)) from None
        for a, b in (("construction_steps", "construction_epochs"), ("final_steps", "final_epochs")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ConfigError(
                    f"--{a} and --{b} both given ({getattr(self, a)} and {getattr(self, b)}); give one of them"
                )

    def recipe(self) -> dict:
        """The fields the training recipe takes over unchanged."""
        return {name: getattr(self, name) for name in RECIPE_FIELDS}


@dataclasses.dataclass(frozen=True)
class RuntimeSection:
    """`[runtime]`: strategy, threads, seed and determinism."""

    strategy: str = "auto"
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    seed: int | None = None
    deterministic: bool = False

    def __post_init__(self):
        check_choices(self, {"strategy": STRATEGIES})
        for flag in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, flag)
            if value is not None and (not _is_int(value) or value < 0):
                raise ConfigError.got(
                    f"--{flag}",
                    value,
                    "expected an integer >= 0 (0: TensorFlow's default; unset: nac's choice)",
                )
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError.got("--seed", self.seed, "expected an integer >= 0")


@dataclasses.dataclass(frozen=True)
class OutputSection:
    """`[output]`: which artefacts the run writes, and resuming despite changed flags."""

    force: bool = False
    save_models: bool = True
    save_iteration_models: bool = False
    tensorboard: bool = True
    progress: bool = True
