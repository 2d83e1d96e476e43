"""A run's resolved configuration (pure Python, no TensorFlow, no absl).

`RunConfig` holds every choice of a run after flags, an original config file and defaults
have been merged, validated with messages that name the flag, the value and the fix. It
resolves the initial network and the step budgets before TensorFlow is imported, so a user's
mistake is reported in one line. `original_config()` renders the run in the original's v2.0
schema for `RUN/config.json`, so that `python -m nac.restructure --config RUN/config.json`
replays the construction's decisions.
"""

from __future__ import annotations

import dataclasses
import math
import os

from nac.search import criteria as criteria_lib
from nac.search import restructure as restructure_lib
from nac.spec import arch as arch_lib
from nac.spec import random_arch
from nac.spec.checks import lists_to_tuples
from nac.spec.choices import (
    AUGMENTATIONS,
    BRANCH_ORDERS,
    CELL_IMPLS,
    DATASET_ALIASES,
    DATASETS,
    MODES,
    STEMS,
    STRATEGIES,
    DatasetFacts,
)
from nac.spec.config import OriginalConfig, RandomParams, network_file_kind
from nac.spec.errors import ConfigError, NacError, SpecError
from nac.spec.jsonio import load_json
from nac.training.recipe import TrainConfig

# Fields that do not change what a run computes; a resumed run may change them freely.
RUNTIME_FIELDS = frozenset(
    {
        "run_dir",
        "data_dir",
        "strategy",
        "force",
        "save_models",
        "save_iteration_models",
        "progress",
        "tensorboard",
        "config",
        "arch",
        # Implementation choices that compute the same function (the per-cell and the
        # per-branch cells differ only in their dropout draws) or only set TensorFlow's
        # thread pools: an older run directory resumes with the current defaults.
        "cell_impl",
        "intra_op_threads",
        "inter_op_threads",
        "steps_per_loop",
    }
)


# Images per epoch in the original's learning-rate decay interval: CIFAR-10's training set,
# whatever the dataset (its decay steps were 350 * 50,000 / batchsize, also on ImageNet).
ORIGINAL_EPOCH_IMAGES = 50_000


