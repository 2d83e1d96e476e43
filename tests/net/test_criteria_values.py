"""Every branch criterion against a hand computation on a one-cell network.

`l2`, `variance` and `taylor` from the taps, `l1_kernel` and `snip` from the weights, against
NumPy / GradientTape calculations on the featuremaps and kernels; `taylor` in both cell
implementations and across two replicas (MirroredStrategy on the CPU's two logical devices);
`snip`'s per-weight normalisation shown to rank branches rather than kernel sizes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nac.net import criteria as net_criteria
from nac.net import model as model_lib
from nac.net import stats as stats_lib
from nac.search import criteria
from nac.spec import arch

NOTATION = "12/1/6"  # one cell of 6 branches (1x1, 3x3, 3x3sep, 5x5, 5x5sep, 7x7sep), 2 channels each
SIZE = 8
BATCH = 4
RECORDED = criteria.RECORDED_NAMES


def _options(cell_impl):
    return model_lib.BuildOptions(statistics=RECORDED, branch_dropout=0.0, cell_impl=cell_impl)


def _no_dropout(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def _data(seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 10, batch).astype("int32")
    return x, y


def _loss(model, x, y, batch):
    logits = tf.cast(model(x, training=True), tf.float32)
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)) / batch


def _hand_recorded(model, x, y):
    """l2, variance and taylor from the cell's post-ReLU tensor and the per-image loss gradient."""
    cut = model.get_layer("head_layer0_pool").input  # the cell's output (no dropout)
    head = [layer for layer in model.layers if layer.name.startswith("head_")]  # a chain
    with model_lib.collection_disabled(model):
        a = keras.Model(model.input, cut)(x, training=True)
    with tf.GradientTape() as tape:
        tape.watch(a)
        logits = a
        for layer in head:
            logits = layer(logits, training=True)
        logits = tf.cast(logits, tf.float32)
        per_image_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        total = tf.reduce_sum(per_image_losses)
    g = tape.gradient(total, a).numpy().astype(np.float64)  # dl_i/da_i: images are independent
    a = a.numpy().astype(np.float64)
    width = model.network.body[0].branch_width
    out = {name: {} for name in RECORDED}
    for j, branch in enumerate(model_lib.taps(model)):
        fa, fg = a[..., j * width : (j + 1) * width], g[..., j * width : (j + 1) * width]
        out["l2"][branch] = float((fa**2).mean(axis=(1, 2, 3)).mean())
        out["variance"][branch] = float(fa.var(axis=(0, 1, 2)).mean())
        out["taylor"][branch] = float(np.abs((fa * fg).sum(axis=(1, 2, 3))).mean())
    return out


def _tap_values(model, x, y):
    callback = stats_lib.FeaturemapStatistics(model, BATCH, RECORDED)
    callback.on_train_begin()
    with tf.GradientTape() as tape:
        loss = _loss(model, x, y, BATCH)
    tape.gradient(loss, model.trainable_variables)  # the backward pass accumulates taylor
    return callback.values()


def _assert_close(actual, expected, rtol=1e-5):
    for name in expected:
        assert list(actual[name]) == list(expected[name])
        for branch, value in expected[name].items():
            assert actual[name][branch] == pytest.approx(value, rel=rtol, abs=1e-9), (name, branch)


@pytest.mark.parametrize("cell_impl", ["per_cell", "per_branch"])
def test_recorded_criteria_match_hand_computation(cell_impl):
    keras.utils.set_random_seed(3)
    model = _no_dropout(
        model_lib.build_model(arch.network_from_notation(NOTATION), SIZE, _options(cell_impl))
    )
    x, y = _data()
    expected = _hand_recorded(model, x, y)
    actual = _tap_values(model, x, y)
    _assert_close(actual, expected)
    # taylor differs between branches: the gradient reaches the taps
    assert len({round(v, 9) for v in actual["taylor"].values()}) > 1


