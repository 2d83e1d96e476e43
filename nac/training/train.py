"""One training run: a custom loop that serves every `tf.distribute` strategy alike.

`Trainer(network, image_size, config, strategy=...)` builds the Keras model inside the
strategy's scope; `Trainer.train(data, ...)` trains it and returns a `TrainResult`. There is
no `model.fit` (it fails under MultiWorkerMirroredStrategy in Keras 3.15): one traced
`tf.function` runs `strategy.run` over a replica step and reduces its sums with
`strategy.reduce(SUM)`, so the default (no) strategy, OneDeviceStrategy, MirroredStrategy
and MultiWorkerMirroredStrategy run the same code.

The recipe (the original's unless configured otherwise):

* loss: sparse softmax cross-entropy from the float32 logits, per example, summed and
  divided by the GLOBAL batch size on every replica (replicas' gradients are summed by the
  Keras optimizer's all-reduce, so the update is that of the mean over the global batch);
  `weight_decay` adds `weight_decay * sum(||kernel||^2) / 2` (TF1's `l2_loss`) over the
  convolution and dense kernels, divided by the number of replicas.
* optimizer: `keras.optimizers.SGD` (momentum 0 by default) with the learning-rate
  schedule `lr_schedule`: ``exponential`` (staircase: `learning_rate * decay_rate **
  floor(step / decay_steps)`, `decay_steps = decay_epochs * train_examples / batch_size`;
  the original's x0.1 every 350 epochs), ``cosine`` (to 0 over `steps`) or ``constant``.
  `step` is the optimizer's iteration count before the update (0 on the first step).
* EMA: shadow copies of the trainable weights, initialised to the initial weights and
  updated after every step, in cross-replica context inside the same `tf.function`, by
  `shadow -= (1 - d) * (shadow - weight)` with `d = min(0.9999, (1 + t) / (10 + t))`, where
  `t` is the optimizer's iteration count after the update (1 on the first step), as TF1's
  `ExponentialMovingAverage(0.9999, global_step)` applied after the gradient step.
  Evaluation uses the shadow weights (`ema=False`: the raw weights).
* batch norm at evaluation (`bn_eval`): ``recalibrate`` re-estimates every BN layer's
  moving mean and variance before each evaluation, with the weights being evaluated, as the
  exact population mean and (biased) variance of that layer's input over the first
  `ceil(bn_recalibration_examples / batch_size)` global batches of
  `data.train(batch_size, augment=False)` (the same images every time), computed in
  forward passes in training mode (upstream BN layers normalise with batch statistics as
  in training) with dropout and featuremap-tap collection switched off; ``moving`` uses
  Keras' moving averages (BN momentum, 0.999 by default); ``batch_stats`` reproduces the
  original: each evaluation batch is normalised with its own statistics (BN in training
  mode, dropout and tap collection off, moving statistics restored afterwards). Evaluation
  never touches the featuremap taps' accumulators or the dropout random stream.
* evaluations before the last of a training read only the first `eval_examples` images of
  each split when it is set (cheaper curves); the last one always reads the whole split
  and also reports the accuracy on those first images (`test_subset_accuracy`), so a curve's
  end compares with its earlier points on the same images.
* metrics: per-replica sums of correct predictions, losses and example counts, reduced
  with `strategy.reduce(SUM)`: exact for any batch split and for partial final batches.
* mixed precision: the model is built under the `mixed_float16` policy (the global policy
  is restored afterwards; logits stay float32) and the optimizer is a `LossScaleOptimizer`.
  Keras' LossScaleOptimizer decides whether to skip a step from the first replica's LOCAL
  gradients (its all-reduce comes later, inside the inner optimizer), so one replica's
  overflow would otherwise poison every replica's weights with NaN; the replica step
  all-reduces a "non-finite" flag first so that every replica skips together.
* XLA (`jit_compile`): the per-replica forward and backward pass (model, loss, gradients,
  tap and BN updates) is one XLA-compiled function; the gradient all-reduce, the optimizer
  update and the EMA update run outside it. Evaluation is not compiled.
* batch norm under several replicas: Keras creates moving statistics with aggregation
  "none", so each replica's copy follows its own batches; before evaluating with
  ``moving`` or ``batch_stats`` they are averaged over all replicas.

Callbacks (`keras.callbacks.Callback`) are driven through `keras.callbacks.CallbackList`:
`on_train_begin`, `on_train_batch_begin(i)`, `on_train_batch_end(i, logs)` with logs
`loss` (the batch's mean cross-entropy), `accuracy`, `lr`, `images_per_sec` and, with
weight decay, `regularization_loss`,
`on_test_begin`/`on_test_end(logs)` around each evaluation, and `on_train_end(logs)` with
the final evaluation. `i` is the 0-based step index. Every worker of a multi-worker run
calls the same hooks at the same steps, so callbacks may read on-read (SUM) variables,
which all-reduce across workers. A callback that sets `model.stop_training = True` ends
training after that step (with a final evaluation); it must do so on every worker.

Interruption: `should_stop()` is checked before every step. When it returns True the run
stops at that step boundary and raises `TrainingInterrupted` without calling
`on_train_end`, so that nothing partial is written. Under MultiWorkerMirroredStrategy the
workers' flags are summed inside the next step, so all workers stop after that step
(`TrainingInterrupted.step` is then one more than a single process would report).

Determinism: `train.py` adds no randomness of its own (no unseeded shuffles; evaluation
does not draw from the dropout stream). For repeatable CPU runs the driver must call
`keras.utils.set_random_seed(seed)` (weight initialisers and dropout) and
`tf.config.experimental.enable_op_determinism()` before building the `Trainer`, and load
the data with a fixed seed. GPU runs are repeatable only with op determinism enabled;
multi-replica runs also depend on the all-reduce order of the cross-device ops.

At the end, `TrainResult.model` (the trainer's model) holds the EVALUATION weights: the
EMA weights (with `ema=True`) and, with ``recalibrate``, the re-estimated BN statistics of
the final evaluation, so it can be exported as is. With ``batch_stats`` its moving BN
statistics are Keras' training-time moving averages, which the evaluation did not use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from nac.net import divergence, tracing
from nac.net.model import BuildOptions, build_model, collection_disabled
from nac.spec import arch as arch_lib
from nac.spec.errors import ConfigError, RunError
from nac.training import distribute
from nac.training.recipe import (  # noqa: F401  (re-exported: the trainer's configuration)
    BN_EVAL_MODES,
    EMA_MAX_DECAY,
    LR_SCHEDULES,
    TrainConfig,
    learning_rate_at,
)


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary because `should_stop()` returned True.

    Attributes:
      step: Steps completed before stopping.
    """

    def __init__(self, step: int):
        super().__init__(f"training interrupted after {step} steps")
        self.step = step


