"""Featuremap stability: Kendall's tau-b and the first step a ranking stays stable from."""

import itertools
import math

import numpy as np
import pytest

from nac.search import stability


def test_stable_from_needs_the_threshold_to_hold_to_the_end():
    assert stability.stable_from([1, 2, 3], [0.95, 0.5, 0.95], 0.9) == 3
    assert stability.stable_from([1, 2, 3], [0.95, 0.95, 0.5], 0.9) is None
    assert stability.stable_from([1, 2], [float("nan"), 1.0], 0.9) == 2


# -- Kendall tau-b ------------------------------------------------------------------------


def tau_b_direct(x, y):
    concordant = discordant = untied_x = untied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        untied_x += dx != 0
        untied_y += dy != 0
        if dx * dy > 0:
            concordant += 1
        elif dx * dy < 0:
            discordant += 1
    return (concordant - discordant) / math.sqrt(untied_x * untied_y)


def test_kendall_tau_b_known_values():
    assert stability.kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert stability.kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert stability.kendall_tau_b([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == pytest.approx(0.8)
    # Ties: x = (1, 1, 2), y = (1, 2, 3): C = 2, D = 0, untied x pairs 2, y pairs 3.
    assert stability.kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(stability.kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(stability.kendall_tau_b([1], [1]))


def test_kendall_tau_b_matches_a_direct_computation_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 16))
        x = rng.integers(0, 4, n).tolist()
        y = rng.integers(0, 4, n).tolist()
        if len(set(x)) < 2 or len(set(y)) < 2:
            continue
        assert stability.kendall_tau_b(x, y) == pytest.approx(tau_b_direct(x, y), abs=1e-12)
