"""Student t quantiles, the paired t test's power and the smallest detectable difference."""

import math

import pytest

from nac.reporting import power


@pytest.mark.parametrize(
    "p, df, table",
    [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 30, 2.042), (0.8, 3, 0.978)],
)
def test_t_quantiles_match_the_table(p, df, table):
    assert power.t_quantile(p, df) == pytest.approx(table, abs=2e-3)
    assert power.t_quantile(1 - p, df) == pytest.approx(-table, abs=2e-3)


def test_t_cdf_is_a_distribution_function():
    assert power.t_cdf(0.0, 5) == pytest.approx(0.5)
    assert power.t_cdf(-2.0, 5) + power.t_cdf(2.0, 5) == pytest.approx(1.0)
    assert power.t_cdf(50.0, 5) == pytest.approx(1.0, abs=1e-5)


def test_power_is_the_level_without_a_difference_and_grows_with_it():
    assert power.paired_power(0.0, 1.0, 5) == pytest.approx(0.05, abs=0.005)
    assert power.paired_power(0.5, 1.0, 5) < power.paired_power(1.0, 1.0, 5) < power.paired_power(2.0, 1.0, 5)


def test_smallest_difference_matches_the_normal_approximation_for_many_pairs():
    # With many pairs the paired t test is the z test: (1.960 + 0.842) * sd / sqrt(n).
    assert power.min_detectable_difference(1.0, 200) == pytest.approx(2.802 / math.sqrt(200), rel=0.03)
    # With few, the t quantiles widen it: about (3.18 + 0.98) * 0.9 / 2 for 4 pairs at sd 0.9.
    assert 1.7 < power.min_detectable_difference(0.9, 4) < 2.1


def test_pairs_needed_detects_the_difference_it_was_asked_for():
    n = power.pairs_needed(0.5, 0.9)
    assert power.paired_power(0.5, 0.9, n) >= 0.8 > power.paired_power(0.5, 0.9, n - 1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n=1"):
        power.paired_power(1.0, 1.0, 1)
    with pytest.raises(ValueError, match="p=1"):
        power.t_quantile(1, 3)


def test_t_interval_of_the_mean():
    lo, hi = power.t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0)
    assert hi - lo == pytest.approx(2 * 4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert power.t_interval([1.0]) is None
