"""Tests of nac.spec.random_arch: random baselines matched to a network or drawn from a config."""

import json
import pathlib

import pytest

from nac.run.networks import random_networks
from nac.run.original import original_config
from nac.spec import arch as arch_lib
from nac.spec import random_arch
from nac.spec.config import OriginalConfig
from nac.spec.errors import ConfigError, SpecError

CONFIGS = pathlib.Path(__file__).parents[1] / "fixtures" / "original_configs"
ENVELOPE_OPS = {op for _, op in arch_lib.STANDARD_CELL}
ORIGINAL_POOL = ("3x3", "3x3sep", "5x5", "5x5sep", "7x7", "7x7sep")


def constructed_a():
    """Constructed A: the arch the original's long run trained (15-6-4-4, 60/17/15/15)."""
    return OriginalConfig.load(CONFIGS / "longruns" / "network.cons-exp-3-bc-longrun.json").initial_network()


def topline_b():
    """Constructed B (skip connections on every layer)."""
    return OriginalConfig.load(
        CONFIGS / "longruns" / "network.generated-topline-cifar10.json"
    ).initial_network()


def ops_of(network):
    return {op for _, cell in network.cells() for _, op in cell.branches}


def assert_keys_in_order(network):
    """Every layer's keys are Branch0, Branch1, ... without gaps."""
    for k, cell in network.cells():
        numbers = sorted(arch_lib.branch_number(key) for key, _ in cell.branches)
        assert numbers == list(range(len(numbers))), (k, cell.branches)


def widener_positions(network):
    return [k for k, entry in enumerate(network.body) if isinstance(entry, arch_lib.Widener)]


@pytest.mark.parametrize("make", [constructed_a, topline_b])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_random_like_matches_the_network(make, seed):
    network = make()
    rnd = random_arch.random_like(network, seed=seed)
    assert rnd.layers_per_stage() == network.layers_per_stage()
    assert rnd.branches_per_stage() == network.branches_per_stage()
    assert widener_positions(rnd) == widener_positions(network)
    assert all(cell.num_branches >= 1 for _, cell in rnd.cells())
    assert ops_of(rnd) <= ENVELOPE_OPS  # default pool: the EnvelopeCell's ops
    assert_keys_in_order(rnd)
    # Each layer keeps its outputs and skip inputs; stem, head and input channels are kept.
    assert [(c.outputs, c.inputs) for _, c in rnd.cells()] == [
        (c.outputs, c.inputs) for _, c in network.cells()
    ]
    assert (rnd.stem, rnd.head, rnd.input_channels) == (network.stem, network.head, network.input_channels)


def test_random_like_has_the_shape_of_the_originals_random_baselines():
    # The original's random long runs (rnd1..rnd10) match Constructed A in layers and branches.
    network = constructed_a()
    rnd = random_arch.random_like(network, seed=3, pool=ORIGINAL_POOL)
    for i in (1, 2, 10):
        original = OriginalConfig.load(
            CONFIGS / "longruns" / f"network.cons-exp-3-rnd{i}-longrun.json"
        ).initial_network()
        assert original.layers_per_stage() == rnd.layers_per_stage()
        assert original.branches_per_stage() == rnd.branches_per_stage()
        assert ops_of(original) <= set(ORIGINAL_POOL)
        assert_keys_in_order(original)
    assert ops_of(rnd) <= set(ORIGINAL_POOL)


def test_random_like_is_reproducible_and_seeds_differ():
    network = constructed_a()
    first = random_arch.random_like(network, seed=7)
    assert random_arch.random_like(network, seed=7) == first
    assert random_arch.random_like(network, seed=7).fingerprint() == first.fingerprint()
    draws = [random_arch.random_like(network, seed=s).fingerprint() for s in range(6)]
    assert len(set(draws)) == len(draws)
    assert first != network


def test_random_like_uses_the_whole_pool_and_may_repeat_ops():
    rnd = random_arch.random_like(constructed_a(), seed=0)
    assert ops_of(rnd) == ENVELOPE_OPS  # 107 draws from 6 ops reach every op
    assert any(len({op for _, op in c.branches}) < c.num_branches for _, c in rnd.cells())
    only = random_arch.random_like(constructed_a(), seed=0, pool=["5x5sep"])
    assert ops_of(only) == {"5x5sep"}
    assert only.branches_per_stage() == [60, 17, 15, 15]


def test_random_like_one_branch_per_layer_when_blocks_equal_layers():
    network = arch_lib.network_from_notation("128/3-2/6")
    body = [
        arch_lib.Cell((("Branch1", "1x1"),), e.outputs) if isinstance(e, arch_lib.Cell) else e
        for e in network.body
    ]
    network = arch_lib.Network(tuple(body), network.stem, network.head)
    rnd = random_arch.random_like(network, seed=1)
    assert [[key for key, _ in c.branches] for _, c in rnd.cells()] == [["Branch0"]] * 5


@pytest.mark.parametrize(
    "pool, match", [([], r"random op pool: got \[\]"), (["3x3", "2x2"], r"random op pool\[1\]")]
)
def test_random_like_bad_pool(pool, match):
    with pytest.raises(SpecError, match=match):
        random_arch.random_like(constructed_a(), seed=0, pool=pool)


def test_random_like_layer_too_narrow():
    body = (
        arch_lib.Cell((("Branch1", "1x1"),), 1),
        arch_lib.Cell(arch_lib.STANDARD_CELL, 128),
    )
    network = arch_lib.Network(body)
    with pytest.raises(SpecError, match="outputs is 1; use a wider network"):
        for seed in range(10):  # the narrow layer gets a second branch with probability 31/32
            random_arch.random_like(network, seed=seed)


# -- the original's random configs --------------------------------------------------------


