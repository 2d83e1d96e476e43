"""A run's resolved configuration (pure Python, no TensorFlow, no absl).

`RunConfig` holds every choice of a run after flags, an original config file and defaults
have been merged: `run_dir`, `mode` and one frozen section per `[section]` of the flags
(`nac.run.sections`), each validated on its own with messages that name the flag, the value
and the fix; `RunConfig` adds the checks that need several sections and resolves the initial
network (`nac.run.networks`) and the step budgets before TensorFlow is imported, so a user's
mistake is reported in one line. `run_config.json` holds the flat form (`to_flat`,
`from_flat`: one object keyed by flag names), so runs written by any nac resume.
"""

from __future__ import annotations

import dataclasses
import math

from nac.run import conflicts, crosschecks
from nac.run import sections as sections_lib
from nac.run.networks import derive_seed, load_network_file  # noqa: F401  (re-exported)
from nac.search import restructure as restructure_lib
from nac.spec import arch as arch_lib
from nac.spec import datasets
from nac.spec.choices import DATASET_ALIASES, DATASETS, MODES, DatasetFacts
from nac.spec.config import OriginalConfig
from nac.spec.errors import ConfigError
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

# The sections of a RunConfig, in the flat form's order; each section's fields are flags.
SECTIONS = {
    "data": sections_lib.DataSection,
    "search": sections_lib.SearchSection,
    "statistic": sections_lib.StatisticSection,
    "training": sections_lib.TrainingSection,
    "runtime": sections_lib.RuntimeSection,
    "output": sections_lib.OutputSection,
}
# Flat field name -> its section (the table from_flat and to_flat follow).
SECTION_OF = {f.name: name for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}

# Images per epoch in the original's learning-rate decay interval: CIFAR-10's training set,
# whatever the dataset (its decay steps were 350 * 50,000 / batchsize, also on ImageNet).
ORIGINAL_EPOCH_IMAGES = 50_000

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


