"""Tests of nac.net.stats: the featuremap statistic against NumPy and across two replicas.

The CPU is split into two logical devices by conftest.py, so MirroredStrategy runs here with
two replicas and no GPU.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nac.net import model as model_lib
from nac.net import stats as stats_lib
from nac.search import statsio
from nac.spec import arch, cost
from nac.spec.errors import StatsError

NOTATION = "8/1-1/6"  # 12 branches: Cell1 (1 channel each) and Cell3 (2 channels each)
SIZE = 8
BATCH = 8
SHARES = (3, 5)  # uneven per-replica shares of each global batch
# Branch dropout sits after each tap, but in training mode it still changes the *next*
# cells' inputs at random; exact comparisons need it off.
BOTH = model_lib.BuildOptions(statistics=("l2", "variance"), branch_dropout=0.0)
RTOL = 1e-6


def _batches(seed, n):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype("float32") for _ in range(n)]


def _numpy_sums(model, batches):
    """Ground truth: the accumulators, from the tapped featuremaps in training mode."""
    branches = model_lib.branch_outputs_model(model)
    sums = {}
    with stats_lib.collection_disabled(model):
        for x in batches:
            for branch, y in branches([x], training=True).items():
                y = np.asarray(y, np.float64)
                acc = sums.setdefault(
                    branch,
                    dict.fromkeys(("l2_sum", "images", "channel_sum", "channel_sq_sum", "positions"), 0.0),
                )
                acc["l2_sum"] += (y**2).mean(axis=(1, 2, 3)).sum()
                acc["images"] += y.shape[0]
                acc["channel_sum"] = acc["channel_sum"] + y.sum(axis=(0, 1, 2))
                acc["channel_sq_sum"] = acc["channel_sq_sum"] + (y**2).sum(axis=(0, 1, 2))
                acc["positions"] += y.shape[0] * y.shape[1] * y.shape[2]
    return sums


def _numpy_values(model, batches):
    """l2 and variance computed directly from the concatenated featuremaps."""
    branches = model_lib.branch_outputs_model(model)
    with stats_lib.collection_disabled(model):
        maps = [branches([x], training=True) for x in batches]
    out = {"l2": {}, "variance": {}}
    for branch in maps[0]:
        y = np.concatenate([np.asarray(m[branch], np.float64) for m in maps])
        out["l2"][branch] = float((y**2).mean(axis=(1, 2, 3)).mean())
        out["variance"][branch] = float(y.var(axis=(0, 1, 2)).mean())
    return out


def _assert_values_close(actual, expected, rtol=RTOL):
    """Relative tolerance for l2; for the variance, relative to the branch's mean square
    (the l2 statistic), since E[x**2] - E[x]**2 cancels float32 rounding of the sums."""
    assert actual.keys() == expected.keys()
    for metric in expected:
        assert list(actual[metric]) == list(expected[metric])
        for branch, value in expected[metric].items():
            scale = expected["l2"][branch] if metric == "variance" else abs(value)
            assert abs(actual[metric][branch] - value) <= rtol * scale, (metric, branch)


def _accumulator_values(model):
    return [np.array(v.numpy()) for tap in model_lib.taps(model).values() for v in tap.accumulators()]


@pytest.fixture(scope="module")
def network():
    return arch.network_from_notation(NOTATION)


@pytest.fixture(scope="module")
def bn_run(network):
    """A model with batch norm in training mode, run through the callback's hooks."""
    model = model_lib.build_model(network, SIZE, BOTH, name="bn_training")
    step = tf.function(lambda x: model(x, training=True))
    callback = stats_lib.FeaturemapStatistics(model, BATCH, statistics=("l2", "variance"), series_every=2)
    batches = _batches(1, 4)
    step(batches[0])  # counted before the window starts: on_train_begin must drop it
    callback.on_train_begin()
    for i, x in enumerate(batches):
        step(x)
        callback.on_train_batch_end(i, {})
    callback.on_train_end()
    return {
        "model": model,
        "step": step,
        "callback": callback,
        "batches": batches,
        "live": callback.values(),
        "totals": callback.totals(),
    }


