"""The Keras builder: exact parameter counts, structure, names and forward passes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_arch import PAPER_PARAMS

from nac import arch, cost
from nac import model as model_lib
from nac.config import OriginalConfig
from nac.ops import FeaturemapTap, LocalResponseNormalization


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
    net, model = small_b
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
    model = model_lib.build_model(net, 8, model_lib.BuildOptions(branch_order="conv_relu_bn"))
    bn = model.get_layer("cell1_branch1_bn")
    relu = model.get_layer("cell1_branch1_relu")
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


def test_bad_build_options():
    from nac.errors import SpecError

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