_RECIPE = TrainConfig(steps=1)
# RunConfig fields passed to the training recipe (`TrainConfig`) unchanged.
_RECIPE_FIELDS = (
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
# Fields of an original config's `envelopenet` section that a run takes over (`from_flags`).
_ENVELOPE_FIELDS = (
    "maxlayersperstage",
    "construction",
    "parameterlimits",
    "maxfilterprune",
    "worstcase",
    "envelopecell",
)
AUTO_STEPS_PER_LOOP_GPU = 20


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of a run. Field names are the driver's flag names."""

    run_dir: str
    mode: str = "construct"
    # data
    dataset: str = "cifar10"
    data_dir: str | None = None
    image_size: int | None = None
    downsample: int = 1
    augment: str = "original"
    validation_examples: int = 0
    cache: bool = False
    # search space
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
    # statistic
    statistic: str = "l2"
    stats_every: int = 100
    branch_order: str = "conv_bn_relu"
    cell_impl: str = "per_cell"
    # training
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
    # runtime
    strategy: str = "auto"
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    seed: int | None = None
    deterministic: bool = False
    force: bool = False
    save_models: bool = True
    save_iteration_models: bool = False
    tensorboard: bool = True
    progress: bool = True
    # resolved from --config (an original v2.0 file), not flags of their own
    config_network: dict | None = None
    envelopecell: tuple[tuple[str, str], ...] | None = None
    config_random: RandomParams | None = None  # run_config.json keeps the original's dict

    def __post_init__(self):
        object.__setattr__(self, "dataset", DATASET_ALIASES.get(self.dataset, self.dataset))
        lists_to_tuples(self, ("maxlayersperstage", "construction", "parameterlimits", "random_pool"))
        if self.envelopecell is not None:
            cell = self.envelopecell.items() if isinstance(self.envelopecell, dict) else self.envelopecell
            object.__setattr__(self, "envelopecell", tuple(sorted(tuple(b) for b in cell)))
        if isinstance(self.config_random, dict):  # read back from run_config.json
            object.__setattr__(self, "config_random", RandomParams.from_original(self.config_random))
        self._validate()

    # -- validation --------------------------------------------------------------------------

    def _validate(self):
        choices = {
            "mode": MODES,
            "stem": STEMS,
            "statistic": criteria_lib.NAMES,
            "augment": AUGMENTATIONS,
            "strategy": STRATEGIES,
            "branch_order": BRANCH_ORDERS,
            "cell_impl": CELL_IMPLS,
            "dataset": tuple(DATASETS),
        }
        for flag, allowed in choices.items():
            if getattr(self, flag) not in allowed:
                raise ConfigError.got(
                    f"--{flag}", getattr(self, flag), f"expected one of {', '.join(allowed)}"
                )
        if not self.run_dir:
            raise ConfigError.got(
                "--run_dir", self.run_dir, "give a directory for the run's artefacts, e.g. runs/quickstart"
            )
        positive = {
            "batch_size": 1,
            "stats_every": 0,
            "maxfilterprune": 1,
            "num_random": 1,
            "iterations": 0,
            "validation_examples": 0,
            "eval_examples": 0,
            "original_gpus": 0,
            "downsample": 1,
        }
        for flag, minimum in positive.items():
            value = getattr(self, flag)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError.got(f"--{flag}", value, f"expected an integer >= {minimum}")
        self._validate_downsample()
        if self.augment == "crop_flip" and self.dataset != "imagenet2012":
            raise ConfigError.got(
                "--augment", self.augment, "crop_flip is for imagenet2012; use original, padded or none"
            )
        if self.original_gpus > 1 and self.batch_size % self.original_gpus:
            raise ConfigError.got(
                "--batch_size",
                self.batch_size,
                f"with --original_gpus={self.original_gpus} the global batch must be a multiple of it",
            )
        for flag in (
            "image_size",
            "eval_every",
            "construction_eval_every",
            "construction_steps",
            "final_steps",
            "seed",
        ):
            value = getattr(self, flag)
            zero_ok = flag in ("seed", "construction_steps")  # 0 steps: see _validate_criteria
            if value is not None and (not isinstance(value, int) or value < (0 if zero_ok else 1)):
                raise ConfigError.got(
                    f"--{flag}",
                    value,
                    "expected a positive integer" if flag != "seed" else "expected an integer >= 0",
                )
        if self.steps_per_loop is not None and (
            not isinstance(self.steps_per_loop, int)
            or isinstance(self.steps_per_loop, bool)
            or self.steps_per_loop < 1
        ):
            raise ConfigError.got(
                "--steps_per_loop", self.steps_per_loop, "expected an integer >= 1 (unset: automatic)"
            )
        for flag in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, flag)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError.got(
                    f"--{flag}",
                    value,
                    "expected an integer >= 0 (0: TensorFlow's default; unset: nac's choice)",
                )
        for flag in ("construction_epochs", "final_epochs"):
            value = getattr(self, flag)
            if value is not None and not value > 0:
                raise ConfigError.got(f"--{flag}", value, "expected a positive number")
        try:  # the training recipe's own checks, reported with the flag names
            self.train_config(1)
        except ConfigError as e:
            raise ConfigError(str(e).replace("TrainConfig.", "--", 1)) from None
        for a, b in (("construction_steps", "construction_epochs"), ("final_steps", "final_epochs")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ConfigError(
                    f"--{a} and --{b} both given ({getattr(self, a)} and {getattr(self, b)}); give one of them"
                )
        if self.mode == "random" and self.arch is None and self.config_network is None:
            raise ConfigError(
                "--mode=random needs --arch=ARCH.json (the network whose layers and branches the "
                "random baselines match) or --config with algorithm random"
            )
        facts = DATASETS[self.dataset]
        if self.validation_examples >= facts.train_examples and self.dataset != "synthetic":
            raise ConfigError.got(
                "--validation_examples",
                self.validation_examples,
                f"must be smaller than the {facts.train_examples} training examples",
            )
        if self.random_pool is not None:
            for op in self.random_pool:
                try:
                    arch_lib.Op.parse(op, "--random_pool")
                except SpecError as e:
                    raise ConfigError(str(e)) from None
        self._validate_criteria()
        self._validate_search_savings()
        self.initial_network()  # resolves and validates the network and the per-stage lists
        self.policy_lists()

    # --- criteria ---
    def _validate_criteria(self):
        """The branch criterion (`--statistic`, `nac.search.criteria`): a construction without
        training window only with a criterion that needs none; the oracle's held-out images;
        the stability stop only on a recorded criterion."""
        criterion = criteria_lib.get(self.statistic, ConfigError)
        if self.mode != "construct":
            return
        if self.construction_steps == 0 and criterion.zero_steps:
            zero_ok = ", ".join(n for n, c in criteria_lib.REGISTRY.items() if not c.zero_steps)
            raise ConfigError(
                f"--construction_steps=0 with --statistic={self.statistic}: {criterion.zero_steps}; "
                f"use --statistic={zero_ok.replace(', ', ' or ')} or --construction_steps >= 1"
            )
        if self.statistic == "taylor" and self.mixed_precision:
            raise ConfigError.got(
                "--statistic",
                self.statistic,
                "taylor needs the loss gradient, which --mixed_precision scales; use --nomixed_precision",
            )
        if criterion.needs_validation and self.validation_examples == 0:
            raise ConfigError(
                f"--statistic={self.statistic} needs held-out training images; give "
                "--validation_examples=N (for example 2000)"
            )
        if self.stats_stop_tau > 0 and not criterion.recorded:
            raise ConfigError.got(
                "--stats_stop_tau",
                self.stats_stop_tau,
                f"the stop watches a recorded criterion ({', '.join(criteria_lib.RECORDED_NAMES)}), "
                f"not {self.statistic}; use --stats_stop_tau=0",
            )

    def _validate_search_savings(self):
        """The stability stop and weight inheritance (`nac.search.stopping`, `nac.search.inherit`)."""
        tau = self.stats_stop_tau
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau <= 1:
            raise ConfigError.got(
                "--stats_stop_tau", tau, "expected a Kendall tau in (0, 1], or 0 to train fixed windows"
            )
        patience = self.stats_stop_patience
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError.got(
                "--stats_stop_patience", patience, "expected an integer >= 1 (stable records in a row)"
            )
        minimum = self.stats_stop_min_steps
        if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0):
            raise ConfigError.got(
                "--stats_stop_min_steps",
                minimum,
                "expected an integer >= 0 (default: a quarter of the window)",
            )
        if tau > 0 and self.mode == "construct":
            if self.stats_every == 0:
                raise ConfigError.got(
                    "--stats_stop_tau",
                    tau,
                    "the stop is checked at statistic records; give --stats_every > 0 or --stats_stop_tau=0",
                )
            window = self.construction_budget()
            if (patience + 1) * self.stats_every > window:
                raise ConfigError.got(
                    "--stats_stop_patience",
                    patience,
                    f"the stop needs {patience + 1} records of --stats_every={self.stats_every} steps, "
                    f"more than the {window}-step window; lower it or --stats_every",
                )
        if self.inherit_final and not self.inherit_weights:
            raise ConfigError.got(
                "--inherit_final", True, "needs --inherit_weights (the final network inherits only then)"
            )

    # -- derived values ----------------------------------------------------------------------

    @property
    def facts(self) -> DatasetFacts:
        return DATASETS[self.dataset]

    @property
    def resolved_image_size(self) -> int:
        if self.image_size:
            return self.image_size
        raw = self.facts.raw_size
        if self.downsample > 1 and raw is not None:
            return min(self.facts.image_size, raw // self.downsample)
        return self.facts.image_size

    def _validate_downsample(self):
        d = self.downsample
        if d == 1:
            return
        if self.dataset == "imagenet2012":
            raise ConfigError.got(
                "--downsample",
                d,
                "it is for the array datasets (cifar10, fashion_mnist, mnist, synthetic); use 1",
            )
        raw = self.facts.raw_size
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

    @property
    def label_offset(self) -> int:
        """1 for ImageNet networks with 1001 classes (a background class 0, as in slim)."""
        return 1 if self.dataset == "imagenet2012" and self.initial_network().num_classes == 1001 else 0

    @property
    def train_examples(self) -> int:
        return self.facts.train_examples - self.validation_examples

    @property
    def per_gpu_batch_size(self) -> int:
        """The original's `batchsize` (per GPU) with --original_gpus; else the global batch."""
        return self.batch_size // max(1, self.original_gpus)

    def steps_per_epoch(self) -> float:
        return self.train_examples / self.batch_size

    def construction_budget(self) -> int:
        """Training steps of each construction iteration (default 10 epochs, the paper's)."""
        return self._budget(self.construction_steps, self.construction_epochs, 10.0)

    def final_budget(self) -> int:
        """Training steps of the final network (default 100 epochs, the paper's)."""
        return self._budget(self.final_steps, self.final_epochs, 100.0)

    def _budget(self, steps, epochs, default_epochs) -> int:
        if steps is not None:
            return steps
        return max(1, math.ceil((epochs or default_epochs) * self.steps_per_epoch()))

    def stop_rule(self):
        """The construction iterations' stability stop (`nac.search.stopping.StopRule`)."""
        from nac.search.stopping import StopRule, default_min_steps

        minimum = self.stats_stop_min_steps
        if minimum is None:
            minimum = default_min_steps(self.construction_budget())
        return StopRule(float(self.stats_stop_tau), self.stats_stop_patience, minimum)

    def eval_interval(self) -> int:
        """Steps between evaluations (default: one epoch)."""
        return self.eval_every or max(1, round(self.steps_per_epoch()))

    def resolved_steps_per_loop(self, has_gpu: bool = False) -> int:
        """`--steps_per_loop`, or the automatic choice: 20 with a GPU (the host's per-step
        call and read would leave the GPU idle between steps), 1 on a CPU alone (where the
        host's share of a step is small; BUILD_NOTES.md)."""
        if self.steps_per_loop is not None:
            return self.steps_per_loop
        return AUTO_STEPS_PER_LOOP_GPU if has_gpu else 1

    def train_config(self, steps: int, iteration: bool = False, steps_per_loop: int = 1) -> TrainConfig:
        """The training recipe of one trained network of this run (`steps` training steps).

        A construction iteration (`iteration=True`) is evaluated every
        `--construction_eval_every` steps when given, else every `--eval_every` steps when
        that was given, else once, at the end of its window (the study's curves need more).
        """
        if iteration and self.construction_eval_every is not None:
            eval_every = min(self.construction_eval_every, steps)
        elif iteration and self.eval_every is None:
            eval_every = 0
        else:
            eval_every = min(self.eval_interval(), steps)
        # Larger evaluation batches cut per-batch overhead; ImageNet keeps the training batch
        # (its activations are large). With batch_stats each test batch is normalised by its
        # own statistics, so it must be the original's batch (its batchsize, per GPU).
        eval_batch = self.batch_size if self.dataset == "imagenet2012" else 4 * self.batch_size
        if self.bn_eval == "batch_stats":
            eval_batch = self.per_gpu_batch_size
        decay_epochs = self.decay_epochs
        if self.original_gpus:
            # The original decayed every decay_epochs * 50,000 / (per-GPU batch) steps.
            decay_epochs = (
                self.decay_epochs * ORIGINAL_EPOCH_IMAGES * self.original_gpus / self.train_examples
            )
        return TrainConfig(
            steps=steps,
            eval_every=eval_every,
            steps_per_loop=steps_per_loop,
            record_every=self.stats_every,
            eval_batch_size=eval_batch,
            decay_epochs=decay_epochs,
            top5=self.dataset == "imagenet2012",
            validation=self.validation_examples > 0,
            log_every=max(1, min(50, steps // 20 or 1)),
            **{name: getattr(self, name) for name in _RECIPE_FIELDS},
        )

    def role(self) -> str:
        if self.mode == "construct":
            return "worst_case" if self.worstcase else "constructed"
        if self.mode == "random":
            return "random"
        return "oneshot" if self.arch or self.config_network else "envelope"

    def initial_network(self) -> arch_lib.Network:
        """The network the run starts from (construct, oneshot) or that random nets match.

        Resolved once (an `--arch` file is read once) and kept: the configuration is frozen.
        """
        cached = self.__dict__.get("_initial_network")
        if cached is None:
            cached = self._resolve_network()
            object.__setattr__(self, "_initial_network", cached)
        return cached

    def policy(self) -> restructure_lib.Policy:
        """The restructure policy of the run, built from its settings (the same Policy as its
        `config.json` gives through `Policy.from_config`, which a test checks)."""
        lists = self.policy_lists()
        return restructure_lib.Policy(
            construction=tuple(lists["construction"]),
            maxlayersperstage=tuple(lists["maxlayersperstage"]),
            maxfilterprune=self.maxfilterprune,
            worstcase=self.worstcase,
            envelopecell=tuple(self.envelope_cell()),
            parameterlimits=tuple(lists["parameterlimits"]),
            skip=self.effective_skip(),
        )

    def effective_skip(self) -> bool:
        """Skip connections: `--skip`, or a starting network that already has them."""
        return self.skip or any(c.inputs == "all" for _, c in self.initial_network().cells())

    def _resolve_network(self) -> arch_lib.Network:
        facts = self.facts
        # The original's ImageNet stem comes with its 1001-class head (slim's background class).
        stem_classes = facts.num_classes
        if self.stem == "imagenet" and self.dataset == "imagenet2012":
            stem_classes = arch_lib.IMAGENET_CLASSES
        try:
            if self.arch is not None:
                network = load_network_file(self.arch, self.stem, facts.channels, stem_classes)
            elif self.config_network is not None:
                network = arch_lib.Network.from_dict(self.config_network)
            else:
                network = arch_lib.network_from_notation(
                    self.envelope, self.stem, self.skip, facts.channels, stem_classes
                )
                c = arch_lib.parse_notation(self.envelope)[0]
                if self.mode == "construct" and c != network.stem.base_width():
                    raise ConfigError(
                        f"--envelope: got C = {c} with --stem={self.stem}; the restructure step "
                        f"sets widths from the stem's last conv ({network.stem.base_width()}, the "
                        f"original's rule), so construct with C = {network.stem.base_width()}"
                    )
        except SpecError as e:
            raise ConfigError(str(e).replace("notation:", "--envelope:", 1)) from None
        classes = network.num_classes
        if not (self.dataset == "imagenet2012" and classes == 1001):
            classes = facts.num_classes
        try:
            return arch_lib.Network(
                network.body, network.stem, network.head.with_num_classes(classes), facts.channels
            )
        except SpecError as e:
            raise ConfigError(str(e)) from None

    def envelope_cell(self) -> tuple[tuple[str, str], ...]:
        """The EnvelopeCell appended by the restructure step."""
        if self.envelopecell is not None:
            return self.envelopecell
        if self.arch is None and self.config_network is None:
            return arch_lib.envelope_cell(arch_lib.parse_notation(self.envelope)[2])
        return arch_lib.STANDARD_CELL

    def policy_lists(self) -> dict:
        """Per-stage `maxlayersperstage`, `construction`, `parameterlimits`, checked."""
        network = self.initial_network()
        stages = network.num_stages
        layers = network.layers_per_stage()
        lists = {
            # Default: no stage stops growing before the last iteration.
            "maxlayersperstage": self.maxlayersperstage or tuple(n + self.iterations for n in layers),
            "construction": self.construction or (True,) * stages,
            "parameterlimits": self.parameterlimits or (False,) * stages,
        }
        for name, values in lists.items():
            if len(values) == 1 and stages > 1:
                values = values * stages
                lists[name] = values
            if len(values) != stages:
                raise ConfigError(
                    f"--{name}: got {len(values)} values ({','.join(str(v).lower() for v in values)}) "
                    f"for a network of {stages} stages; give one value per stage, or one for all"
                )
        return lists

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.config_random is not None:
            out["config_random"] = self.config_random.to_original()
        return out

    @classmethod
    def from_dict(cls, value: dict) -> RunConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in fields})

    def differences(self, other: RunConfig) -> list[str]:
        """Settings that change what the run computes and differ from `other`."""
        mine, theirs = self.to_dict(), other.to_dict()
        out = [k for k in mine if k not in RUNTIME_FIELDS and mine[k] != theirs.get(k)]
        if self.initial_network().fingerprint() != other.initial_network().fingerprint():
            out.append("network")
        return sorted(out)

    def original_config(self) -> dict:
        """The run in the original's v2.0 schema (for `RUN/config.json`)."""
        network = self.initial_network()
        lists = self.policy_lists()
        algorithm = {"construct": "envelopenet", "oneshot": "deterministic", "random": "random"}[self.mode]
        parameters = {
            "archname": os.path.basename(os.path.normpath(self.run_dir)),
            "mode": "construct" if self.mode == "construct" else "oneshot",
            "algorithm": algorithm,
            "gpus": "[" + ",".join(map(str, range(self.original_gpus))) + "]"
            if self.original_gpus > 1
            else "[]",
            "steps": self.construction_budget() if self.mode == "construct" else self.final_budget(),
            "evalintval": self.eval_interval(),
            "batchsize": self.per_gpu_batch_size,
            "dataset": self.dataset,
            "iterations": {"construct": self.iterations, "random": self.num_random}.get(self.mode, 0),
            "image_size": self.resolved_image_size,
        }
        if self.data_dir:
            parameters["data_dir"] = self.data_dir
        out = {
            "parameters": parameters,
            "initcell": network.stem.to_original(),
            "classificationcell": network.head.to_original(),
            "envelopenet": {
                "stages": network.num_stages,
                "layersperstage": network.layers_per_stage(),
                "maxlayersperstage": list(lists["maxlayersperstage"]),
                "construction": list(lists["construction"]),
                "parameterlimits": list(lists["parameterlimits"]),
                "maxfilterprune": self.maxfilterprune,
                "envelopecell": dict(self.envelope_cell()),
                "skip": self.effective_skip(),
                "worstcase": self.worstcase,
            },
        }
        if self.mode != "construct" or self.arch is not None or self.config_network is not None:
            out["arch"] = network.arch_json()
        if self.mode == "random":
            out["random"] = {
                "stages": network.num_stages,
                "layersperstage": network.layers_per_stage(),
                "numblocksperstage": network.branches_per_stage(),
                "parameterlimits": list(lists["parameterlimits"]),
                "blocks": list(self.random_pool or [op for _, op in self.envelope_cell()]),
                "skip": out["envelopenet"]["skip"],
            }
        return out

    def random_networks(self) -> list[tuple[int, arch_lib.Network]]:
        """(seed, network) of each random baseline, drawn from the run's seed."""
        base = self.initial_network()
        out = []
        for j in range(self.num_random):
            seed = derive_seed(self.seed or 0, f"random_{j}")
            if self.config_random is not None and self.random_pool is None:
                r = self.config_random  # the original's generator, with the config's blocks
                body = random_arch.random_body(
                    r.layersperstage,
                    r.numblocksperstage,
                    r.blocks,
                    base.stem.base_width(),
                    seed,
                    r.parameterlimits,
                    r.skip,
                )
                network = arch_lib.Network(body, base.stem, base.head, base.input_channels)
            else:
                pool = list(self.random_pool) if self.random_pool else [op for _, op in self.envelope_cell()]
                network = random_arch.random_like(base, seed, pool)
            out.append((seed, network))
        return out


def derive_seed(seed: int, tag: str) -> int:
    """A stable 31-bit seed for one step of a run (`iter_0`, `final`, `random_3`, ...)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{tag}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def load_network_file(path: str, stem: str, channels: int, num_classes: int) -> arch_lib.Network:
    """Reads a network from an original `network.json` list, nac's network JSON, or an
    original config's fixed `arch` / initial network."""
    data = load_json(path, ConfigError, "--arch file")
    kind = network_file_kind(data)
    if kind == "network":
        return arch_lib.Network.from_dict(data)
    if kind == "config":
        try:
            return OriginalConfig.from_original(data).initial_network(channels)
        except NacError as e:
            raise ConfigError(f"{path}: {e}") from None
    try:
        body = arch_lib.body_from_original(data)
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None
    return arch_lib.Network(
        body, arch_lib.stem_for_body(body, stem), arch_lib.head_for_stem(stem, num_classes), channels
    )


def from_flags(values: dict, present: set) -> RunConfig:
    """Merges flag values, an original config (`values["config"]`) and defaults.

    An original v2.0 config runs as it is; flags given explicitly (`present`) override it.
    Mapping: `steps` -> construction steps (every one of them trained; the original dropped
    the last `evalintval` segment) for construction configs and final steps for `oneshot` ones;
    `evalintval` -> eval_every; `batchsize`; `iterations` (the number of random nets for
    `algorithm: random`); `image_size`; `dataset`; `data_dir`; the `envelopenet` section ->
    maxlayersperstage, construction, parameterlimits, maxfilterprune, skip, worstcase and the
    EnvelopeCell; `initcell`/`classificationcell` and `arch` -> the network. `gpus` is
    superseded by --strategy; `original_gpus` (> 1) multiplies the batch (the config's or
    --batch_size) by that many GPUs, as the original's per-GPU `batchsize` did.
    """
    values = dict(values)
    path = values.get("config")
    if path:
        config = OriginalConfig.load(path)
        p = config.parameters
        algorithm = p.algorithm
        mode = {"envelopenet": "construct", "deterministic": "oneshot", "random": "random"}[algorithm]
        if algorithm == "envelopenet" and p.mode == "oneshot":
            mode = "oneshot"
        dataset = DATASET_ALIASES.get(p.dataset, p.dataset)
        channels = DATASETS[dataset].channels if dataset in DATASETS else 3
        mapped = {
            "mode": mode,
            "dataset": dataset,
            "eval_every": p.evalintval,
            "batch_size": p.batchsize,
            "image_size": p.image_size,
            "config_network": config.initial_network(channels).to_dict(),
        }
        if p.data_dir:
            mapped["data_dir"] = p.data_dir
        if mode == "construct":
            mapped.update(construction_steps=p.steps, iterations=p.iterations)
        elif mode == "random":
            mapped.update(final_steps=p.steps, num_random=max(1, p.iterations))
        else:
            mapped.update(final_steps=p.steps)
        e = config.envelopenet
        if e is not None:
            mapped.update({name: getattr(e, name) for name in _ENVELOPE_FIELDS})
        if config.random is not None:
            mapped["config_random"] = config.random
        budget_flags = {"construction_steps": "construction_epochs", "final_steps": "final_epochs"}
        for key, value in mapped.items():
            if key in present or budget_flags.get(key) in present:
                continue
            values[key] = value
    gpus = values.get("original_gpus") or 0
    if isinstance(gpus, int) and gpus > 1:  # the given batch is per GPU, as in the original
        batch = values.get("batch_size", _RECIPE.batch_size)
        values["batch_size"] = batch * gpus if isinstance(batch, int) else batch
    return RunConfig(**values)
