"""The replica step functions of `nac.training.train.Trainer` (traced, one per strategy).

`ReplicaSteps` holds the per-replica forward and backward pass, the training step and loop
(`strategy.run` over a replica step, reduced with `strategy.reduce(SUM)`, then the EMA
update in cross-replica context), the evaluation step and the batch-norm re-estimation step.
The recipe they implement is described in `nac.training.train`'s module docstring.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from nac.net.model import collection_disabled
from nac.training.recipe import EMA_MAX_DECAY


def ema_decay(t):
    """The original's EMA decay `min(0.9999, (1 + t) / (10 + t))` at optimizer step count t."""
    if isinstance(t, (int, float, np.integer, np.floating)):
        return min(EMA_MAX_DECAY, (1.0 + t) / (10.0 + t))
    t = tf.cast(t, tf.float32)
    return tf.minimum(tf.constant(EMA_MAX_DECAY, tf.float32), (1.0 + t) / (10.0 + t))


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


class ReplicaSteps:
    """The traced step functions; mixed into `Trainer`, which sets the attributes they read
    (`config`, `model`, `strategy`, `replicas`, `optimizer`, `ema_variables`, `_weights`,
    `_kernels`, `_bn_probe`, `_forward_backward_fn`, `_train_function`, `_loop_function`)."""

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