def test_cell_shared_recording_equals_each_tap_alone():
    """The per-cell model's first tap computes variance and taylor for its cell; the same model
    with the links cut (each tap slices and reduces its own channels) records the same values."""
    network = arch.network_from_notation(NOTATION)
    keras.utils.set_random_seed(5)
    shared = _no_dropout(model_lib.build_model(network, SIZE, _options("per_cell"), name="shared"))
    taps = [layer for layer in shared.layers if isinstance(layer, model_lib.FeaturemapTap)]
    assert taps[0].cell_members() == tuple(taps) and all(t.computed_by() is taps[0] for t in taps[1:])
    # the links are not Keras attributes: no tap holds another as a sublayer or its weights
    assert all(len(t.weights) == len(taps[-1].weights) for t in taps)
    alone = _no_dropout(model_lib.build_model(network, SIZE, _options("per_cell"), name="alone"))
    for layer in alone.layers:
        if isinstance(layer, model_lib.FeaturemapTap):
            layer.compute_alone()  # each tap slices and reduces its own channels
    assert not any(t.cell_members() or t.computed_by() for t in model_lib.taps(alone).values())
    alone.set_weights(shared.get_weights())
    assert len(alone.weights) == len(shared.weights)
    x, y = _data(2)
    _assert_close(_tap_values(alone, x, y), _tap_values(shared, x, y))


def test_linked_taps_save_and_load_their_own_accumulators(tmp_path):
    """A .keras file of a per-cell model holds every tap's accumulators under its own path: the
    loaded model (taps unlinked, from their config) gets each tap's values back."""
    keras.utils.set_random_seed(6)
    model = _no_dropout(
        model_lib.build_model(arch.network_from_notation(NOTATION), SIZE, _options("per_cell"))
    )
    x, y = _data(3)
    recorded = _tap_values(model, x, y)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    values = stats_lib.FeaturemapStatistics(loaded, BATCH, RECORDED).values()
    _assert_close(values, recorded)


def test_taylor_two_replicas_equal_single_device():
    network = arch.network_from_notation(NOTATION)
    keras.utils.set_random_seed(4)
    single = _no_dropout(model_lib.build_model(network, SIZE, _options("per_cell"), name="single"))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = _no_dropout(model_lib.build_model(network, SIZE, _options("per_cell"), name="mirrored"))
    mirrored.set_weights(single.get_weights())
    for m in (single, mirrored):  # batch norm in inference mode: per-image featuremaps
        for layer in m.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    x, y = _data(1)
    on_single = stats_lib.FeaturemapStatistics(single, BATCH, RECORDED)
    on_mirrored = stats_lib.FeaturemapStatistics(mirrored, BATCH, RECORDED)
    on_single.on_train_begin()
    on_mirrored.on_train_begin()

    def replica(xs, ys):
        with tf.GradientTape() as tape:
            loss = _loss(mirrored, xs, ys, BATCH)  # divided by the global batch, as in training
        return tape.gradient(loss, mirrored.trainable_variables)

    @tf.function
    def mirrored_step(xs, ys):
        strategy.run(replica, args=(xs, ys))

    shares = strategy.experimental_distribute_values_from_function(
        lambda ctx: (x[:1], y[:1]) if ctx.replica_id_in_sync_group == 0 else (x[1:], y[1:])
    )
    mirrored_step(*shares)
    with tf.GradientTape() as tape:
        loss = _loss(single, x, y, BATCH)
    tape.gradient(loss, single.trainable_variables)
    expected = on_single.values()
    _assert_close(on_mirrored.values(), expected)
    assert all(v > 0 for v in expected["taylor"].values())


