"""One-branch ablations of a trained EnvelopeNet: the oracle of branch utility.

`ablatable(model)` returns a model that shares every layer (and so every weight) of `model`
and multiplies each branch's featuremap, where its tap sits (after the ReLU by default), by a
per-branch keep factor held in a non-trainable variable. In the per-cell implementation a
branch's featuremap is its channel slice of the cell's post-ReLU tensor; the factor scales
only those channels. Ablating a branch is then one assignment and one evaluation pass: the
function is traced once and reads the factors, so nothing is rebuilt between ablations.

The rest of the network is evaluated exactly as the trainer's final evaluation: the
evaluation weights (`nac.search.ablation.EVAL_WEIGHTS_FILE`), batch norm in inference mode
with the statistics as saved (not re-estimated after ablating; with `bn_eval="batch_stats"`
in training mode on each batch, as the trainer evaluates), dropout off, taps not collecting.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from nac.net import model as model_lib
from nac.net import weights as net_weights
from nac.net.ops import FeaturemapTap
from nac.spec import arch as arch_lib


class BranchKeep(keras.layers.Layer):
    """Multiplies the channels `[start, stop)` of its input by a scalar `keep` variable."""

    def __init__(self, channels=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = None if channels is None else (int(channels[0]), int(channels[1]))

    def build(self, input_shape):
        self.keep = self.add_weight(shape=(), initializer="ones", trainable=False, name="keep")
        total = int(input_shape[-1])
        start, stop = (0, total) if self.channels is None else self.channels
        self._selector = np.zeros(total, np.float32)
        self._selector[start:stop] = 1.0

    def call(self, x):
        selector = tf.constant(self._selector, x.dtype)
        factor = 1.0 - selector + selector * tf.cast(self.keep, x.dtype)
        return x * factor

    def get_config(self):
        return {**super().get_config(), "channels": None if self.channels is None else list(self.channels)}


def ablatable(model: keras.Model) -> tuple[keras.Model, dict[str, BranchKeep]]:
    """A model sharing `model`'s layers with a `BranchKeep` after every featuremap tap.

    Returns:
      (the model, `{branch id: its BranchKeep layer}` in network order).
    """
    keeps: dict[str, BranchKeep] = {}

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if isinstance(layer, FeaturemapTap):
            keep = BranchKeep(layer.channels, name=f"{arch_lib.BranchId.parse(layer.branch).keras}_keep")
            keeps[layer.branch] = keep
            out = keep(out)
        return out

    masked = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    masked.network = model.network
    return masked, keeps


@contextlib.contextmanager
def _no_dropout(model):
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in layers]
    try:
        for layer in layers:
            layer.rate = 0.0
        with model_lib.collection_disabled(model):
            yield
    finally:
        for layer, rate in zip(layers, rates, strict=True):
            layer.rate = rate


class Ablator:
    """Evaluates a trained model with one branch (or none) zeroed, per image.

    Args:
      model: the trained model, carrying its evaluation weights.
      batch_stats: batch norm normalises with each batch's statistics (`bn_eval=
        "batch_stats"`) instead of the saved ones.
    """

    def __init__(self, model: keras.Model, batch_stats: bool = False):
        self.model, self.keeps = ablatable(model)
        self.branches = list(self.keeps)
        self._training = batch_stats
        self._step = tf.function(self._per_image, reduce_retracing=True)
        self._source = model

    def _per_image(self, images, labels):
        logits = tf.cast(self.model(images, training=self._training), tf.float32)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
        return loss, correct

    def evaluate(self, batches, ablate: str | None = None) -> dict[str, np.ndarray]:
        """Per-image `{"loss": [N] float64, "correct": [N] bool}` over `batches` ((images,
        labels) pairs, a list so that every call sees the same images) with branch `ablate`
        zeroed (None: the whole network)."""
        for branch, keep in self.keeps.items():
            keep.keep.assign(0.0 if branch == ablate else 1.0)
        losses, correct = [], []
        with _no_dropout(self._source):
            for images, labels in batches:
                loss, right = self._step(images, labels)
                losses.append(loss.numpy().astype(np.float64))
                correct.append(right.numpy())
        return {"loss": np.concatenate(losses), "correct": np.concatenate(correct)}

    def all_branches(self, batches, progress=None) -> tuple[dict, dict]:
        """(the base per-image results, `{branch: per-image results with it zeroed}`)."""
        base = self.evaluate(batches)
        out = {}
        for i, branch in enumerate(self.branches):
            out[branch] = self.evaluate(batches, branch)
            if progress is not None:
                progress(i + 1, len(self.branches))
        for keep in self.keeps.values():
            keep.keep.assign(1.0)
        return base, out


def save_evaluation_weights(directory, model) -> str:
    """Writes `model`'s evaluation weights into `directory/eval_weights.npz`
    (`nac.search.ablation.EVAL_WEIGHTS_FILE`); returns the path."""
    import os

    from nac.search.ablation import EVAL_WEIGHTS_FILE

    path = os.path.join(os.fspath(directory), EVAL_WEIGHTS_FILE)
    np.savez(path, **net_weights.model_weights(model))
    return path


def load_step_model(network: arch_lib.Network, image_size: int, options, weights: dict) -> keras.Model:
    """Builds `network` with `options` and assigns a step's evaluation weights to it."""
    model = model_lib.build_model(network, image_size, options)
    missing = sorted(set(net_weights.model_weights(model)) - set(weights))
    if missing:
        from nac.spec.errors import RunError

        raise RunError(
            f"the saved evaluation weights lack {missing[0]} (and {len(missing) - 1} more): not this network's"
        )
    net_weights.assign(model, weights)
    return model