@pytest.fixture(scope="module")
def frozen_pair(network):
    """The same weights in a single-device model and a two-replica mirrored model, with
    batch norm in inference mode (trainable=False)."""
    single = model_lib.build_model(network, SIZE, BOTH, name="single")
    rng = np.random.default_rng(0)
    for layer in single.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.normal(0, 0.3, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = model_lib.build_model(network, SIZE, BOTH, name="mirrored")
    mirrored.set_weights(single.get_weights())
    for m in (single, mirrored):
        for layer in m.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return single, mirrored, strategy


def test_mirrored_statistics_equal_replica_sums_and_single_device(frozen_pair):
    single, mirrored, strategy = frozen_pair
    batches = _batches(2, 3)
    cut = SHARES[0]

    @tf.function
    def mirrored_step(per_replica):
        strategy.run(lambda x: mirrored(x, training=True), args=(per_replica,))

    single_step = tf.function(lambda x: single(x, training=True))
    on_mirrored = stats_lib.FeaturemapStatistics(mirrored, BATCH, ("l2", "variance"))
    on_single = stats_lib.FeaturemapStatistics(single, BATCH, ("l2", "variance"))
    on_mirrored.on_train_begin()
    on_single.on_train_begin()
    for i, x in enumerate(batches):
        shares = (x[:cut], x[cut:])
        mirrored_step(
            strategy.experimental_distribute_values_from_function(
                lambda ctx, shares=shares: shares[ctx.replica_id_in_sync_group]
            )
        )
        single_step(x)
        on_mirrored.on_train_batch_end(i)
        on_single.on_train_batch_end(i)

    # Each replica counted its own share; a cross-replica read returns their sum.
    local = strategy.experimental_local_results(model_lib.taps(mirrored)["Cell1/Branch1"].images.value)
    assert [float(v.numpy()) for v in local] == [3.0 * SHARES[0], 3.0 * SHARES[1]]
    per_replica = [
        _numpy_sums(single, [x[:cut] for x in batches]),
        _numpy_sums(single, [x[cut:] for x in batches]),
    ]
    totals = on_mirrored.totals()
    assert list(totals) == [b.original for b in single.network.branch_ids()]
    for branch, sums in totals.items():
        for name, value in sums.items():
            expected = per_replica[0][branch][name] + per_replica[1][branch][name]
            np.testing.assert_allclose(value, expected, rtol=RTOL, err_msg=f"{branch} {name}")
        assert sums["images"] == 3 * BATCH

    on_mirrored.on_train_end()
    on_single.on_train_end()
    _assert_values_close(on_mirrored.final, on_single.final)
    _assert_values_close(on_mirrored.final, _numpy_values(single, batches))
    with strategy.scope():  # a read inside the scope is the same cross-replica read
        _assert_values_close(on_mirrored.values(), on_mirrored.final, rtol=0)

    on_mirrored.reset()  # every replica's copy goes back to zero
    for tap in model_lib.taps(mirrored).values():
        for variable in tap.accumulators():
            for copy in strategy.experimental_local_results(variable.value):
                assert not np.any(copy.numpy())


def test_l2_and_variance_match_numpy(bn_run):
    expected = _numpy_values(bn_run["model"], bn_run["batches"])
    _assert_values_close(bn_run["callback"].final, expected)
    assert bn_run["live"] == bn_run["callback"].final


def test_accumulators_match_numpy_sums(bn_run):
    expected = _numpy_sums(bn_run["model"], bn_run["batches"])
    for branch, sums in bn_run["totals"].items():
        for name, value in sums.items():
            np.testing.assert_allclose(value, expected[branch][name], rtol=RTOL)


def test_series_records_every_k_steps_on_the_original_scale(bn_run):
    callback = bn_run["callback"]
    live = callback.scaled(bn_run["live"])
    branches = [b.original for b in bn_run["model"].network.branch_ids()]
    for metric in ("l2", "variance"):
        series = callback.series_of(metric)
        assert series["steps"] == [2, 4]
        assert list(series["values"]) == branches
        for branch, values in series["values"].items():
            assert len(values) == 2
            assert values[-1] == live[metric][branch]
    assert callback.series == callback.series_of("l2")
    # The first point is the window's first two steps alone.
    first = _numpy_values(bn_run["model"], bn_run["batches"][:2])
    np.testing.assert_allclose(
        [v[0] for v in callback.series["values"].values()],
        [BATCH * first["l2"][b] for b in branches],
        rtol=RTOL,
    )


def test_write_files_on_the_original_scale(bn_run, tmp_path):
    callback = bn_run["callback"]
    callback.write(tmp_path, metric="l2")
    final = callback.final
    branches = [b.original for b in bn_run["model"].network.branch_ids()]
    stats_json = json.loads((tmp_path / "stats.json").read_text())
    assert list(stats_json) == branches
    assert stats_json == {b: BATCH * final["l2"][b] for b in branches}
    assert statsio.read_stats(tmp_path / "stats.json") == stats_json
    for metric in ("l2", "variance"):
        logged = statsio.read_stats(tmp_path / "res.log", metric)
        assert logged == {b: BATCH * final[metric][b] for b in branches}
    series = json.loads((tmp_path / stats_lib.SERIES_FILE).read_text())
    assert series["steps"] == [2, 4]
    assert series["batch_size"] == BATCH
    assert series["metric"] == "l2"
    assert series["values"] == callback.series["values"]
    assert series["by_statistic"]["variance"] == callback.series_of("variance")["values"]
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]

    callback.write(tmp_path / "v", metric="variance")
    assert json.loads((tmp_path / "v" / "stats.json").read_text()) == {
        b: BATCH * final["variance"][b] for b in branches
    }


