"""Parameter-matched random baselines (`nac.spec.matched`, `--match_params`)."""

import json

import pytest
from helpers import run_config

from nac.run import networks
from nac.spec import arch as arch_lib
from nac.spec import cost, matched, random_arch
from nac.spec.errors import ConfigError

REF = arch_lib.network_from_notation("16/3-2/6")


def draw(seed):
    return random_arch.random_like(REF, seed)


def test_matched_draw_is_within_the_fraction_and_seeded():
    target = cost.count_params(REF)
    net, draws = matched.draw_matched(draw, 11, target, 0.02)
    assert abs(cost.count_params(net) - target) <= 0.02 * target
    assert draws >= 1
    assert matched.draw_matched(draw, 11, target, 0.02) == (net, draws)
    # the draw it returns is the draws-th of the seeded sequence
    assert net == draw(matched.draw_seed(11, draws - 1))
    # no earlier draw was within the fraction
    for k in range(draws - 1):
        assert abs(cost.count_params(draw(matched.draw_seed(11, k))) - target) > 0.02 * target


def test_a_loose_fraction_keeps_the_unmatched_first_draw():
    target = cost.count_params(REF)
    net, draws = matched.draw_matched(draw, 4, target, 0.99)
    assert draws == 1 and net == draw(4)


def test_an_unreachable_fraction_says_how_close_the_best_draw_came():
    with pytest.raises(
        ConfigError, match=r"--match_params=1e-09: no draw of random_0 .* in 20 draws; the closest had"
    ):
        matched.draw_matched(draw, 1, cost.count_params(REF), 1e-9, "random_0", max_draws=20)


def test_run_config_matches_and_validates(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(REF.arch_json()))
    common = dict(run_dir="x", mode="random", arch=str(arch), dataset="synthetic", num_random=2, seed=3)
    config = run_config(**common, match_params=0.03)
    target = cost.count_params(config.initial_network())
    rows = networks.matched_random_networks(config)
    assert [s for s, _, _ in rows] == [s for s, _ in networks.random_networks(run_config(**common))]
    for _, net, draws in rows:
        assert abs(cost.count_params(net) - target) <= 0.03 * target and draws >= 1
    assert networks.random_networks(config) == [(s, n) for s, n, _ in rows]
    with pytest.raises(ConfigError, match="--match_params"):
        run_config(run_dir="x", match_params=0.05)  # construct mode
    with pytest.raises(ConfigError, match="fraction in"):
        run_config(**common, match_params=1.5)
