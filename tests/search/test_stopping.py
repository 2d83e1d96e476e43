"""The stability stop rule on hand-written statistic series (no TensorFlow)."""

import math

import pytest

from nac.search import stopping
from nac.search.stopping import StabilityStop, StopRule

STAGES = [
    ["Cell1/Branch1", "Cell1/Branch2", "Cell2/Branch1", "Cell2/Branch2"],
    ["Cell4/Branch1", "Cell4/Branch2"],
]


def series(rows):
    """{branch: [values]} from one row of 6 values per record (STAGES' order)."""
    ids = [b for ids in STAGES for b in ids]
    return {b: [row[i] for row in rows] for i, b in enumerate(ids)}


def test_ranking_tau_weights_stages_by_branch_count():
    previous = dict(zip([b for ids in STAGES for b in ids], [1, 2, 3, 4, 1, 2]))
    same = dict(previous)
    assert stopping.ranking_tau(STAGES, previous, same) == 1.0
    # Stage 0 unchanged (tau 1, 4 branches), stage 1 reversed (tau -1, 2 branches).
    flipped = {**previous, "Cell4/Branch1": 2, "Cell4/Branch2": 1}
    assert stopping.ranking_tau(STAGES, previous, flipped) == pytest.approx((4 * 1 - 2 * 1) / 6)
    # A stage of ties drops out; a single-branch stage never counts.
    tied = {**previous, "Cell4/Branch1": 5, "Cell4/Branch2": 5}
    assert stopping.ranking_tau(STAGES, previous, tied) == 1.0
    assert math.isnan(stopping.ranking_tau([["Cell1/Branch1"]], previous, same))


def test_stops_after_patience_stable_records_and_not_before_min_steps():
    # Ranking moves until step 20, then stays: taus None, <1, <1, 1, 1, 1, ...
    rows = [
        [1, 2, 3, 4, 1, 2],
        [4, 3, 2, 1, 2, 1],
        [1, 2, 3, 4, 1, 2],
        [1.1, 2.1, 3.1, 4.1, 1, 2],
        [1.2, 2.2, 3.2, 4.2, 1, 2],
        [1.3, 2.3, 3.3, 4.3, 1, 2],
        [1.4, 2.4, 3.4, 4.4, 1, 2],
    ]
    steps = [10, 20, 30, 40, 50, 60, 70]
    stop, record = stopping.replay(StopRule(0.9, patience=3), STAGES, steps, series(rows))
    assert stop == 60
    assert record.taus[0] is None and record.taus[1] == -1.0 and record.taus[3:6] == [1.0, 1.0, 1.0]
    assert record.steps == [10, 20, 30, 40, 50, 60]  # the replay ends at the stop
    # min_steps holds the stop back to the first record at or after it.
    assert stopping.replay(StopRule(0.9, 3, min_steps=65), STAGES, steps, series(rows))[0] == 70
    assert stopping.replay(StopRule(0.9, 4), STAGES, steps, series(rows))[0] == 70
    assert stopping.replay(StopRule(0.9, 5), STAGES, steps, series(rows))[0] is None
    # Off (tau 0): taus are still recorded, the stop never fires.
    stop, record = stopping.replay(StopRule(0.0), STAGES, steps, series(rows))
    assert stop is None and len(record.taus) == len(steps)


def test_an_unstable_record_resets_the_count():
    rows = [
        [1, 2, 3, 4, 1, 2],
        [1, 2, 3, 4, 1, 2],
        [1, 2, 3, 4, 1, 2],
        [2, 1, 4, 3, 1, 2],  # stage 0 tau 1/3: (4 * 1/3 + 2 * 1) / 6 = 5/9 < 0.9
        [2, 1, 4, 3, 1, 2],
        [2, 1, 4, 3, 1, 2],
    ]
    stop, record = stopping.replay(StopRule(0.9, 2), STAGES, [1, 2, 3, 4, 5, 6], series(rows))
    assert stop == 3
    stop, record = stopping.replay(StopRule(0.9, 3), STAGES, [1, 2, 3, 4, 5, 6], series(rows))
    assert record.taus[3] == pytest.approx(5 / 9) and stop is None


def test_the_threshold_is_inclusive_and_ties_never_count_as_stable():
    rows = [[1, 2, 3, 4, 1, 2], [1, 2, 4, 3, 1, 2], [1, 2, 4, 3, 1, 2]]
    # Record 2: stage 0 tau 4/6, stage 1 tau 1 -> (4 * 2/3 + 2) / 6 = 7/9.
    stop, record = stopping.replay(StopRule(0.78, 1), STAGES, [1, 2, 3], series(rows))
    assert record.taus[1] == pytest.approx(7 / 9) and stop == 3
    stop, record = stopping.replay(StopRule(1.0, 2), STAGES, [1, 2, 3], series(rows))
    assert stop is None
    stop, record = stopping.replay(StopRule(1.0, 1), STAGES, [1, 2, 3], series(rows))
    assert record.taus[2] == 1.0 and stop == 3
    flat = [[5] * 6, [5] * 6, [5] * 6]
    stop, record = stopping.replay(StopRule(0.5, 1), STAGES, [1, 2, 3], series(flat))
    assert stop is None and all(math.isnan(t) for t in record.taus[1:])
    assert record.to_dict()["tau"] == [None, None, None]


def test_variance_like_values_rank_the_same_way():
    # The rule reads only rankings: any statistic (l2, variance) and any scale behave alike.
    rows = [[1, 2, 3, 4, 1, 2], [1, 2, 3, 4, 1, 2], [1, 2, 3, 4, 1, 2]]
    scaled = [[1e-4 * v**2 for v in row] for row in rows]
    a = stopping.replay(StopRule(0.9, 2), STAGES, [4, 8, 12], series(rows))[0]
    b = stopping.replay(StopRule(0.9, 2), STAGES, [4, 8, 12], series(scaled))[0]
    assert a == b == 12


def test_update_reports_the_stop_once_and_to_dict_records_it():
    stop = StabilityStop(StopRule(0.5, 1), [["a", "b"]])
    assert stop.update(4, {"a": 1, "b": 2, "unrelated": 0}) is False
    assert stop.update(8, {"a": 1, "b": 3}) is True
    assert stop.update(12, {"a": 1, "b": 3}) is False  # already stopped
    assert stop.to_dict() == {
        "tau_threshold": 0.5,
        "patience": 1,
        "min_steps": 0,
        "steps": [4, 8, 12],
        "tau": [None, 1.0, 1.0],
        "stop_step": 8,
    }
    assert stopping.values_at([4, 8], {"a": [1, 2]}, 8) == {"a": 2}
    assert stopping.default_min_steps(10) == 3


@pytest.mark.parametrize(
    "kwargs", [{"tau": 1.5}, {"tau": -0.1}, {"patience": 0}, {"min_steps": -1}, {"tau": True}]
)
def test_bad_rules_are_rejected(kwargs):
    with pytest.raises(ValueError):
        StopRule(**kwargs)
