"""nac.net.ablation against a hand-ablated forward pass, and the l1_kernel criterion."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nac.net import ablation
from nac.net import model as model_lib
from nac.spec import arch as arch_lib

SIZE = 8


@pytest.fixture(scope="module")
def trained_like():
    """A per-cell build of 8/2-1/6 with random betas and batch-norm statistics (so that every
    branch's featuremap is far from zero) and a batch of images."""
    net = arch_lib.network_from_notation("8/2-1/6")
    model = model_lib.build_model(net, SIZE)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.beta.shape[0]
            layer.beta.assign(rng.uniform(0.2, 1.0, c).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype("float32"))
    images = tf.constant(rng.uniform(-1, 1, (6, SIZE, SIZE, 3)).astype("float32"))
    labels = tf.constant(rng.integers(0, 10, 6).astype("int32"))
    return model, images, labels


def _hand_ablated_loss(model, branch, images, labels):
    """A per-branch build with the same weights where `branch`'s post-ReLU output is exactly
    zero: its kernel zero, moving mean zero and beta -1, so the ReLU sees -1 everywhere."""
    hand = model_lib.build_model(model.network, SIZE, model_lib.BuildOptions(cell_impl="per_branch"))
    model_lib.transfer_weights(model, hand)
    if branch is not None:
        name = arch_lib.BranchId.parse(branch).keras
        for w in hand.get_layer(f"{name}_conv").weights:
            w.assign(tf.zeros_like(w))
        bn = hand.get_layer(f"{name}_bn")
        bn.moving_mean.assign(tf.zeros_like(bn.moving_mean))
        bn.beta.assign(-tf.ones_like(bn.beta))
    logits = hand(images, training=False)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy()


def test_ablations_equal_a_hand_ablated_forward_pass(trained_like):
    model, images, labels = trained_like
    ablator = ablation.Ablator(model)
    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    base, ablated = ablator.all_branches(batches)
    assert list(ablated) == [b.original for b in model.network.branch_ids()]
    np.testing.assert_allclose(base["loss"], _hand_ablated_loss(model, None, images, labels), rtol=1e-5)
    for branch in ("Cell1/Branch1", "Cell2/Branch6", "Cell4/Branch3"):
        expected = _hand_ablated_loss(model, branch, images, labels)
        np.testing.assert_allclose(ablated[branch]["loss"], expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(ablated[branch]["loss"], base["loss"])  # the ablation did something
    # the factors are back to 1 and the shared weights untouched: the model is as before
    again = ablator.evaluate(batches)
    np.testing.assert_array_equal(again["loss"], base["loss"])
    np.testing.assert_array_equal(base["correct"], (np.argmax(model(images).numpy(), -1) == labels.numpy()))


def test_l1_kernel_by_hand(trained_like):
    model, _, _ = trained_like
    from nac.net import criteria

    values = criteria.l1_kernel(model)
    conv = model.get_layer("cell1_branch2_conv").kernel.numpy()  # 3x3
    assert values["Cell1/Branch2"] == pytest.approx(np.abs(conv).sum() / conv.size)
    sep = model.get_layer("cell1_branch3_conv")  # 3x3sep: depthwise and pointwise together
    d, p = sep.depthwise_kernel.numpy(), sep.pointwise_kernel.numpy()
    assert values["Cell1/Branch3"] == pytest.approx((np.abs(d).sum() + np.abs(p).sum()) / (d.size + p.size))


def test_per_branch_build_ablates_as_the_per_cell_one(trained_like):
    model, images, labels = trained_like
    twin = model_lib.build_model(model.network, SIZE, model_lib.BuildOptions(cell_impl="per_branch"))
    model_lib.transfer_weights(model, twin)
    batches = [(images, labels)]
    ours, theirs = ablation.Ablator(model), ablation.Ablator(twin)
    for branch in ("Cell1/Branch5", "Cell4/Branch1"):
        np.testing.assert_allclose(
            ours.evaluate(batches, branch)["loss"], theirs.evaluate(batches, branch)["loss"], rtol=1e-5
        )