def test_l1_kernel_counts_both_kernels_of_a_separable_branch():
    keras.utils.set_random_seed(5)
    model = model_lib.build_model(arch.network_from_notation(NOTATION), SIZE, _options("per_cell"))
    values = net_criteria.l1_kernel(model)
    conv = model.get_layer("cell1_branch1_conv")  # 1x1
    assert values["Cell1/Branch1"] == pytest.approx(np.abs(conv.kernel.numpy()).mean(), rel=1e-6)
    sep = model.get_layer("cell1_branch3_conv")  # 3x3sep: depthwise + pointwise
    d, p = np.abs(sep.depthwise_kernel.numpy()), np.abs(sep.pointwise_kernel.numpy())
    assert d.size == 3 * 3 * 12 and p.size == 12 * 2
    assert values["Cell1/Branch3"] == pytest.approx((d.sum() + p.sum()) / (d.size + p.size), rel=1e-6)


def _hand_snip(model, x, y):
    """mean |w * dL/dw| over the branch's kernel weights / mean |w| (dropout off)."""
    with model_lib.collection_disabled(model), tf.GradientTape() as tape:
        loss = _loss(model, x, y, x.shape[0])
    out = {}
    for branch in model_lib.taps(model):
        layer = model.get_layer(arch.BranchId.parse(branch).keras + "_conv")
        kernels = [w for w in layer.trainable_weights if "kernel" in w.name]
        out[branch] = kernels
    flat = [k for ks in out.values() for k in ks]
    grads = dict(zip([id(k) for k in flat], tape.gradient(loss, [k.value for k in flat]), strict=True))
    result = {}
    for branch, kernels in out.items():
        w = np.concatenate([np.abs(k.numpy()).ravel() for k in kernels]).astype(np.float64)
        g = np.concatenate([np.abs(grads[id(k)].numpy()).ravel() for k in kernels]).astype(np.float64)
        result[branch] = float((w * g).mean() / w.mean())
    return result


def test_snip_matches_hand_computation_and_leaves_the_model_alone():
    keras.utils.set_random_seed(6)
    model = model_lib.build_model(arch.network_from_notation(NOTATION), SIZE, _options("per_branch"))
    before = [np.array(w) for w in model.get_weights()]
    x, y = _data(2, 8)
    values = net_criteria.snip(model, [(x, y)])
    for a, b in zip(before, model.get_weights(), strict=True):  # BN statistics, accumulators
        np.testing.assert_array_equal(a, b)
    expected = _hand_snip(_no_dropout(model), x, y)
    for branch, value in expected.items():
        assert values[branch] == pytest.approx(value, rel=1e-4), branch


def _rank_correlation(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_snip_ranks_branches_not_kernel_sizes():
    """At initialisation the sum of |w * dL/dw| over a branch's kernels grows with their
    number of weights and the plain per-weight mean shrinks with it (the Glorot scale ~ 1 / K):
    both rank kernel sizes (rank correlation with the weight count near +1 / -1 over seeds).
    snip's normalisation (per weight, then by the mean |w|) leaves no such trend."""
    network = arch.network_from_notation("24/1/6")
    x, y = _data(3, 16)
    correlations = {"sum": [], "mean": [], "snip": []}
    for seed in range(4):
        keras.utils.set_random_seed(seed)
        model = model_lib.build_model(network, SIZE, _options("per_cell"))
        snip = net_criteria.snip(model, [(x, y)])
        counts, forms = [], {"sum": [], "mean": [], "snip": []}
        for branch, kernels in net_criteria.branch_kernels(model).items():
            count = sum(int(np.prod(k.shape)) for k in kernels)
            per_weight = snip[branch] * sum(float(np.abs(k.numpy()).sum()) for k in kernels) / count
            counts.append(count)
            forms["sum"].append(per_weight * count)
            forms["mean"].append(per_weight)  # mean |w * g|
            forms["snip"].append(snip[branch])
        for name, values in forms.items():
            correlations[name].append(_rank_correlation(values, counts))
    mean = {name: float(np.mean(c)) for name, c in correlations.items()}
    assert mean["sum"] > 0.7 and mean["mean"] < -0.7, mean
    assert abs(mean["snip"]) < 0.4, mean