def learning_rate_schedule(config: TrainConfig, train_examples: int):
    """The optimizer's learning rate: a float or a `keras.optimizers.schedules` schedule."""
    if config.lr_schedule == "constant":
        return float(config.learning_rate)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            float(config.learning_rate), decay_steps=config.steps, alpha=0.0
        )
    return keras.optimizers.schedules.ExponentialDecay(
        float(config.learning_rate),
        decay_steps=config.decay_steps(train_examples),
        decay_rate=float(config.decay_rate),
        staircase=True,
    )


def ema_decay(t):
    """The original's EMA decay `min(0.9999, (1 + t) / (10 + t))` at optimizer step count t."""
    if isinstance(t, (int, float, np.integer, np.floating)):
        return min(EMA_MAX_DECAY, (1.0 + t) / (10.0 + t))
    t = tf.cast(t, tf.float32)
    return tf.minimum(tf.constant(EMA_MAX_DECAY, tf.float32), (1.0 + t) / (10.0 + t))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What one training run produced.

    Attributes:
      model: The trained model with the evaluation weights in place (EMA weights and, with
        ``recalibrate``, the re-estimated BN statistics), ready for export.
      steps: Steps trained.
      history: One dict per evaluation: `step`, `test_accuracy`, `test_loss`,
        (`test_top5`), (`validation_accuracy`, `validation_loss`, `validation_top5`),
        `wall_time` (seconds since training began).
      loss_curve: (step, mean training loss over the steps since the previous entry) every
        `log_every` steps and at the last step.
      images_per_sec: Training throughput, excluding evaluations, callbacks and the first
        (tracing) step.
      train_time_s: Seconds spent in training steps (first step included).
      eval_time_s: Seconds spent in evaluations (BN re-estimation included).
      wall_time_s: Seconds from the start of `train` to its end.
      images_trained: Training images consumed over all replicas (reduced in the graph).
      final: The last evaluation (the last `history` entry).
      stopped_early: A callback set `model.stop_training`.
    """

    model: keras.Model
    steps: int
    history: tuple[dict, ...]
    loss_curve: tuple[tuple[int, float], ...]
    images_per_sec: float
    train_time_s: float
    eval_time_s: float
    wall_time_s: float
    images_trained: int
    final: dict
    stopped_early: bool = False


def _dropout_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def _bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@contextlib.contextmanager
def _no_dropout_no_taps(model):
    """While tracing: dropout rates 0 and tap collection off (Keras reads both at trace time)."""
    dropouts = _dropout_layers(model)
    rates = [layer.rate for layer in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        with collection_disabled(model):
            yield
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _ema_update(shadow, weight, decay):
    shadow.assign_sub((shadow - tf.cast(weight, shadow.dtype)) * (1.0 - decay))


def _copy(target, source):
    target.assign(source)


class Trainer:
    """Builds a network's model under a strategy and trains it (see the module docstring).

    Args:
      network: The architecture (`nac.spec.arch.Network`).
      image_size: Input height and width.
      config: The training configuration.
      build_options: How branches are built (`nac.net.model.BuildOptions`).
      strategy: A `tf.distribute.Strategy` from `nac.training.distribute.make_strategy`; None uses
        the default (no) strategy.

    Attributes:
      model: The Keras model (built in `strategy.scope()`).
      strategy, config: As given.
      optimizer: The Keras optimizer (after `train` starts).
      ema_variables: Shadow EMA variables, one per trainable weight (after `train` starts).
      train_step_traces: How many times the train step was traced (1 after training).

    Raises:
      ConfigError: The global batch does not divide among the replicas.
    """

    def __init__(
        self,
        network: arch_lib.Network,
        image_size: int,
        config: TrainConfig,
        *,
        build_options: BuildOptions | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = int(self.strategy.num_replicas_in_sync)
        if config.batch_size % self.replicas:
            raise ConfigError(
                f"TrainConfig.batch_size: got {config.batch_size}; expected a multiple of the "
                f"{self.replicas} replicas (the global batch is split evenly among them)"
            )
        policy = "mixed_float16" if config.mixed_precision else keras.config.dtype_policy().name
        with self.strategy.scope(), _dtype_policy(policy):
            self.model = build_model(network, image_size, build_options or BuildOptions())
        self.optimizer = None
        self.ema_variables = []
        self.train_step_traces = 0
        self._trained = False

    # ----------------------------------------------------------------------------------
    # Set-up.

    def _setup(self, train_examples: int):
        config, model = self.config, self.model
        with self.strategy.scope():
            optimizer = keras.optimizers.SGD(
                learning_rate=learning_rate_schedule(config, train_examples), momentum=float(config.momentum)
            )
            if config.mixed_precision:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
            self.optimizer = optimizer
            self._weights = [v.value for v in model.trainable_variables]
            self._kernels = [v for v in model.trainable_variables if v.name.endswith("kernel")]
            self._bn_stats = [
                v.value for layer in _bn_layers(model) for v in (layer.moving_mean, layer.moving_variance)
            ]
            if config.ema:
                self.ema_variables = [
                    tf.Variable(w.read_value(), trainable=False, name=f"ema_{i}")
                    for i, w in enumerate(self._weights)
                ]
                self._weights_backup = [
                    tf.Variable(w.read_value(), trainable=False, name=f"backup_{i}")
                    for i, w in enumerate(self._weights)
                ]
            self._bn_backup = [
                tf.Variable(v.read_value(), trainable=False, name=f"bn_backup_{i}")
                for i, v in enumerate(self._bn_stats)
            ]
            self._recalibrates = config.bn_eval == "recalibrate" and bool(self._bn_stats)
            if self._recalibrates:
                bns = _bn_layers(model)
                self._bn_probe = keras.Model(
                    model.inputs[0], [layer.input for layer in bns], name=f"{model.name}_bn_inputs"
                )
        self._train_function = tracing.own_function(self._train_step)
        self._loop_function = tracing.own_function(self._train_loop)
        forward = (
            tracing.own_function(self._forward_backward, jit_compile=True)
            if config.jit_compile
            else self._forward_backward
        )
        self._forward_backward_fn = forward
        self._recal_function = tracing.own_function(self._recal_step)
        self._sync_bn_function = tracing.own_function(self._sync_bn_stats)

    # ----------------------------------------------------------------------------------
    # Traced functions.

    def _forward_backward(self, images, labels):
        config, model = self.config, self.model
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            ce_sum = tf.reduce_sum(per_example)
            loss = ce_sum / config.batch_size
            if config.weight_decay:
                reg = config.weight_decay * tf.add_n(
                    [tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in self._kernels]
                )
                loss += reg / self.replicas
            else:
                reg = tf.constant(0.0)
            if config.mixed_precision:
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        )
        return grads, ce_sum, correct, reg

    def _replica_train(self, images, labels, stop):
        grads, ce_sum, correct, reg = self._forward_backward_fn(images, labels)
        if self.config.mixed_precision and self.replicas > 1:
            # LossScaleOptimizer decides to skip a step from the first replica's LOCAL
            # gradients; make every replica see a non-finite gradient if any replica has one.
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            bad = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32)
            )
            poison = tf.where(bad > 0, np.float32("nan"), np.float32(0.0))
            grads = [g + tf.cast(poison, g.dtype) for g in grads]
        self.optimizer.apply(grads, self.model.trainable_variables)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.stack([ce_sum, correct, count, reg, tf.cast(stop, tf.float32)])

    def _train_step(self, iterator, stop):
        self.train_step_traces += 1
        return self._train_step_body(iterator, stop)

    def _train_step_body(self, iterator, stop):
        images, labels = next(iterator)
        per_replica = self.strategy.run(self._replica_train, args=(images, labels, stop))
        totals = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        if self.config.ema:
            decay = ema_decay(self.optimizer.iterations)
            for shadow, weight in zip(self.ema_variables, self._weights):
                self.strategy.extended.update(shadow, _ema_update, args=(weight, decay), group=False)
        return totals

    def _train_loop(self, iterator, stop, n):
        """`n` training steps in one traced call (`steps_per_loop` > 1); returns their sums."""
        self.train_step_traces += 1
        totals = tf.zeros([5], tf.float32)
        for _ in tf.range(n):
            totals += self._train_step_body(iterator, stop)
        return totals

    def _run_loop(self, iterator, stop: bool, n: int) -> np.ndarray:
        """Runs `n` steps (one device call) and reads their summed results to the host."""
        stop = tf.constant(int(stop))
        if self.config.steps_per_loop == 1:
            return self._train_function(iterator, stop).numpy()
        return self._loop_function(iterator, stop, tf.constant(n)).numpy()

    def _replica_eval(self, images, labels):
        batch_stats = self.config.bn_eval == "batch_stats"
        with _no_dropout_no_taps(self.model):
            logits = tf.cast(self.model(images, training=batch_stats), tf.float32)
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        k = min(5, logits.shape[-1])
        top5 = tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(correct), tf.reduce_sum(top5), count])

    def _eval_step(self, images, labels):
        per_replica = self.strategy.run(self._replica_eval, args=(images, labels))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _replica_recal(self, images):
        with _no_dropout_no_taps(self.model):
            inputs = self._bn_probe(images, training=True)
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        sums = []
        for x in inputs:
            x = tf.cast(x, tf.float64)
            axes = list(range(len(x.shape) - 1))
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float64)
            sums += [tf.reduce_sum(x, axes), tf.reduce_sum(tf.square(x), axes), count[None]]
        return tf.concat(sums, 0)

    def _recal_step(self, images, labels):
        del labels
        per_replica = self.strategy.run(self._replica_recal, args=(images,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _copy(self, targets: str, sources: str):
        """Copies the variable list attribute `sources` into `targets`, eagerly.

        One `extended.update` per variable, so every replica copies its own value. Not
        traced: a traced copy captures this trainer's variables and is traced anew for
        every trainer, which TensorFlow reports as excessive retracing once a construction
        has trained a few networks (and passing the variables as arguments retraces too);
        eager copies of a few hundred variables take milliseconds.
        """
        self._copy_all(getattr(self, targets), getattr(self, sources))

    def _copy_all(self, targets, sources):
        for target, source in zip(targets, sources):
            self.strategy.extended.update(target, _copy, args=(source,), group=False)

    def _sync_bn_stats(self):
        # Keras creates BN moving statistics with aggregation "none": under a multi-replica
        # strategy each replica updates its own copy from its own batches and the copies
        # drift apart. Average them over all replicas (and workers) and assign the mean.
        def local_values():
            return tf.concat([tf.reshape(v, [-1]) for v in self._bn_stats], 0)

        mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, self.strategy.run(local_values), axis=None)
        offset = 0
        for v in self._bn_stats:
            size = int(np.prod(v.shape))
            v.assign(tf.reshape(mean[offset : offset + size], v.shape))
            offset += size

    # ----------------------------------------------------------------------------------
    # Evaluation.

    def _recalibrate(self, dataset):
        totals = None
        for images, labels in dataset:
            value = self._recal_function(images, labels).numpy()
            totals = value if totals is None else totals + value
        offset = 0
        for layer in _bn_layers(self.model):
            channels = layer.moving_mean.shape[-1]
            sums = totals[offset : offset + channels]
            squares = totals[offset + channels : offset + 2 * channels]
            count = totals[offset + 2 * channels]
            offset += 2 * channels + 1
            mean = sums / count
            variance = np.maximum(squares / count - mean**2, 0.0)
            layer.moving_mean.value.assign(
                divergence.float32_or_raise(mean, f"batch-norm mean of {layer.name}")
            )
            layer.moving_variance.value.assign(
                divergence.float32_or_raise(variance, f"batch-norm variance of {layer.name}")
            )

    def _evaluate_split(self, dataset, subset_batches: int | None = None) -> dict:
        """Loss, accuracy, top-5 and examples of one split; with `subset_batches`, also the
        accuracy of its first that many batches (the images of the shortened evaluations)."""
        totals = np.zeros(4, np.float64)
        subset = None
        for b, (images, labels) in enumerate(dataset):
            if b == subset_batches:
                subset = totals.copy()
            totals += self._eval_function(images, labels).numpy()
        loss_sum, correct, top5, count = totals
        if not count:
            raise RunError("evaluation: the split has no examples")
        out = {
            "accuracy": float(correct / count),
            "loss": float(loss_sum / count),
            "top5": float(top5 / count),
            "examples": int(count),
        }
        if subset is not None and subset[3]:
            out["subset_accuracy"] = float(subset[1] / subset[3])
            out["subset_examples"] = int(subset[3])
        return out

    def _evaluate(self, datasets: dict, recal_dataset, subset_batches: int | None = None) -> dict:
        """Evaluates with the evaluation weights and leaves them in place. With
        `subset_batches` (the last evaluation of a training with `eval_examples`) each split
        also reports the accuracy on the images the earlier, shortened evaluations read
        (`<split>_subset_accuracy`, `<split>_subset_examples`), so that a curve can be compared
        with its end on the same images."""
        if self.replicas > 1 and self._bn_stats and self.config.bn_eval != "recalibrate":
            self._sync_bn_function()
        if self.config.ema:
            self._copy("_weights_backup", "_weights")
            self._copy("_weights", "ema_variables")
        if self._bn_backup:
            self._copy("_bn_backup", "_bn_stats")
        if self._recalibrates:
            self._recalibrate(recal_dataset)
        metrics = {}
        for split, dataset in datasets.items():
            result = self._evaluate_split(dataset, subset_batches)
            metrics[f"{split}_accuracy"] = result["accuracy"]
            metrics[f"{split}_loss"] = result["loss"]
            if self.config.top5:
                metrics[f"{split}_top5"] = result["top5"]
            metrics[f"{split}_examples"] = result["examples"]
            if "subset_accuracy" in result:
                metrics[f"{split}_subset_accuracy"] = result["subset_accuracy"]
                metrics[f"{split}_subset_examples"] = result["subset_examples"]
        if self.config.bn_eval == "batch_stats" and self._bn_backup:
            # Training-mode BN updated the moving statistics; undo that.
            self._copy("_bn_stats", "_bn_backup")
        return metrics

    def _restore_training_weights(self):
        if self.config.ema:
            self._copy("_weights", "_weights_backup")
        if self._bn_backup:
            self._copy("_bn_stats", "_bn_backup")

    # ----------------------------------------------------------------------------------
    # Training.

    def _check_data(self, data):
        info = data.info
        model = self.model
        shape = tuple(model.inputs[0].shape[1:])
        expected = (info.image_size, info.image_size, info.channels)
        if shape != expected:
            raise RunError(f"data: {info.name} gives images {expected}; the model takes {shape}")
        classes = model.outputs[0].shape[-1]
        if classes != info.num_classes:
            raise RunError(f"data: {info.name} has {info.num_classes} classes; the model outputs {classes}")

    def train(
        self,
        data,
        *,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[dict], None] | None = None,
    ) -> TrainResult:
        """Trains the model on `data` and evaluates it (see the module docstring).

        Args:
          data: A `nac.data.Data` (or an object with the same `info`, `train` and
            `evaluation`).
          callbacks: Keras callbacks, driven through `keras.callbacks.CallbackList`.
          should_stop: Checked before every step; True stops the run.
          progress: Called every `log_every` steps and at the last step with a dict:
            `step`, `steps`, `loss` and `accuracy` (means since the previous call), `lr`,
            `images_per_sec`, `eta_s`.

        Returns:
          The `TrainResult`.

        Raises:
          TrainingInterrupted: `should_stop()` returned True.
          RunError: The data does not fit the model, or `train` was called before.
        """
        if self._trained:
            raise RunError("Trainer.train: this trainer has trained already; build a new one")
        self._trained = True
        self._check_data(data)
        config, strategy = self.config, self.strategy
        info = data.info
        start = time.perf_counter()
        self._setup(info.train_examples)
        multi_worker = distribute.num_workers(strategy) > 1

        train_iterator = iter(distribute.distribute_dataset(strategy, data.train(config.batch_size)))
        evaluation = self._evaluation_inputs(data)
        callback_list = keras.callbacks.CallbackList(list(callbacks), model=self.model)
        self.model.stop_training = False
        eval_at = set(config.eval_steps())
        run = _RunLog()
        step = 0
        loop_ends = config.loop_ends()
        loss_watch = divergence.LossWatch(config.mixed_precision)
        callback_list.on_train_begin()
        while step < config.steps:
            local_stop = bool(should_stop()) if should_stop is not None else False
            if local_stop and not multi_worker:
                raise TrainingInterrupted(step)
            n = config.loop_length(step, loop_ends)
            callback_list.on_train_batch_begin(step)
            t0 = time.perf_counter()
            # The one place where the host reads a loop's results: the sums over its n
            # steps of the cross-entropy, correct predictions, examples and regularisation,
            # and the summed stop flags. Statistic records, evaluations and interruption
            # checks below all fall on loop boundaries (`TrainConfig.loop_ends`).
            ce_sum, correct, count, reg, stops = (
                float(x) for x in self._run_loop(train_iterator, local_stop, n)
            )
            loss_watch.check(step + n, ce_sum, reg)
            run.step_times.append((n, time.perf_counter() - t0))
            index, step = step + n - 1, step + n
            run.images_trained += int(round(count))
            run.window += (ce_sum, correct, count)
            lr = learning_rate_at(config, index, info.train_examples)
            logs = {
                "loss": ce_sum / count,
                "accuracy": correct / count,
                "lr": lr,
                "images_per_sec": _throughput(run.step_times, config.batch_size),
            }
            if config.weight_decay:
                logs["regularization_loss"] = reg / n / self.replicas
            if stops > 0:
                raise TrainingInterrupted(step)
            callback_list.on_train_batch_end(index, logs)
            if self.model.stop_training and step < config.steps:
                run.stopped_early = True
                eval_at.add(step)
            if step % config.log_every == 0 or step == config.steps or run.stopped_early:
                run.log_window(step, config, lr, logs["images_per_sec"], progress)
            if step in eval_at:
                final = step == config.steps or run.stopped_early
                self._evaluate_at(step, final, evaluation, callback_list, run, start)
            if run.stopped_early:
                break
        result = TrainResult(
            model=self.model,
            steps=step,
            history=tuple(run.history),
            loss_curve=tuple(run.loss_curve),
            images_per_sec=_throughput(run.step_times, config.batch_size),
            train_time_s=sum(t for _, t in run.step_times),
            eval_time_s=run.eval_time,
            wall_time_s=time.perf_counter() - start,
            images_trained=run.images_trained,
            final=dict(run.history[-1]),
            stopped_early=run.stopped_early,
        )
        callback_list.on_train_end(dict(run.history[-1]))
        return result

    def evaluate_untrained(self, data, callbacks=()) -> TrainResult:
        """Evaluates the initial weights once, as `train` evaluates its last step, without
        training (a construction iteration without training window); `steps` is 0."""
        if self._trained:
            raise RunError("Trainer.evaluate_untrained: this trainer has trained already; build a new one")
        self._trained = True
        self._check_data(data)
        start = time.perf_counter()
        self._setup(data.info.train_examples)
        callback_list = keras.callbacks.CallbackList(list(callbacks), model=self.model)
        run = _RunLog()
        self._evaluate_at(0, True, self._evaluation_inputs(data), callback_list, run, start)
        return TrainResult(
            model=self.model,
            steps=0,
            history=tuple(run.history),
            loss_curve=(),
            images_per_sec=0.0,
            train_time_s=0.0,
            eval_time_s=run.eval_time,
            wall_time_s=time.perf_counter() - start,
            images_trained=0,
            final=dict(run.history[-1]),
            stopped_early=False,
        )

    def _evaluation_inputs(self, data) -> _EvaluationInputs:
        """The distributed evaluation datasets (whole and, with `eval_examples`, shortened), the
        batch-norm re-estimation batches, and the one traced evaluation function."""
        config, strategy = self.config, self.strategy
        splits = ["test"]
        if config.validation and data.info.validation_examples:
            splits.append("validation")
        sources = {split: data.evaluation(split, config.global_eval_batch_size) for split in splits}
        whole = {split: distribute.distribute_dataset(strategy, d) for split, d in sources.items()}
        # One trace per trainer whatever the batch sizes (a short last batch would retrace,
        # and TensorFlow warns about retracing when a run trains many small networks).
        self._eval_function = tracing.own_function(
            self._eval_step, input_signature=list(whole["test"].element_spec)
        )
        # The evaluations before the last may read only the first `eval_examples` images.
        partial, partial_batches = whole, None
        if config.eval_examples:
            partial_batches = math.ceil(config.eval_examples / config.global_eval_batch_size)
            partial = {
                split: distribute.distribute_dataset(strategy, d.take(partial_batches))
                for split, d in sources.items()
            }
        recalibration = None
        if self._recalibrates:
            batches = math.ceil(config.bn_recalibration_examples / config.batch_size)
            recalibration = distribute.distribute_dataset(
                strategy, data.train(config.batch_size, augment=False).take(batches)
            )
        return _EvaluationInputs(whole, partial, recalibration, partial_batches)

    def _evaluate_at(self, step, final, evaluation, callback_list, run, start) -> None:
        """Evaluates after `step` (the whole splits when `final`), records the history entry
        and leaves the training weights in place unless this is the last evaluation."""
        t0 = time.perf_counter()
        callback_list.on_test_begin()
        datasets = evaluation.whole if final else evaluation.partial
        subset = evaluation.partial_batches if final else None
        metrics = divergence.checked_metrics(step, self._evaluate, datasets, evaluation.recalibration, subset)
        if not final:
            self._restore_training_weights()
        run.eval_time += time.perf_counter() - t0
        entry = {"step": step, **metrics, "wall_time": time.perf_counter() - start}
        run.history.append(entry)
        callback_list.on_test_end(dict(entry))


@dataclasses.dataclass(frozen=True)
class _EvaluationInputs:
    whole: dict
    partial: dict
    recalibration: object
    partial_batches: int | None = None  # batches of the shortened evaluations (eval_examples)


@dataclasses.dataclass
class _RunLog:
    """What one training accumulates: evaluations, the loss curve, timings."""

    history: list = dataclasses.field(default_factory=list)
    loss_curve: list = dataclasses.field(default_factory=list)
    step_times: list = dataclasses.field(default_factory=list)
    eval_time: float = 0.0
    images_trained: int = 0
    window: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))  # loss, correct, count
    stopped_early: bool = False

    def log_window(self, step, config, lr, images_per_sec, progress) -> None:
        """Closes a loss-curve window at `step` and reports it to `progress`."""
        mean_loss = float(self.window[0] / self.window[2])
        self.loss_curve.append((step, mean_loss))
        if progress is not None:
            progress(
                {
                    "step": step,
                    "steps": config.steps,
                    "loss": mean_loss,
                    "accuracy": float(self.window[1] / self.window[2]),
                    "lr": lr,
                    "images_per_sec": images_per_sec,
                    "eta_s": (config.steps - step) * config.batch_size / images_per_sec
                    if images_per_sec
                    else None,
                }
            )
        self.window[:] = 0


def _throughput(step_times: list[tuple[int, float]], batch_size: int) -> float:
    """Images per second from (steps, seconds) per device call, leaving out the first
    (tracing) call when there are others."""
    times = step_times[1:] if len(step_times) > 1 else step_times
    total = sum(t for _, t in times)
    return sum(n for n, _ in times) * batch_size / total if total > 0 else 0.0


def train(
    network: arch_lib.Network,
    image_size: int,
    data,
    config: TrainConfig,
    *,
    build_options: BuildOptions | None = None,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Builds `network` under `strategy` and trains it: `Trainer(...).train(data, ...)`."""
    trainer = Trainer(network, image_size, config, build_options=build_options, strategy=strategy)
    return trainer.train(data, callbacks=callbacks, should_stop=should_stop, progress=progress)