def test_on_train_begin_resets_and_new_window_counts_only_new_steps(bn_run):
    model, step = bn_run["model"], bn_run["step"]
    callback = stats_lib.FeaturemapStatistics(model, BATCH, ("l2", "variance"), series_every=1)
    callback.on_train_begin()
    assert callback.final is None
    assert callback.series["steps"] == []
    assert not any(np.any(v) for v in _accumulator_values(model))
    with pytest.raises(StatsError, match="saw no training images"):
        callback.values()
    batches = _batches(3, 2)
    for i, x in enumerate(batches):
        step(x)
        callback.on_train_batch_end(i)
    callback.on_train_end()
    assert callback.series["steps"] == [1, 2]
    _assert_values_close(callback.final, _numpy_values(model, batches))
    with pytest.raises(RuntimeError, match="on_train_end"):
        stats_lib.FeaturemapStatistics(model, BATCH).write("unused")


def test_accumulators_are_not_trainable(network, bn_run, frozen_pair):
    expected = cost.count_params(network, SIZE)
    for model in (bn_run["model"], *frozen_pair[:2]):
        accumulators = [v for tap in model_lib.taps(model).values() for v in tap.accumulators()]
        assert len(accumulators) == 5 * len(network.branch_ids())
        assert not any(v.trainable for v in accumulators)
        trainable = {id(v) for v in model.trainable_weights}
        non_trainable = {id(v) for v in model.non_trainable_weights}
        assert not trainable & {id(v) for v in accumulators}
        assert {id(v) for v in accumulators} <= non_trainable
    model = bn_run["model"]
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == expected


def test_collection_disabled_leaves_accumulators_unchanged(bn_run):
    model, step_on = bn_run["model"], bn_run["step"]
    x = _batches(4, 1)[0]
    step_on(x)  # make the accumulators non-zero
    taps = list(model_lib.taps(model).values())
    taps[0].collect = False  # a flag that was already off stays off afterwards
    before = _accumulator_values(model)
    with stats_lib.collection_disabled(model):
        assert not any(tap.collect for tap in taps)
        step_off = tf.function(lambda x: model(x, training=True))
        step_off(x)  # traced inside: does not collect
        model(x, training=True)  # eager: reads the flag now
    assert [tap.collect for tap in taps] == [False] + [True] * (len(taps) - 1)
    taps[0].collect = True
    step_off(x)  # still the function traced with collect = False
    for a, b in zip(before, _accumulator_values(model), strict=True):
        np.testing.assert_array_equal(a, b)
    step_on(x)  # traced with collection on: counts again
    images = [float(tap.images.numpy()) for tap in taps]
    assert images[0] == before[1] + BATCH


def test_invalid_arguments_are_clear_errors(network, bn_run):
    l2_only = model_lib.build_model(network, SIZE, name="l2_only")
    with pytest.raises(StatsError, match="accumulates only"):
        stats_lib.FeaturemapStatistics(l2_only, BATCH, ("l2", "variance"))
    model = bn_run["model"]
    with pytest.raises(StatsError, match="statistics"):
        stats_lib.FeaturemapStatistics(model, BATCH, ("l2", "mean"))
    with pytest.raises(StatsError, match="statistics"):
        stats_lib.FeaturemapStatistics(model, BATCH, ())
    with pytest.raises(StatsError, match="global_batch_size"):
        stats_lib.FeaturemapStatistics(model, 0)
    with pytest.raises(StatsError, match="series_every"):
        stats_lib.FeaturemapStatistics(model, BATCH, series_every=-1)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(StatsError, match="no featuremap taps"):
        stats_lib.FeaturemapStatistics(plain, BATCH)
    callback = stats_lib.FeaturemapStatistics(l2_only, BATCH, "l2")
    assert callback.statistics == ("l2",)
    with pytest.raises(StatsError, match="collects"):
        callback.series_of("variance")
    with pytest.raises(StatsError, match="collects"):
        callback.write("unused", metric="variance", values={"l2": {}})


def test_accumulators_are_not_autocast_under_mixed_precision(network):
    """Under a mixed policy Keras would read float variables as float16 inside `call`,
    so `assign_add` (= assign(read + delta)) would round the running sums."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = model_lib.build_model(network, SIZE, BOTH, name="mixed")
    finally:
        keras.config.set_dtype_policy(previous)
    step = tf.function(lambda x: model(x, training=True))
    callback = stats_lib.FeaturemapStatistics(model, BATCH, ("l2", "variance"))
    x = _batches(5, 1)[0]
    callback.on_train_begin()
    step(x)
    once = callback.totals()
    step(x)
    for branch, sums in callback.totals().items():
        for name, value in sums.items():
            np.testing.assert_array_equal(value, 2 * once[branch][name], err_msg=f"{branch} {name}")
