"""Random statistics through the restructure rule (`nac.reporting.chance`)."""

import random

import pytest

from nac.reporting import chance
from nac.search import restructure as restructure_lib
from nac.search.restructure import Policy
from nac.spec import arch as arch_lib

NET = arch_lib.network_from_notation("8/2-1/6")
POLICY = Policy(construction=(True, True), maxlayersperstage=(5, 5), envelopecell=arch_lib.envelope_cell(6))


def test_random_widths_are_seeded_and_follow_the_rule():
    a = chance.random_final_widths(NET, POLICY, 2, 3)
    assert a == chance.random_final_widths(NET, POLICY, 2, 3)
    # two steps: each stage gains two EnvelopeCells and loses 4 + 4 (stage 0: floor(14 / 3)) / 2 + 3 (stage 1)
    assert [len(s) for s in a] == [4, 3]
    assert sum(a[0]) == 12 + 12 - 4 - 4 and sum(a[1]) == 6 + 12 - 2 - 3
    assert all(w >= 1 for s in a for w in s)
    widths = {tuple(map(tuple, chance.random_final_widths(NET, POLICY, 2, d))) for d in range(20)}
    assert len(widths) > 1


def test_chance_overlap_of_random_pruning_is_the_hypergeometric_mean():
    rng = random.Random(0)
    draws = []
    for _ in range(400):
        _, report = restructure_lib.restructure_with_report(NET, chance.random_values(NET, rng), POLICY)
        draws.append([{b.original for b in s.pruned} for s in report.stages])
    overlap = chance._mean_pairwise_overlap(draws)
    # 4 of 12 and 2 of 6 pruned, the layer rule never binds here: k * k / n
    assert overlap[0] == pytest.approx(4 * 4 / 12, abs=0.1)
    assert overlap[1] == pytest.approx(2 * 2 / 6, abs=0.1)
    assert chance._mean_pairwise_overlap([draws[0], draws[0]]) == [4, 2]
