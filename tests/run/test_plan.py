"""The plan of a run: typed steps with their seeds, budgets and parents."""

import json

from helpers import run_config

from nac.run.networks import derive_seed, random_networks
from nac.run.plan import FINAL, ITERATION, RANDOM, PlanStep, make_plan

BASE = {"run_dir": "x", "dataset": "synthetic", "envelope": "8/2-1/6", "seed": 4}


def test_a_construction_plans_its_iterations_then_the_final():
    config = run_config(**BASE, iterations=2, construction_steps=12, final_steps=30)
    plan = make_plan(config)
    assert [s.name for s in plan] == ["iter_0", "iter_1", "final"]
    assert [(s.kind, s.index, s.budget, s.parent) for s in plan] == [
        (ITERATION, 0, 12, None),
        (ITERATION, 1, 12, None),
        (FINAL, 2, 30, None),
    ]
    assert [s.seed for s in plan] == [derive_seed(4, name) for name in ("iter_0", "iter_1", "final")]
    assert plan[0].is_iteration and not plan[2].is_iteration


def test_inheritance_names_each_steps_parent():
    plan = make_plan(run_config(**BASE, iterations=2, inherit_weights=True))
    assert [s.parent for s in plan] == [None, "iter_0", None]
    plan = make_plan(run_config(**BASE, iterations=2, inherit_weights=True, inherit_final=True))
    assert [s.parent for s in plan] == [None, "iter_0", "iter_1"]
    assert make_plan(run_config(**BASE, iterations=0, inherit_weights=True, inherit_final=True)) == [
        PlanStep(FINAL, 0, derive_seed(4, "final"), run_config(**BASE).final_budget())
    ]


def test_oneshot_and_random_plans(tmp_path):
    assert [s.name for s in make_plan(run_config(**BASE, mode="oneshot"))] == ["final"]
    arch = tmp_path / "net.json"
    arch.write_text(json.dumps(run_config(**BASE).initial_network().arch_json()))
    config = run_config(**BASE, mode="random", arch=str(arch), num_random=3, final_steps=5)
    plan = make_plan(config)
    assert [(s.kind, s.name, s.budget) for s in plan] == [(RANDOM, f"random_{j}", 5) for j in range(3)]
    assert [s.seed for s in plan] == [seed for seed, _ in random_networks(config)]