def rnd_config():
    return OriginalConfig.load(CONFIGS / "construction" / "network.cons-exp-3-rnd.json")


@pytest.mark.parametrize("seed", [0, 1, 99])
def test_config_random_network(seed):
    config = rnd_config()
    network = config.initial_network(seed=seed)
    r = config.random
    assert network.layers_per_stage() == list(r.layersperstage) == [15, 6, 4, 4]
    assert network.branches_per_stage() == list(r.numblocksperstage) == [60, 17, 15, 15]
    assert all(cell.num_branches >= 1 for _, cell in network.cells())
    assert ops_of(network) <= set(r.blocks) == set(ORIGINAL_POOL)  # blocks honoured: 7x7, no 1x1
    assert_keys_in_order(network)
    assert [c.outputs for _, c in network.cells()] == [128] * 15 + [256] * 6 + [512] * 4 + [1024] * 4
    assert {c.inputs for _, c in network.cells()} == {None}


def test_config_random_network_is_reproducible_and_seeds_differ():
    config = rnd_config()
    assert config.initial_network(seed=4) == config.initial_network(seed=4)
    draws = {config.initial_network(seed=s).fingerprint() for s in range(5)}
    assert len(draws) == 5


def test_random_body_skip_limits_and_errors():
    body = random_arch.random_body(
        [4, 1], [6, 3], ["3x3"], 64, seed=0, parameter_limits=[True, False], skip=True
    )
    network = arch_lib.Network(body, arch_lib.Stem.conv1x1(64))
    assert network.layers_per_stage() == [4, 1] and network.branches_per_stage() == [6, 3]
    assert {c.inputs for _, c in network.cells()} == {"all"}
    # W = 64, N = 4: int(64 / 2 * (sqrt(3) - 1)) = 23 for the first three layers
    assert [c.outputs for _, c in network.cells()] == [23, 23, 23, 64, 128]
    assert ops_of(network) == {"3x3"}
    assert_keys_in_order(network)
    assert random_arch.random_body([4, 1], [6, 3], ["3x3", "5x5"], 64, seed=2) == random_arch.random_body(
        [4, 1], [6, 3], ["3x3", "5x5"], 64, seed=2
    )
    with pytest.raises(SpecError, match="every layer needs at least one block"):
        random_arch.random_body([3], [2], ["3x3"], 64, seed=0)
    with pytest.raises(SpecError, match="random op pool"):
        random_arch.random_body([1], [1], [], 64, seed=0)


# -- random runs of the driver (RunConfig, in process: no TensorFlow) ---------------------


def test_random_pool_flag_draws_matched_networks_from_the_pool():
    from nac.run import runconfig

    arch_file = CONFIGS / "longruns" / "network.generated-topline-cifar10.json"
    flags = {"run_dir": "r", "mode": "random", "arch": str(arch_file), "num_random": 3, "seed": 1}
    config = runconfig.from_flags({**flags, "random_pool": ["3x3", "5x5sep"]}, {"random_pool"})
    assert config.search.random_pool == ("3x3", "5x5sep")
    nets = random_networks(config)
    assert len(nets) == 3 and len({seed for seed, _ in nets}) == 3
    assert len({net.fingerprint() for _, net in nets}) == 3
    for _, net in nets:  # the --arch network's layers and branches per stage, ops from the pool
        assert net.layers_per_stage() == [7, 7, 2] and net.branches_per_stage() == [18, 18, 12]
        assert ops_of(net) == {"3x3", "5x5sep"}
    assert original_config(config)["random"] == {
        "stages": 3,
        "layersperstage": [7, 7, 2],
        "numblocksperstage": [18, 18, 12],
        "parameterlimits": [False, False, False],
        "blocks": ["3x3", "5x5sep"],
        "skip": True,
    }
    again = runconfig.from_flags({**flags, "random_pool": ["3x3", "5x5sep"]}, {"random_pool"})
    assert [(s, n.fingerprint()) for s, n in random_networks(again)] == [
        (s, n.fingerprint()) for s, n in nets
    ]
    with pytest.raises(ConfigError, match="--random_pool"):
        runconfig.from_flags({**flags, "random_pool": ["3x3", "2x2"]}, {"random_pool"})


def test_random_config_runs_the_originals_generator():
    from nac.run import runconfig

    path = str(CONFIGS / "construction" / "network.cons-exp-3-rnd.json")
    config = runconfig.from_flags({"run_dir": "r", "config": path}, set())
    assert config.mode == "random" and config.search.num_random == 10  # the config's iterations
    nets = random_networks(config)
    assert len({net.fingerprint() for _, net in nets}) == 10
    for _, net in nets:
        assert net.layers_per_stage() == [15, 6, 4, 4] and net.branches_per_stage() == [60, 17, 15, 15]
        assert ops_of(net) <= set(ORIGINAL_POOL)
    assert set().union(*(ops_of(net) for _, net in nets)) == set(ORIGINAL_POOL)
    # run_config.json keeps the config's random section as the original's dict and reads it back
    saved = json.loads(json.dumps(config.to_flat()))
    assert saved["config_random"]["numblocksperstage"] == [60, 17, 15, 15]
    again = runconfig.RunConfig.from_flat(saved)
    assert again == config and [n.fingerprint() for _, n in random_networks(again)] == [
        n.fingerprint() for _, n in nets
    ]
    # --random_pool replaces the config's blocks; --num_random its count.
    pooled = runconfig.from_flags(
        {"run_dir": "r", "config": path, "random_pool": ["3x3"], "num_random": 2},
        {"random_pool", "num_random"},
    )
    assert [s for s, _ in random_networks(pooled)] == [s for s, _ in nets[:2]]
    assert all(ops_of(net) == {"3x3"} for _, net in random_networks(pooled))
