"""`python -m nac.ablate` on the shared tiny construction: the format, the base accuracy
against the step's recorded one, one-line errors."""

import json
import subprocess
import sys

import pytest
from conftest import _quiet_env


def ablate(*args):
    return subprocess.run(
        [sys.executable, "-m", "nac.ablate", *map(str, args)],
        capture_output=True,
        text=True,
        env=_quiet_env(),
        timeout=600,
    )


def test_ablation_of_a_trained_step(finished_run, tmp_path):
    step = finished_run / "iter_0"
    assert (step / "eval_weights.npz").exists() and (finished_run / "final" / "eval_weights.npz").exists()
    out = tmp_path / "ablation.json"
    done = ablate(step, "--examples=0", f"--out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    doc = json.loads(out.read_text())
    metrics = json.loads((step / "metrics.json").read_text())
    assert doc["format"] == "nac-ablation/1" and doc["split"] == "test"
    # all test images: exactly the accuracy the step recorded at its end
    final = metrics["history"][-1]
    assert doc["examples"] == final["test_examples"]
    assert doc["base"]["accuracy"] == metrics["test_accuracy"] == final["test_accuracy"]
    assert abs(doc["base"]["loss"] - final["test_loss"]) < 1e-4
    stats = json.loads((step / "stats.json").read_text())
    assert list(doc["branches"]) == list(stats)
    for branch in doc["branches"].values():
        assert abs(branch["delta_loss"] - (branch["loss"] - doc["base"]["loss"])) < 1e-9
        assert set(branch["criteria"]) == {"l2", "variance", "taylor", "l1_kernel", "random"}
    assert [s["stage"] for s in doc["stages"]] == [0, 1]
    for stage in doc["stages"]:
        for tau in stage["tau"].values():
            assert tau["value"] is None or tau["ci"][0] <= tau["value"] <= tau["ci"][1]
    for stage in doc["stages"]:  # criteria.json holds every criterion tau compares
        assert {"l2", "variance", "taylor", "l1_kernel", "random"} <= set(stage["tau"])
    assert not any("left out" in note for note in doc["notes"])
    assert "stage 0: tau vs oracle: l2" in done.stdout


def test_ablation_errors_are_one_line(finished_run, tmp_path):
    for args, words in (
        ([tmp_path / "nothing"], "is not a directory"),
        ([finished_run, "--examples=5"], "run configuration"),
        ([finished_run / "iter_0", "--examples=-3"], "--examples"),
        ([finished_run / "iter_0", "--split=bogus"], "--split"),
    ):
        done = ablate(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr


def test_oracle_drives_construction_from_held_out_images(tmp_path_factory):
    from conftest import finished

    from nac.run import ablate as ablate_lib
    from nac.search import statsio

    run = finished(
        tmp_path_factory,
        "oracle",
        "--dataset=synthetic",
        "--envelope=8/2-1/6",
        "--iterations=1",
        "--construction_steps=6",
        "--final_steps=2",
        "--eval_every=2",
        "--stats_every=2",
        "--validation_examples=64",
        "--statistic=oracle",
        "--seed=2",
        "--noprogress",
        "--nosave_models",
    )
    stats = json.loads((run / "iter_0" / "stats.json").read_text())
    metrics = json.loads((run / "iter_0" / "metrics.json").read_text())
    assert metrics["oracle"]["examples"] == 64
    # res.log keeps the l2 lines and adds the oracle's; stats.json holds the oracle
    res_log = (run / "iter_0" / "res.log").read_text()
    assert set(statsio.parse_res_log(res_log)) == set(stats)
    assert statsio.parse_res_log(res_log, "oracle") == pytest.approx(stats)
    step = ablate_lib.prepare(run / "iter_0")
    doc = ablate_lib.ablate_step(step, "validation", None, log=lambda line: None)
    assert doc["examples"] == 64
    batch = json.loads((run / "run_config.json").read_text())["batch_size"]
    for branch, value in stats.items():  # stats.json: global batch x value, as every criterion
        assert abs(doc["branches"][branch]["delta_loss"] * batch - value) < 1e-5 * batch


def test_match_params_is_listed_and_validated_before_tensorflow():
    from conftest import construct

    out = construct("--helpfull")
    assert "--match_params: [search]" in out.stdout and "oracle: the loss increase" in out.stdout
    bad = construct("--run_dir=x", "--dataset=synthetic", "--match_params=0.05")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--match_params: got 0.05; is for --mode=random" in bad.stderr


def test_matched_random_baseline_records_its_draws(finished_run, tmp_path_factory):
    from conftest import finished

    from nac.run.runconfig import load_network_file
    from nac.spec import cost

    arch = finished_run / "final" / "network.json"
    run = finished(
        tmp_path_factory,
        "matched",
        "--mode=random",
        f"--arch={arch}",
        "--num_random=1",
        "--match_params=0.03",
        "--dataset=synthetic",
        "--final_steps=2",
        "--eval_every=2",
        "--seed=5",
        "--nosave_models",
        "--notensorboard",
        "--noprogress",
    )
    metrics = json.loads((run / "random_0" / "metrics.json").read_text())
    reference = cost.count_params(load_network_file(str(arch), "conv1x1", 3, 10))
    assert metrics["match_params"] == 0.03 and metrics["random_draws"] >= 1
    assert abs(metrics["trainable_params"] - reference) <= 0.03 * reference