def flat_defaults() -> dict:
    """Every flat field's default (`run_dir` has none), keyed by flag name."""
    out = {"mode": "construct"}
    for cls in SECTIONS.values():
        out.update({f.name: f.default for f in dataclasses.fields(cls)})
    return out


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of a run: `run_dir`, `mode` and one section per group of flags."""

    run_dir: str
    mode: str = "construct"
    data: sections_lib.DataSection = dataclasses.field(default_factory=sections_lib.DataSection)
    search: sections_lib.SearchSection = dataclasses.field(default_factory=sections_lib.SearchSection)
    statistic: sections_lib.StatisticSection = dataclasses.field(
        default_factory=sections_lib.StatisticSection
    )
    training: sections_lib.TrainingSection = dataclasses.field(default_factory=sections_lib.TrainingSection)
    runtime: sections_lib.RuntimeSection = dataclasses.field(default_factory=sections_lib.RuntimeSection)
    output: sections_lib.OutputSection = dataclasses.field(default_factory=sections_lib.OutputSection)

    def __post_init__(self):
        sections_lib.check_choices(self, {"mode": MODES})
        if not self.run_dir:
            raise ConfigError.got(
                "--run_dir", self.run_dir, "give a directory for the run's artefacts, e.g. runs/quickstart"
            )
        self._validate_across()

    def _validate_across(self):
        """The checks that need more than one section."""
        search = self.search
        if self.mode == "random" and search.arch is None and search.config_network is None:
            raise ConfigError(
                "--mode=random needs --arch=ARCH.json (the network whose layers and branches the "
                "random baselines match) or --config with algorithm random"
            )
        crosschecks.check_criteria(self)
        tau, patience, every = search.stats_stop_tau, search.stats_stop_patience, self.statistic.stats_every
        if tau > 0 and self.mode == "construct":
            if every == 0:
                raise ConfigError.got(
                    "--stats_stop_tau",
                    tau,
                    "the stop is checked at statistic records; give --stats_every > 0 or --stats_stop_tau=0",
                )
            window = self.construction_budget()
            if (patience + 1) * every > window:
                raise ConfigError.got(
                    "--stats_stop_patience",
                    patience,
                    f"the stop needs {patience + 1} records of --stats_every={every} steps, "
                    f"more than the {window}-step window; lower it or --stats_every",
                )
        if not self.data.builtin:  # --- data sources ---: resolves (reads dataset_info.json,
            self.data.check_facts(self.facts)  # lists a folder) and checks the data
        crosschecks.check_matching(self)
        self.initial_network()  # resolves and validates the network and the per-stage lists
        self.policy_lists()

    # -- the flat form (run_config.json, flags) ------------------------------------------------

    @classmethod
    def from_flat(cls, values: dict) -> RunConfig:
        """A RunConfig from flat fields keyed by flag name (unknown keys are ignored)."""
        grouped = {name: {} for name in SECTIONS}
        for key, value in values.items():
            if key in SECTION_OF:
                grouped[SECTION_OF[key]][key] = value
        top = {k: values[k] for k in ("run_dir", "mode") if k in values}
        if "run_dir" not in top:  # the one field without a default, reported before the sections
            return cls(**top)
        config = cls(**top, **{name: SECTIONS[name](**fields) for name, fields in grouped.items()})
        if isinstance(values.get("dataset_facts"), dict):  # --- data sources ---
            object.__setattr__(config, "_recorded_facts", values["dataset_facts"])
        # Fields newer than the file (an older run_config.json) take their defaults and are
        # left out of its flat form again while they keep them, so the file reads back as it was.
        object.__setattr__(config, "_absent", frozenset(SECTION_OF) - set(values))
        return config

    def to_flat(self, complete: bool = False) -> dict:
        """The flat form: one object keyed by flag name (the resolved fields last).

        Args:
          complete: Every field, also those that the file it was read from lacked.
        """
        out = {"run_dir": self.run_dir, "mode": self.mode}
        for name in SECTIONS:
            section = getattr(self, name)
            out.update(section.to_flat() if hasattr(section, "to_flat") else dataclasses.asdict(section))
        if not complete:
            defaults = flat_defaults()
            for key in self.__dict__.get("_absent", ()):
                if out[key] == defaults[key]:
                    del out[key]
        for key in sections_lib.RESOLVED_FIELDS:
            if key in out:
                out[key] = out.pop(key)
        if not self.data.builtin:  # --- data sources ---: the classes in the run's records
            # A configuration read back from run_config.json gives the facts recorded then,
            # so that a resume compares them with the data as it is now.
            out["dataset_facts"] = dict(self.__dict__.get("_recorded_facts") or self.facts_record())
        return out

    def replace(self, **flat) -> RunConfig:
        """A copy with some flat fields changed (validated again)."""
        return RunConfig.from_flat({**self.to_flat(), **flat})

    def differences(self, other: RunConfig) -> list[str]:
        """Settings that change what the run computes and differ from `other`."""
        mine, theirs = self.to_flat(complete=True), other.to_flat(complete=True)
        for record in (mine, theirs):  # the data may move (--data_dir is a runtime setting)
            record.get("dataset_facts", {}).pop("location", None)
        out = [k for k in mine if k not in RUNTIME_FIELDS and mine[k] != theirs.get(k)]
        if self.initial_network().fingerprint() != other.initial_network().fingerprint():
            out.append("network")
        return sorted(out)

    def value(self, name: str):
        """The flat field `name` (e.g. in a message naming the flag)."""
        if name in ("run_dir", "mode"):
            return getattr(self, name)
        return getattr(getattr(self, SECTION_OF[name]), name)

    # -- derived values ----------------------------------------------------------------------

    @property
    def facts(self) -> DatasetFacts:
        """What nac knows about the dataset (`nac.spec.datasets.resolve`), resolved once."""
        cached = self.__dict__.get("_facts")
        if cached is None:
            cached = datasets.resolve(self.data.dataset, self.data_request())
            object.__setattr__(self, "_facts", cached)
        return cached

    def data_request(self) -> datasets.DataRequest:
        """The settings the dataset's facts depend on (the data section's and the seed)."""
        data = self.data
        return datasets.DataRequest(
            data_dir=data.data_dir,
            train_split=data.train_split,
            test_split=data.test_split,
            validation_fraction=data.validation_fraction,
            seed=self.runtime.seed,
            image_size=data.image_size,
            downsample=data.downsample,
        )

    def facts_record(self) -> dict:
        """The dataset's facts as run_config.json and summary.json record them."""
        f = self.facts
        return {
            "kind": f.kind,
            "num_classes": f.num_classes,
            "channels": f.channels,
            "image_size": self.resolved_image_size,
            "train_examples": f.train_examples,
            "test_examples": f.test_examples,
            "class_names": list(f.class_names) if f.class_names is not None else None,
            "location": f.location,
            "splits": dict(f.splits),
        }

    @property
    def resolved_image_size(self) -> int:
        data = self.data
        if data.image_size:
            return data.image_size
        raw = self.facts.raw_size
        if data.downsample > 1 and raw is not None:
            return min(self.facts.image_size, raw // data.downsample)
        return self.facts.image_size

    @property
    def label_offset(self) -> int:
        """1 for ImageNet networks with 1001 classes (a background class 0, as in slim)."""
        imagenet = self.data.dataset == "imagenet2012"
        return 1 if imagenet and self.initial_network().num_classes == 1001 else 0

    @property
    def train_examples(self) -> int:
        return self.facts.train_examples - self.data.validation_examples

    @property
    def per_gpu_batch_size(self) -> int:
        """The original's `batchsize` (per GPU) with --original_gpus; else the global batch."""
        return self.training.batch_size // max(1, self.training.original_gpus)

    def steps_per_epoch(self) -> float:
        return self.train_examples / self.training.batch_size

    def construction_budget(self) -> int:
        """Training steps of each construction iteration (default 10 epochs, the paper's)."""
        return self._budget(self.training.construction_steps, self.training.construction_epochs, 10.0)

    def final_budget(self) -> int:
        """Training steps of the final network (default 100 epochs, the paper's)."""
        return self._budget(self.training.final_steps, self.training.final_epochs, 100.0)

    def _budget(self, steps, epochs, default_epochs) -> int:
        if steps is not None:
            return steps
        return max(1, math.ceil((epochs or default_epochs) * self.steps_per_epoch()))

    def stop_rule(self):
        """The construction iterations' stability stop (`nac.search.stopping.StopRule`)."""
        from nac.search.stopping import StopRule, default_min_steps

        search = self.search
        minimum = search.stats_stop_min_steps
        if minimum is None:
            minimum = default_min_steps(self.construction_budget())
        return StopRule(float(search.stats_stop_tau), search.stats_stop_patience, minimum)

    def eval_interval(self) -> int:
        """Steps between evaluations (default: one epoch)."""
        return self.training.eval_every or max(1, round(self.steps_per_epoch()))

    def resolved_steps_per_loop(self, has_gpu: bool = False) -> int:
        """`--steps_per_loop`, or the automatic choice: 20 with a GPU (the host's per-step
        call and read would leave the GPU idle between steps), 1 on a CPU alone (where the
        host's share of a step is small; docs/benchmarks.md)."""
        if self.training.steps_per_loop is not None:
            return self.training.steps_per_loop
        return AUTO_STEPS_PER_LOOP_GPU if has_gpu else 1

    def train_config(self, steps: int, iteration: bool = False, steps_per_loop: int = 1) -> TrainConfig:
        """The training recipe of one trained network of this run (`steps` training steps).

        A construction iteration (`iteration=True`) is evaluated every
        `--construction_eval_every` steps when given, else every `--eval_every` steps when
        that was given, else once, at the end of its window (the study's curves need more).
        """
        t = self.training
        if iteration and t.construction_eval_every is not None:
            eval_every = min(t.construction_eval_every, steps)
        elif iteration and t.eval_every is None:
            eval_every = 0
        else:
            eval_every = min(self.eval_interval(), steps)
        # Larger evaluation batches cut per-batch overhead; ImageNet keeps the training batch
        # (its activations are large). With batch_stats each test batch is normalised by its
        # own statistics, so it must be the original's batch (its batchsize, per GPU).
        imagenet = self.data.dataset == "imagenet2012"
        eval_batch = t.batch_size if imagenet else 4 * t.batch_size
        if t.bn_eval == "batch_stats":
            eval_batch = self.per_gpu_batch_size
        decay_epochs = t.decay_epochs
        if t.original_gpus:
            # The original decayed every decay_epochs * 50,000 / (per-GPU batch) steps.
            decay_epochs = t.decay_epochs * ORIGINAL_EPOCH_IMAGES * t.original_gpus / self.train_examples
        return TrainConfig(
            steps=steps,
            eval_every=eval_every,
            steps_per_loop=steps_per_loop,
            record_every=self.statistic.stats_every,
            eval_batch_size=eval_batch,
            decay_epochs=decay_epochs,
            top5=imagenet,
            validation=self.data.validation_examples > 0,
            log_every=max(1, min(50, steps // 20 or 1)),
            **t.recipe(),
        )

    def role(self) -> str:
        if self.mode == "construct":
            return "worst_case" if self.search.worstcase else "constructed"
        if self.mode == "random":
            return "random"
        return "oneshot" if self.search.arch or self.search.config_network else "envelope"

    def initial_network(self) -> arch_lib.Network:
        """The network the run starts from (construct, oneshot) or that random nets match.

        Resolved once (an `--arch` file is read once) and kept: the configuration is frozen.
        """
        cached = self.__dict__.get("_initial_network")
        if cached is None:
            from nac.run.networks import resolve_network

            cached = resolve_network(self)
            object.__setattr__(self, "_initial_network", cached)
        return cached

    def policy(self) -> restructure_lib.Policy:
        """The restructure policy of the run, built from its settings (the same Policy as its
        `config.json` gives through `Policy.from_config`, which a test checks)."""
        lists = self.policy_lists()
        return restructure_lib.Policy(
            construction=tuple(lists["construction"]),
            maxlayersperstage=tuple(lists["maxlayersperstage"]),
            maxfilterprune=self.search.maxfilterprune,
            worstcase=self.search.worstcase,
            envelopecell=tuple(self.envelope_cell()),
            parameterlimits=tuple(lists["parameterlimits"]),
            skip=self.effective_skip(),
        )

    def effective_skip(self) -> bool:
        """Skip connections: `--skip`, or a starting network that already has them."""
        return self.search.skip or any(c.inputs == "all" for _, c in self.initial_network().cells())

    def envelope_cell(self) -> tuple[tuple[str, str], ...]:
        """The EnvelopeCell appended by the restructure step."""
        search = self.search
        if search.envelopecell is not None:
            return search.envelopecell
        if search.arch is None and search.config_network is None:
            return arch_lib.envelope_cell(arch_lib.parse_notation(search.envelope)[2])
        return arch_lib.STANDARD_CELL

    def policy_lists(self) -> dict:
        """Per-stage `maxlayersperstage`, `construction`, `parameterlimits`, checked."""
        network = self.initial_network()
        search = self.search
        stages = network.num_stages
        layers = network.layers_per_stage()
        lists = {
            # Default: no stage stops growing before the last iteration.
            "maxlayersperstage": search.maxlayersperstage or tuple(n + search.iterations for n in layers),
            "construction": search.construction or (True,) * stages,
            "parameterlimits": search.parameterlimits or (False,) * stages,
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
        batch = values.get("batch_size", flat_defaults()["batch_size"])
        values["batch_size"] = batch * gpus if isinstance(batch, int) else batch
    config = RunConfig.from_flat({**flat_defaults(), **values})  # every field: a complete record
    conflicts.check(config, present)
    return config
