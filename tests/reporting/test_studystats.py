"""nac.reporting.studystats on hand-written numbers (pure Python, fast)."""

import dataclasses
import math

import numpy as np
import pytest

from nac.reporting import studystats as ss


def net(id, role, err, params=1000, seed=None, variant="", match=None, history=(), steps=None):
    return ss.StudyNet(id, role, "fashion_mnist", err, params, seed, variant, match, tuple(history), steps)


def test_group_summary_mean_and_sample_std():
    nets = [
        net("c1", "constructed", 10.0, 100),
        net("c2", "constructed", 12.0, 300),
        net("e", "envelope", 15.0),
    ]
    groups = {g["group"]: g for g in ss.group_summary(nets)}
    assert groups["constructed"]["n"] == 2
    assert groups["constructed"]["test_error_pct"]["mean"] == pytest.approx(11.0)
    assert groups["constructed"]["test_error_pct"]["std"] == pytest.approx(math.sqrt(2.0))
    assert groups["constructed"]["params"]["mean"] == pytest.approx(200.0)
    assert groups["envelope"]["test_error_pct"]["std"] == 0.0


def test_variants_form_their_own_group():
    nets = [net("c", "constructed", 10.0), net("s", "constructed", 11.0, variant="stability stop")]
    assert [g["group"] for g in ss.group_summary(nets)] == ["constructed", "constructed (stability stop)"]


def test_bootstrap_mean_ci_is_seeded_and_brackets_the_mean():
    values = [-2.0, -1.0, -3.0, 0.5]
    a = ss.bootstrap_mean_ci(values, resamples=2000, seed=3)
    b = ss.bootstrap_mean_ci(values, resamples=2000, seed=3)
    assert a == b
    mean, lo, hi = a
    assert mean == pytest.approx(-1.375)
    assert -3.0 <= lo < mean < hi <= 0.5
    # A constant sample has a zero-width interval.
    assert ss.bootstrap_mean_ci([1.5, 1.5, 1.5], resamples=100) == (1.5, 1.5, 1.5)


def test_bootstrap_diff_ci_separated_samples_exclude_zero():
    mean, lo, hi = ss.bootstrap_diff_ci([10.0, 10.5, 11.0], [14.0, 15.0, 16.0, 15.5], resamples=4000)
    assert mean == pytest.approx(10.5 - 15.125)
    assert hi < 0
    assert lo >= 10.0 - 16.0


def test_paired_by_seed_and_by_match():
    cons = [net("c1", "constructed", 10.0, seed=1), net("c2", "constructed", 12.0, seed=2)]
    worst = [net("w1", "worst_case", 13.0, seed=1), net("w3", "worst_case", 20.0, seed=3)]
    pairs = ss.paired_differences(cons, worst, "seed")
    assert [(p["constructed"], p["diff"]) for p in pairs] == [("c1", -3.0)]
    rand = [
        net("r1", "random", 11.0, match="c1"),
        net("r2", "random", 15.0, match="c1"),
        net("r3", "random", 11.0, match="c2"),
    ]
    pairs = ss.paired_differences(cons, rand, "match")
    assert [(p["constructed"], p["diff"]) for p in pairs] == [("c1", -3.0), ("c2", 1.0)]


def test_beats_counts_strictly_worse_random_nets_and_ties():
    cons = [net("c1", "constructed", 10.0)]
    rand = [net(f"r{i}", "random", e) for i, e in enumerate([9.0, 10.0, 11.0, 12.0])]
    assert ss.beats(cons, rand) == [{"net": "c1", "test_error_pct": 10.0, "beats": 2, "ties": 1, "of": 4}]


def test_converged_step():
    steps = [100, 200, 300, 400, 500]
    acc = [0.50, 0.70, 0.796, 0.80, 0.801]
    # 80.1 - 79.6 is not < 0.5 points; from 400 on (80.1 - 80.0) it is.
    assert ss.converged_step(steps, acc) == 400
    assert ss.converged_step(steps, acc, points=1.0) == 300
    # A dip after a plateau restarts the count: the end is what counts at every later point.
    assert ss.converged_step([1, 2, 3, 4], [0.80, 0.70, 0.797, 0.80]) == 3
    assert ss.converged_step([], []) is None


def test_convergence_check_last_fifth():
    steps = [200, 400, 600, 800, 1000]
    check = ss.convergence_check(steps, [0.5, 0.7, 0.8, 0.85, 0.853], 1000)
    assert check["from_step"] == 800
    assert check["gain_points"] == pytest.approx(0.3)
    assert check["flattened"] is True
    check = ss.convergence_check(steps, [0.5, 0.7, 0.8, 0.82, 0.85], 1000)
    assert check["gain_points"] == pytest.approx(3.0) and check["flattened"] is False
    # Only an evaluation at the end: nothing to tell.
    assert ss.convergence_check([1000], [0.9], 1000)["flattened"] is None


