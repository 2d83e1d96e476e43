"""End to end: `criteria.json` in every step, `--statistic` choices, constructions without a
training window (`--construction_steps=0`) with the zero-cost criterion, refused with l2."""

import json

import pytest
from conftest import construct
from helpers import assert_replays

from nac.search import criteria, statsio
from nac.spec import arch

ZERO_COST_FLAGS = [
    "--dataset=synthetic",
    "--envelope=8/2-1/6",
    "--iterations=2",
    "--construction_steps=0",
    "--final_steps=4",
    "--seed=3",
    "--noprogress",
    "--nosave_models",
]


def _criteria(step):
    doc = json.loads((step / criteria.CRITERIA_FILE).read_text())
    assert doc["format"] == criteria.CRITERIA_FORMAT
    return doc


def test_criteria_json_holds_the_recorded_criteria_side_by_side(finished_run):
    for name in ("iter_0", "iter_1", "final"):
        step = finished_run / name
        doc = _criteria(step)
        stats = statsio.read_stats(step / "stats.json")
        assert doc["driving"] == "l2" and doc["batch_size"] == 50
        assert list(doc["criteria"]) == ["l2", "variance", "taylor", "l1_kernel", "random"]
        for values in doc["criteria"].values():
            assert list(values) == list(stats)  # stats.json's branch ids, in its order
        assert doc["criteria"]["l2"] == pytest.approx(stats)  # the driving criterion
        assert all(v > 0 for v in doc["criteria"]["taylor"].values())
        seed = json.loads((step / "metrics.json").read_text())["seed"]
        expected = statsio.to_original_scale({"r": criteria.random_values(stats, seed)}, 50)["r"]
        assert doc["criteria"]["random"] == pytest.approx(expected)
        # res.log as ever: MeanSSS lines only when l2 drives
        assert all(line.startswith("MeanSSS:") for line in (step / "res.log").read_text().splitlines())


def test_bad_statistic_is_one_line_naming_the_choices(tmp_path):
    out = construct("--dataset=synthetic", f"--run_dir={tmp_path / 'r'}", "--statistic=l3")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--statistic" in lines[0] and "l3" in lines[0]
    assert all(name in lines[0] for name in criteria.NAMES)


def test_zero_steps_refused_with_l2_in_one_line(tmp_path):
    out = construct(*ZERO_COST_FLAGS, f"--run_dir={tmp_path / 'r'}", "--statistic=l2")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--construction_steps=0" in lines[0] and "snip" in lines[0]
    assert "window" in lines[0]
    assert not (tmp_path / "r").exists()


def test_zero_steps_construction_with_snip(tmp_path):
    run = tmp_path / "r"
    out = construct(*ZERO_COST_FLAGS, f"--run_dir={run}", "--statistic=snip")
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("iter_0", "iter_1"):
        step = run / name
        metrics = json.loads((step / "metrics.json").read_text())
        assert metrics["steps"] == 0 and 0 <= metrics["test_accuracy"] <= 1
        stats = statsio.read_stats(step / "stats.json")
        doc = _criteria(step)
        assert doc["driving"] == "snip" and list(doc["criteria"]) == ["l1_kernel", "random", "snip"]
        assert doc["criteria"]["snip"] == pytest.approx(stats)
        assert statsio.read_stats(step / "res.log", "snip") == pytest.approx(stats)
        assert len(set(stats.values())) == len(stats)  # branches are told apart at initialisation
    # the decisions replay from stats.json as with any criterion
    assert_replays(run, tmp_path)
    final = arch.body_from_original(json.loads((run / "final" / "network.json").read_text()))
    assert final != arch.body_from_original(json.loads((run / "iter_0" / "network.json").read_text()))
