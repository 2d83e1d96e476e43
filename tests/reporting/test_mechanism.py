"""The report's mechanism summary: criteria's tau against the oracle pooled over seeds."""

import types

import pytest

from nac.reporting import mechanism


def _entry(run, steps, taus, notation="8/2-1/6", accuracy=0.5):
    step = types.SimpleNamespace(metrics={"notation": notation, "steps": steps, "test_accuracy": accuracy})
    doc = {
        "stages": [
            {"stage": 0, "tau": {n: {"value": v, "ci": [v - 0.1, v + 0.1]} for n, v in taus.items()},
             "prune_agreement": {"l2": 0.5}},
            {"stage": 1, "tau": {"l2": {"value": None, "ci": None}}, "prune_agreement": {"l2": None}},
        ]
    }  # fmt: skip
    run_obj = types.SimpleNamespace(label=run, steps={"final": step})
    return run_obj, {"run": run, "step": "final", "doc": doc}


def test_steps_of_one_length_pool_over_seeds_and_single_steps_are_left_out():
    pairs = [
        _entry("a", 25, {"l2": 0.2, "random": 0.0}, accuracy=0.6),
        _entry("b", 25, {"l2": 0.4, "random": -0.2}, accuracy=0.7),
        _entry("c", 25, {"l2": 0.6, "random": 0.2}, accuracy=0.8),
        _entry("d", 100, {"l2": 0.9}),
    ]
    runs, entries = [p[0] for p in pairs], [p[1] for p in pairs]
    (group,) = mechanism.groups(entries, runs)
    assert group["steps"] == 25 and group["accuracy"] == [0.6, 0.7, 0.8]
    stages = mechanism.summarise(group)
    assert [s["stage"] for s in stages] == [0, 1]
    l2 = stages[0]["tau"]["l2"]
    assert l2["mean"] == pytest.approx(0.4) and l2["values"] == [0.2, 0.4, 0.6]
    # t interval over 3 seeds: 0.4 +- 4.303 * 0.2 / sqrt(3)
    assert l2["ci"][1] - 0.4 == pytest.approx(4.303 * 0.2 / 3**0.5, rel=1e-3)
    assert stages[0]["tau"]["random"]["mean"] == pytest.approx(0.0)
    assert stages[1]["tau"] == {}  # a stage without any tau value (nothing to rank)
    assert stages[0]["agreement"] == {"l2": 0.5}


def test_the_section_writes_a_table_per_group():
    pairs = [_entry(r, 50, {"l2": v}) for r, v in (("a", 0.1), ("b", 0.3))]
    out = types.SimpleNamespace(md=[])
    summary = mechanism.mechanism_section(out, [p[1] for p in pairs], [p[0] for p in pairs])
    assert summary[0]["runs"] == ["a", "b"]
    text = "\n".join(out.md)
    assert "8/2-1/6 after 50 steps: 2 seeds" in text and "| 0 | +0.20 [" in text and "(n=2)" in text
    empty = types.SimpleNamespace(md=[])
    assert mechanism.mechanism_section(empty, [pairs[0][1]], [pairs[0][0]]) == [] and empty.md == []


def test_intervals_over_few_seeds_are_clipped_to_the_range_of_tau():
    pairs = [_entry(r, 25, {"l2": v}) for r, v in (("a", 0.9), ("b", -0.5))]
    (group,) = mechanism.groups([p[1] for p in pairs], [p[0] for p in pairs])
    l2 = mechanism.summarise(group)[0]["tau"]["l2"]
    assert l2["mean"] == pytest.approx(0.2) and l2["ci"] == (-1.0, 1.0)  # t: 0.2 +- 8.9
