"""The training recipe as data (pure Python, no TensorFlow): `TrainConfig` and the
learning-rate rule, shared by the trainer (`nac.training.train`) and the run configuration
(`nac.run.runconfig`), which validates a run's training settings before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from nac.spec.checks import is_int
from nac.spec.choices import BN_EVAL_MODES, LR_SCHEDULES
from nac.spec.errors import ConfigError

EMA_MAX_DECAY = 0.9999


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one network is trained and evaluated.

    Attributes:
      steps: Training steps (global batches), > 0.
      batch_size: GLOBAL batch size (per-replica batch x replicas); must divide evenly
        among the replicas. The original's 50.
      eval_every: Steps between test evaluations; 0 evaluates only at the end. The final
        step is always evaluated.
      eval_batch_size: Global batch size of evaluation; None uses `batch_size`.
      eval_examples: Test images of the evaluations before the last (the first N of each
        split, rounded up to whole evaluation batches); 0: the whole split. The last
        evaluation of every training always uses the whole split.
      learning_rate: Initial learning rate (0.1).
      lr_schedule: One of `LR_SCHEDULES` (see the module docstring).
      decay_epochs: Epochs between exponential decays (350).
      decay_rate: Factor of each exponential decay (0.1).
      momentum: SGD momentum (0: plain SGD, the original's).
      weight_decay: L2 factor on kernels added to the loss (0: none, the original's).
      ema: Evaluate an exponential moving average of the trainable weights.
      bn_eval: One of `BN_EVAL_MODES`: how batch norm normalises at evaluation.
      bn_recalibration_examples: Training images (rounded up to whole global batches)
        used to re-estimate BN statistics with ``recalibrate``.
      top5: Also report top-5 accuracy.
      mixed_precision: `mixed_float16` policy and dynamic loss scaling; logits stay float32.
      jit_compile: Compile the forward and backward pass with XLA (for GPUs; slow on CPU).
      validation: Also evaluate the validation split, when the data has one.
      log_every: Steps between entries of the loss curve and `progress` calls.
      steps_per_loop: Training steps per device call (one `tf.function` call runs a loop of
        up to this many steps; the host reads the loss and accuracy sums once per loop).
        Loops end at every multiple of `log_every` and `record_every`, at every evaluation
        and at the last step, so callbacks, statistics records, evaluations and
        interruption checks fall on the same steps as with one step per call.
      record_every: Steps at which callbacks must see a batch end (e.g. the statistic
        series, `--stats_every`); 0: none beyond the others.
    """

    steps: int
    batch_size: int = 50
    eval_every: int = 0
    eval_batch_size: int | None = None
    eval_examples: int = 0
    learning_rate: float = 0.1
    lr_schedule: str = "exponential"
    decay_epochs: float = 350.0
    decay_rate: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    ema: bool = True
    bn_eval: str = "recalibrate"
    bn_recalibration_examples: int = 500
    top5: bool = False
    mixed_precision: bool = False
    jit_compile: bool = False
    validation: bool = False
    log_every: int = 100
    steps_per_loop: int = 1
    record_every: int = 0

    def __post_init__(self):
        def fail(field, expected):
            raise ConfigError(f"TrainConfig.{field}: got {getattr(self, field)!r}; expected {expected}")

        for field, minimum in (
            ("steps", 1),
            ("batch_size", 1),
            ("eval_every", 0),
            ("eval_examples", 0),
            ("bn_recalibration_examples", 1),
            ("log_every", 1),
            ("steps_per_loop", 1),
            ("record_every", 0),
        ):
            value = getattr(self, field)
            if not is_int(value) or value < minimum:
                fail(field, f"an integer >= {minimum}")
        if self.eval_batch_size is not None and (
            not is_int(self.eval_batch_size) or self.eval_batch_size < 1
        ):
            fail("eval_batch_size", "None or an integer >= 1")
        if not _is_number(self.learning_rate) or not self.learning_rate > 0:
            fail("learning_rate", "a number > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            fail("lr_schedule", f"one of {', '.join(LR_SCHEDULES)}")
        if not _is_number(self.decay_epochs) or not self.decay_epochs > 0:
            fail("decay_epochs", "a number > 0")
        if not _is_number(self.decay_rate) or not 0 < self.decay_rate <= 1:
            fail("decay_rate", "a number in (0, 1]")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            fail("momentum", "a number in [0, 1)")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            fail("weight_decay", "a number >= 0")
        if self.bn_eval not in BN_EVAL_MODES:
            fail("bn_eval", f"one of {', '.join(BN_EVAL_MODES)}")
        for field in ("ema", "top5", "mixed_precision", "jit_compile", "validation"):
            if not isinstance(getattr(self, field), bool):
                fail(field, "True or False")

    @property
    def global_eval_batch_size(self) -> int:
        return self.eval_batch_size or self.batch_size

    def eval_steps(self) -> tuple[int, ...]:
        """The steps (1-based counts of completed steps) after which the test set is evaluated."""
        every = range(self.eval_every, self.steps, self.eval_every) if self.eval_every else ()
        return (*every, self.steps)

    def loop_ends(self) -> frozenset[int]:
        """Steps (1-based counts) at which a training loop must end (see `steps_per_loop`)."""
        ends = set(self.eval_steps())
        for every in (self.log_every, self.record_every):
            if every:
                ends.update(range(every, self.steps, every))
        return frozenset(ends)

    def loop_length(self, step: int, ends=None) -> int:
        """Steps of the loop starting after `step` completed steps."""
        ends = self.loop_ends() if ends is None else ends
        n = 1
        while n < self.steps_per_loop and step + n < self.steps and step + n not in ends:
            n += 1
        return n

    def decay_steps(self, train_examples: int) -> float:
        """Steps between exponential decays: `decay_epochs` epochs of `batch_size` images."""
        return self.decay_epochs * train_examples / self.batch_size


def learning_rate_at(config: TrainConfig, step: int, train_examples: int) -> float:
    """The learning rate of the update at 0-based `step` (pure Python, for logs and tests)."""
    if config.lr_schedule == "constant":
        return float(config.learning_rate)
    if config.lr_schedule == "cosine":
        fraction = min(step, config.steps) / config.steps
        return float(config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * fraction)))
    decays = math.floor(step / config.decay_steps(train_examples))
    return float(config.learning_rate * config.decay_rate**decays)
