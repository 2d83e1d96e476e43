"""Branch criteria read from a model's weights: `l1_kernel` and the zero-cost `snip`.

The recorded criteria (`l2`, `variance`, `taylor`) are accumulated by the featuremap taps
(`nac.net.ops`, read by `nac.net.stats`); the registry of all criteria is
`nac.search.criteria`. A branch's kernels are the weights of its convolution layer
(`cell<k>_branch<n>_conv`, the same in both cell implementations): one kernel for a regular
convolution; for a separable one the depthwise K x K x C_in x 1 and the pointwise 1 x 1 x C_in
x C_out kernels, counted together (their weights summed, their numbers of weights added).

* `l1_kernel` (Li et al. 2016): sum of |w| over the branch's kernels / their number of weights.
* `snip` (Lee et al. 2019, connection sensitivity): over `batches` training batches, the mean
  over the branch's kernel weights of |w * dL/dw| (L the batch's mean cross-entropy), then
  divided by the mean of |w| over the same weights. At initialisation the Glorot scale of a
  K x K kernel is proportional to 1 / K, and batch norm after the convolution makes the
  gradient's scale independent of the kernel's: the per-weight mean alone would rank kernel
  sizes (smaller first), the sum over weights the other way round; dividing by the mean |w|
  leaves the weight-magnitude-weighted mean |dL/dw|, which does not depend on K by
  construction (`tests/net/test_criteria_values.py` shows both effects).
  Computed on a copy of the model (same weights, dropout off, taps off, batch norm in
  training mode on each batch), so the trained model's batch-norm statistics, accumulators
  and random streams are left alone.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from nac.net import model as model_lib
from nac.spec import arch as arch_lib


def branch_kernels(model: keras.Model) -> dict[str, list]:
    """`{branch id: [kernel variables]}` of every branch of `model`, in network order."""
    out = {}
    for branch in model_lib.taps(model):
        layer = model.get_layer(arch_lib.BranchId.parse(branch).keras + "_conv")
        out[branch] = [w for w in layer.trainable_weights if "kernel" in w.name]
    return out


def l1_kernel(model: keras.Model) -> dict[str, float]:
    """`{branch: sum |w| / number of weights}` over each branch's kernels (both kernels of a
    separable branch together)."""
    out = {}
    for branch, kernels in branch_kernels(model).items():
        values = [np.abs(np.asarray(k.numpy(), np.float64)) for k in kernels]
        out[branch] = float(sum(v.sum() for v in values) / sum(v.size for v in values))
    return out


def _copy_without_dropout(model: keras.Model) -> keras.Model:
    """A build of `model`'s network with its weights, off any strategy, dropout rates 0."""
    copy = model_lib.build_model(model.network, model.image_size, model.build_options)
    model_lib.transfer_weights(model, copy)
    for layer in copy.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return copy


def snip(model: keras.Model, batches) -> dict[str, float]:
    """The zero-cost `snip` criterion of `model` on `batches` ((images, labels) pairs).

    Returns:
      `{branch: mean over its kernel weights of |w * dL/dw| (averaged over batches) / mean |w|}`.

    Raises:
      ValueError: `batches` is empty.
    """
    copy = _copy_without_dropout(model)
    kernels = branch_kernels(copy)
    flat = [k for ks in kernels.values() for k in ks]
    sums = [np.zeros(k.shape, np.float64) for k in flat]
    n = 0
    with model_lib.collection_disabled(copy):
        for images, labels in batches:
            with tf.GradientTape() as tape:
                logits = tf.cast(copy(images, training=True), tf.float32)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            grads = tape.gradient(loss, [k.value for k in flat])
            for s, k, g in zip(sums, flat, grads, strict=True):
                s += np.abs(np.asarray(k.numpy(), np.float64) * np.asarray(g.numpy(), np.float64))
            n += 1
    if not n:
        raise ValueError("snip: no batches")
    out, i = {}, 0
    for branch, ks in kernels.items():
        part = sums[i : i + len(ks)]
        weights = [np.abs(np.asarray(k.numpy(), np.float64)) for k in ks]
        i += len(ks)
        count = sum(w.size for w in weights)
        mean_abs_w = sum(w.sum() for w in weights) / count
        out[branch] = float(sum(p.sum() for p in part) / n / count / mean_abs_w)
    return out