def test_convergence_check_compares_subset_evaluations_with_each_other():
    """--eval_examples: the earlier points read 1,000 images, the last one 10,000; the subset's
    own points decide (0.3 points from step 800 to 900), not the mixed gain (1.8 points)."""
    steps = [200, 400, 600, 800, 900, 1000]
    acc = [0.5, 0.7, 0.8, 0.85, 0.853, 0.868]
    examples = (1000, 1000, 1000, 1000, 1000, 10000)
    check = ss.convergence_check(steps, acc, 1000, examples=examples)
    assert check["gain_points"] == pytest.approx(1.8) and check["from_step"] == 800
    assert check["same_images_to_step"] == 900 and check["same_images"] == 1000
    assert check["same_images_gain_points"] == pytest.approx(0.3) and check["flattened"] is True
    # Every evaluation on the same images: the plain check, nothing more.
    plain = ss.convergence_check(steps, acc, 1000, examples=(10000,) * 6)
    assert "same_images_gain_points" not in plain and plain["flattened"] is False
    n = ss.StudyNet(
        "n", "envelope", "d", 13.2, 10, history=tuple(zip(steps, acc)), steps=1000, examples=examples
    )
    assert ss.convergence_table([n])[0]["flattened"] is True
    assert "| 1.80 | 0.30 (to step 900, 1,000 images) | yes |" in ss.study_markdown(ss.study([n]))
    # The last evaluation's accuracy on the same 1,000 images (runs since it is recorded): the
    # gain is read to the end of training, from step 800.
    ended = ss.convergence_check(steps, acc, 1000, examples=examples, end_on_subset=(0.858, 1000))
    assert ended["same_images_to_step"] == 1000 and ended["same_images_gain_points"] == pytest.approx(0.8)
    assert ended["flattened"] is False
    other = ss.convergence_check(steps, acc, 1000, examples=examples, end_on_subset=(0.858, 2000))
    assert other["same_images_to_step"] == 900  # recorded on other images: not comparable
    n_end = dataclasses.replace(n, end_on_subset=(0.858, 1000))
    assert "| 1.80 | 0.80 (to step 1000, 1,000 images) | **no** |" in ss.study_markdown(ss.study([n_end]))


def test_study_pairs_compares_and_renders():
    hist = ((50, 0.6), (100, 0.8))
    nets = [
        net("c1", "constructed", 10.0, seed=1, history=hist, steps=100),
        net("c2", "constructed", 11.0, seed=2, history=hist, steps=100),
        net("w1", "worst_case", 14.0, seed=1, history=hist, steps=100),
        net("w2", "worst_case", 13.0, seed=2, history=hist, steps=100),
        net("r1", "random", 12.0, match="c1", history=hist, steps=100),
        net("r2", "random", 9.0, match="c2", history=hist, steps=100),
    ]
    stab = [
        {
            "run": "c",
            "iterations": [{"iteration": 0, "step": "iter_0", "iteration_steps": 100, "stable_step": 40}],
        }
    ]
    histories = {("c", "iter_0"): ((25, 0.5), (50, 0.7), (75, 0.79), (100, 0.792))}
    s = ss.study(nets, stab, histories, resamples=1000)
    by_other = {c["other"]: c for c in s["comparisons"]}
    assert by_other["worst_case"]["paired"]["diff"] == pytest.approx(-3.0)
    assert by_other["worst_case"]["paired"]["ci_high"] < 0
    assert by_other["random"]["paired"]["n_pairs"] == 2
    assert by_other["random"]["paired"]["diff"] == pytest.approx(np.mean([-2.0, 2.0]))
    assert [b["beats"] for b in s["beats_random"]] == [1, 1]
    assert s["convergence"][0]["gain_points"] == pytest.approx(20.0)
    assert s["stability_vs_convergence"] == [
        {
            "run": "c",
            "iteration": 0,
            "steps": 100,
            "evaluations": 4,
            "stable_step": 40,
            "converged_step": 75,
            "converged_at_end": False,
            "stable_before_converged": True,
        }
    ]
    md = ss.study_markdown(s)
    assert "| fashion_mnist | constructed | worst_case | 2 vs 2 | -3.00 [-4.00, -2.00] (2 pairs)" in md
    assert "| c1 | 10.00 | 1 of 2 | 0 |" in md
    assert "| c | 0 | 100 | 4 | 40 | 75 | yes |" in md
    rising = ss.stability_vs_convergence(stab, {("c", "iter_0"): ((50, 0.5), (100, 0.6))})
    assert rising[0]["converged_at_end"] is True and rising[0]["stable_before_converged"] is True


def test_table1_keeps_construction_variants_apart():
    from nac.reporting.table1 import NetResult, table_rows

    def result(run, variant):
        return NetResult(run, run, "final", "constructed", "fashion_mnist", "8/4-2-2/6", 100, 1.0, 1.0, 0.1, 1,
                         variant=variant)  # fmt: skip

    rows = table_rows([result("a", ""), result("b", "stability stop, inherited weights"), result("c", "")])
    assert [(r["network"], r["n"]) for r in rows] == [
        ("Constructed", 2),
        ("Constructed (stability stop, inherited weights)", 1),
    ]


def test_table1_std_is_zero_for_values_equal_up_to_rounding():
    from nac.reporting.table1 import mean_std

    costs = [0.1 + 0.2, 0.3, 0.3]  # the same cost summed in two orders: 0.30000000000000004 and 0.3
    assert costs[0] != costs[1] and mean_std(costs)[1] == 0.0
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0) and mean_std([4.0]) == (4.0, 0.0)


def test_groups_with_step_counts_sort_by_their_numbers():
    names = ["envelope (100 steps)", "envelope", "envelope (25 steps)", "constructed"]
    assert sorted(names, key=ss.natural_key) == [
        "constructed",
        "envelope",
        "envelope (25 steps)",
        "envelope (100 steps)",
    ]
