"""The Keras builder: exact parameter counts, structure, names and forward passes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import PAPER_PARAMS

from nac.net import model as model_lib
from nac.net.ops import FeaturemapTap, LocalResponseNormalization
from nac.spec import arch, cost
from nac.spec.config import OriginalConfig


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name,expected", sorted(PAPER_PARAMS.items()))
def test_built_paper_networks_have_exact_parameter_counts(fixtures_dir, name, expected):
    config = OriginalConfig.load(fixtures_dir / "original_configs" / name)
    model = model_lib.build_model(config.initial_network(), config.parameters.image_size)
    assert trainable(model) == expected
    assert model.output_shape == (None, 10)
    for layer in model.layers:
        assert "/" not in layer.name
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def small_b():
    net = arch.network_from_notation("12/2-1/6", "conv3x3", skip=True)
    return net, model_lib.build_model(net, 16)


def test_forward_pass_shape_and_spec_carried():
    net = arch.network_from_notation("16/2-1-1/6")
    model = model_lib.build_model(net, 32)
    out = model(tf.zeros((2, 32, 32, 3)), training=False)
    assert out.shape == (2, 10) and out.dtype == tf.float32
    assert model.network is net
    assert trainable(model) == cost.count_params(net)


def test_branch_layers_follow_the_original(small_b):
    net, _ = small_b
    model = model_lib.build_model(net, 16, model_lib.BuildOptions(cell_impl="per_branch"))
    conv = model.get_layer("cell1_branch2_conv")
    assert isinstance(conv, keras.layers.Conv2D) and not conv.use_bias and conv.kernel_size == (3, 3)
    assert conv.filters == 12 // 6
    sep = model.get_layer("cell1_branch6_conv")
    assert isinstance(sep, keras.layers.SeparableConv2D) and sep.kernel_size == (7, 7)
    assert sep.depth_multiplier == 1 and not sep.use_bias
    bn = model.get_layer("cell1_branch2_bn")
    assert bn.center and not bn.scale and bn.momentum == 0.999 and bn.epsilon == 1e-3
    assert model.get_layer("cell1_branch2_dropout").rate == pytest.approx(0.2)
    assert isinstance(model.get_layer("stem_layer2_branch0_lrn"), LocalResponseNormalization)
    assert model.get_layer("head_layer2_dropout").rate == pytest.approx(0.2)
    logits = model.get_layer("head_layer3_logits")
    assert logits.kernel_initializer.stddev == pytest.approx(1 / 192)


def test_skip_and_widener_structure(small_b):
    net, model = small_b
    # The first cell's skip: x alone, then a 1x1 conv back to x's width (12).
    first = model.get_layer("cell1_skip_conv")
    assert first.kernel.shape == (1, 1, 12, 12) and first.use_bias
    # Cell 4 (after widener 3): x (12 + 12 channels) + stem (12) + cell 1 (12) + cell 2 (12), pooled to 8x8.
    skip = model.get_layer("cell4_skip_conv")
    assert skip.kernel.shape == (1, 1, 24 + 12 + 12 + 12, 24)
    assert model.get_layer("cell4_skip_t0_pool1").output.shape[1] == 8
    widener = model.get_layer("widener3_conv")
    assert widener.strides == (2, 2) and widener.filters == 12
    assert model.get_layer("widener3_concat").output.shape[-1] == 12 + 12


def test_taps_are_reachable_by_branch_id(small_b):
    net, model = small_b
    taps = model_lib.taps(model)
    assert list(taps) == [b.original for b in net.branch_ids()]
    assert all(isinstance(t, FeaturemapTap) for t in taps.values())
    outputs = model_lib.branch_outputs_model(model)(tf.ones((1, 16, 16, 3)))
    assert set(outputs) == set(taps)
    assert outputs["Cell4/Branch1"].shape == (1, 8, 8, 4)
    assert all(float(tf.reduce_min(v)) >= 0 for v in outputs.values())  # post-ReLU


def test_accumulators_are_not_trainable_and_collect_only_in_training(small_b):
    net, model = small_b
    tap = model_lib.taps(model)["Cell1/Branch1"]
    names = {w.name for w in model.trainable_weights}
    assert not {v.name for v in tap.accumulators()} & names
    before = float(tap.images.numpy())
    model(tf.ones((3, 16, 16, 3)), training=False)
    assert float(tap.images.numpy()) == before
    model(tf.ones((3, 16, 16, 3)), training=True)
    assert float(tap.images.numpy()) == before + 3


def test_branch_order_option():
    net = arch.network_from_notation("6/1/6")
    for impl, name in (("per_branch", "cell1_branch1"), ("per_cell", "cell1")):
        options = model_lib.BuildOptions(branch_order="conv_relu_bn", cell_impl=impl)
        model = model_lib.build_model(net, 8, options)
        bn = model.get_layer(f"{name}_bn")
        relu = model.get_layer(f"{name}_relu")
        assert bn.input is relu.output


def test_imagenet_stem_builds_with_1001_classes():
    net = arch.network_from_notation("128/1-1/6", "imagenet", num_classes=1001)
    assert net.stem == arch.Stem.imagenet() and net.head.layers[2][1].keep_prob == 0.7
    model = model_lib.build_model(net, 40)
    assert model.get_layer("stem_layer0_concat").output.shape[1:] == (20, 20, 96)
    assert model.get_layer("stem_layer1_concat").output.shape[1:] == (10, 10, 192)
    assert model.get_layer("stem_layer2_concat").output.shape[1:] == (5, 5, 288)
    assert not [layer for layer in model.layers if "lrn" in layer.name]
    assert model.get_layer("stem_layer1_branch2_conv").kernel.shape == (7, 7, 96, 64)
    assert model.output_shape == (None, 1001)
    assert trainable(model) == cost.count_params(net)


def test_grayscale_input_channels():
    net = arch.network_from_notation("8/1-1/6", input_channels=1)
    model = model_lib.build_model(net, 28)
    assert model.input_shape == (None, 28, 28, 1)
    assert trainable(model) == cost.count_params(net)


def test_the_tensorflow_modules_take_their_choices_from_nac_choices():
    from nac.cli import construct
    from nac.data import pipelines as data
    from nac.net import ops, stats
    from nac.spec import choices
    from nac.training import distribute

    assert model_lib.BRANCH_ORDERS is choices.BRANCH_ORDERS and model_lib.CELL_IMPLS is choices.CELL_IMPLS
    # Statistic names are checked in one place (checks.statistics_in_order, on choices.STATISTICS).
    assert not any(hasattr(m, "STATISTICS") for m in (ops, stats, model_lib))
    with pytest.raises(ValueError, match=r"statistics: got \['l1'\]; expected a non-empty subset"):
        ops.FeaturemapTap("Cell1/Branch1", ("l1",))
    assert distribute.STRATEGIES is choices.STRATEGIES
    assert data.AUGMENTATIONS is choices.AUGMENTATIONS and data.DATASETS is choices.DATASETS
    assert construct.FLAGS["cell_impl"].parser.enum_values == list(choices.CELL_IMPLS)
    assert construct.FLAGS["augment"].parser.enum_values == list(choices.AUGMENTATIONS)


def test_bad_build_options():
    from nac.spec.errors import SpecError

    with pytest.raises(SpecError, match="branch_order"):
        model_lib.BuildOptions(branch_order="bn_conv")
    with pytest.raises(SpecError, match="statistics"):
        model_lib.BuildOptions(statistics=("l1",))


def test_head_fc_is_xavier_and_logits_truncated_normal():
    head = arch.Head.from_original(
        {
            "Layer0": {"Branch0": {"block": "reduce_mean"}},
            "Layer1": {"Branch0": {"block": "fc", "outputs": 12}},
            "Layer2": {"Branch0": {"block": "fc-final", "inputs": 192, "outputs": 10}},
        }
    )
    net = arch.Network(arch.network_from_notation("6/1/6").body, arch.Stem.conv1x1(6), head)
    model = model_lib.build_model(net, 8)
    assert isinstance(model.get_layer("head_layer1_fc").kernel_initializer, keras.initializers.GlorotUniform)
    logits_init = model.get_layer("head_layer2_logits").kernel_initializer
    assert isinstance(logits_init, keras.initializers.TruncatedNormal) and logits_init.stddev == 1 / 192


# --------------------------------------------------------------------------------------
# The per-cell form (default) against the per-branch Keras layers.


def _pair(notation, size, channels=3, **options):
    net = arch.network_from_notation(notation, input_channels=channels)
    common = dict(branch_dropout=0.0, statistics=("l2", "variance"), **options)
    per_branch = model_lib.build_model(net, size, model_lib.BuildOptions(cell_impl="per_branch", **common))
    per_cell = model_lib.build_model(net, size, model_lib.BuildOptions(cell_impl="per_cell", **common))
    for model in (per_branch, per_cell):  # the stem's and head's dropout too: exact comparisons
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    return net, per_branch, per_cell


@pytest.mark.parametrize("order", model_lib.BRANCH_ORDERS)
def test_per_cell_form_equals_per_branch_layers(order):
    """Same parameters, and with copied weights the same training-mode and inference
    outputs, gradients, BN moving statistics and per-branch statistic sums. 8/2-1/5 has
    cells of 5 branches of width 2 and a widened cell of width 4."""
    net, per_branch, per_cell = _pair("10/2-1/5", 8, branch_order=order)
    assert trainable(per_cell) == trainable(per_branch) == cost.count_params(net)
    # Perturb the source's betas and moving statistics so that the copy is not trivial.
    rng = np.random.default_rng(0)
    for layer in per_branch.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for w in layer.weights:
                w.assign(rng.uniform(0.2, 1.0, w.shape).astype("float32"))
    model_lib.transfer_weights(per_branch, per_cell)
    x = tf.constant(rng.normal(size=(4, 8, 8, 3)).astype("float32"))
    labels = tf.constant([0, 1, 2, 3])
    np.testing.assert_allclose(
        per_cell(x, training=False), per_branch(x, training=False), rtol=1e-4, atol=1e-5
    )

    def grads(model):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return logits, tape.gradient(loss, model.trainable_variables)

    logits_b, grads_b = grads(per_branch)
    logits_c, grads_c = grads(per_cell)
    np.testing.assert_allclose(logits_c, logits_b, rtol=1e-4, atol=1e-5)
    # Gradients by weight: per-cell betas are the per-branch betas concatenated.
    by_path = {v.path: g.numpy() for v, g in zip(per_branch.trainable_variables, grads_b)}
    for v, g in zip(per_cell.trainable_variables, grads_c):
        if v.path.endswith("_bn/beta"):
            k = v.path.split("_")[0]
            expected = np.concatenate(
                [by_path[p] for p in by_path if p.startswith(f"{k}_branch") and "bn" in p]
            )
        else:
            expected = by_path[v.path]
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-4, atol=1e-5)
    # Training mode updated the moving statistics identically.
    back = model_lib.build_model(net, 8, per_branch.build_options)
    model_lib.transfer_weights(per_cell, back)
    for a, b in zip(back.weights, per_branch.weights):
        # float32 sums over differently laid-out tensors: reduction order differs by ~1e-5
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    # The statistic: same sums per branch (both saw x once in training mode).
    taps_b, taps_c = model_lib.taps(per_branch), model_lib.taps(per_cell)
    assert list(taps_b) == list(taps_c) == [b.original for b in net.branch_ids()]
    for branch, tap in taps_c.items():
        for a, b in zip(tap.accumulators(), taps_b[branch].accumulators()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4)
    # branch_outputs_model gives each branch's own channels in both forms.
    outs_b = model_lib.branch_outputs_model(per_branch)(x, training=False)
    outs_c = model_lib.branch_outputs_model(per_cell)(x, training=False)
    for branch in outs_b:
        assert outs_c[branch].shape == outs_b[branch].shape
        np.testing.assert_allclose(outs_c[branch], outs_b[branch], rtol=1e-4, atol=1e-5)
    keras.backend.clear_session()


def test_per_cell_layers_and_names():
    net = arch.network_from_notation("12/1/6")
    model = model_lib.build_model(net, 8)
    assert model.build_options.cell_impl == "per_cell"
    bn = model.get_layer("cell1_bn")
    assert bn.beta.shape == (12,) and not bn.scale
    assert model.get_layer("cell1_dropout").rate == pytest.approx(0.2)
    assert model.get_layer("cell1_branch3_tap").channels == (4, 6)
    with pytest.raises(ValueError):
        model.get_layer("cell1_branch1_bn")
    with pytest.raises(model_lib.SpecError, match="cell_impl"):
        model_lib.BuildOptions(cell_impl="fused")


CUSTOM_OBJECTS = {"LocalResponseNormalization": LocalResponseNormalization, "FeaturemapTap": FeaturemapTap}


@pytest.mark.parametrize(
    "make",
    [
        lambda: LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=0.5, beta=0.5, name="lrn"),
        lambda: FeaturemapTap("Cell2/Branch1", ("variance",), channels=(1, 4), name="tap"),
    ],
    ids=["lrn", "tap"],
)
def test_custom_layers_round_trip_through_their_config(make):
    layer = make()
    x = tf.random.stateless_normal((2, 3, 3, 5), seed=(1, 2))
    expected = layer(x, training=True) if isinstance(layer, FeaturemapTap) else layer(x)
    copy = keras.layers.deserialize(keras.layers.serialize(layer), custom_objects=CUSTOM_OBJECTS)
    assert type(copy) is type(layer) and copy is not layer
    assert copy.get_config() == layer.get_config()
    if isinstance(layer, LocalResponseNormalization):
        assert (copy.depth_radius, copy.bias, copy.alpha, copy.beta) == (2, 2.0, 0.5, 0.5)
        np.testing.assert_array_equal(copy(x).numpy(), expected.numpy())
        assert not np.allclose(expected.numpy(), x.numpy())  # the constants matter
    else:
        assert (copy.branch, copy.statistics, copy.channels) == ("Cell2/Branch1", ("l2", "variance"), (1, 4))
        np.testing.assert_array_equal(copy(x, training=True).numpy(), x.numpy())
        for a, b in zip(copy.accumulators(), layer.accumulators(), strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert copy.channel_sum.shape == (3,) and float(copy.images.numpy()) == 2.0
