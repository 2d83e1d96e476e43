"""Evaluation of `nac.training.train.Trainer`: EMA swap, batch-norm re-estimation, splits.

`Evaluation` swaps the EMA weights in (and back), averages or re-estimates the batch-norm
statistics (`bn_eval`), evaluates each split with the traced evaluation step and records the
history entry. See `nac.training.train`'s module docstring for the recipe.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from nac.net import divergence, tracing
from nac.spec.errors import RunError
from nac.training import distribute
from nac.training.replica import _bn_layers, _copy


@dataclasses.dataclass(frozen=True)
class _EvaluationInputs:
    whole: dict
    partial: dict
    recalibration: object
    partial_batches: int | None = None  # batches of the shortened evaluations (eval_examples)


class Evaluation:
    """The evaluation methods; mixed into `Trainer` (with `nac.training.replica.ReplicaSteps`)."""

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
