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

import time
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from nac.net import tracing
from nac.net.model import BuildOptions, build_model
from nac.spec import arch as arch_lib
from nac.spec.errors import ConfigError, RunError
from nac.training import distribute
from nac.training.evaluation import Evaluation
from nac.training.loop import TrainingInterrupted, TrainLog, TrainResult, run_training  # noqa: F401  (re-exported)
from nac.training.recipe import (  # noqa: F401  (re-exported: the trainer's configuration)
    BN_EVAL_MODES,
    EMA_MAX_DECAY,
    LR_SCHEDULES,
    TrainConfig,
    learning_rate_at,
)
from nac.training.replica import (  # noqa: F401  (re-exported)
    ReplicaSteps,
    _bn_layers,
    _dtype_policy,
    _no_dropout_no_taps,
    ema_decay,
)


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


class Trainer(ReplicaSteps, Evaluation):
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
        config, info = self.config, data.info
        start = time.perf_counter()
        self._setup(info.train_examples)
        iterator = iter(distribute.distribute_dataset(self.strategy, data.train(config.batch_size)))
        evaluation = self._evaluation_inputs(data)
        callback_list = keras.callbacks.CallbackList(list(callbacks), model=self.model)
        self.model.stop_training = False
        run = run_training(
            self, iterator, evaluation, callback_list, info.train_examples, should_stop, progress, start
        )
        result = run.result(self.model, config.batch_size, start)
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
        run = TrainLog()
        self._evaluate_at(0, True, self._evaluation_inputs(data), callback_list, run, start)
        return run.result(self.model, self.config.batch_size, start)


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
