"""Construction savings end to end: the stability stop and weight inheritance flags and runs."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import construct, finished
from helpers import run_config

from nac.run.runconfig import RunConfig
from nac.spec.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]

BASE = {
    "run_dir": "r",
    "dataset": "synthetic",
    "envelope": "8/2-1/6",
    "construction_steps": 16,
    "stats_every": 2,
}


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"stats_stop_tau": 1.5}, "--stats_stop_tau: got 1.5"),
        ({"stats_stop_tau": -0.2}, "--stats_stop_tau"),
        ({"stats_stop_patience": 0}, "--stats_stop_patience: got 0"),
        ({"stats_stop_min_steps": -1}, "--stats_stop_min_steps"),
        ({"stats_stop_tau": 0.9, "stats_every": 0}, "--stats_every > 0"),
        ({"stats_stop_tau": 0.9, "stats_stop_patience": 8}, "more than the 16-step window"),
        ({"inherit_final": True}, "--inherit_final"),
    ],
)
def test_bad_values_name_the_flag(changes, message):
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        run_config(**{**BASE, **changes})


def test_rule_defaults_and_resume_differences():
    config = run_config(**{**BASE, "stats_stop_tau": 0.9})
    rule = config.stop_rule()
    assert (rule.tau, rule.patience, rule.min_steps) == (0.9, 3, 4)  # a quarter of 16 steps
    assert run_config(**{**BASE, "stats_stop_min_steps": 0}).stop_rule().min_steps == 0
    assert not run_config(**BASE).stop_rule().enabled
    saved = RunConfig.from_flat(run_config(**BASE).to_flat())
    for field, value in [
        ("stats_stop_tau", 0.9),
        ("stats_stop_patience", 2),
        ("stats_stop_min_steps", 2),
        ("inherit_weights", True),
    ]:
        assert run_config(**{**BASE, field: value}).differences(saved) == [field]
    # A run_config.json written before these flags existed resumes with their defaults.
    old = {
        k: v for k, v in run_config(**BASE).to_flat().items() if not k.startswith(("stats_stop", "inherit"))
    }
    assert run_config(**BASE).differences(RunConfig.from_flat(old)) == []


def test_flags_are_listed_under_search_and_rejected_before_tensorflow(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "nac.construct", "--helpfull"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for flag in (
        "stats_stop_tau",
        "stats_stop_patience",
        "stats_stop_min_steps",
        "inherit_weights",
        "inherit_final",
    ):
        assert f"--{flag}: [search]" in out.stdout or f"--[no]{flag}: [search]" in out.stdout, flag
    code = (
        "import sys; sys.argv = ['nac.construct', '--run_dir=x', '--dataset=synthetic', "
        "'--stats_stop_tau=2']\n"
        "from nac import construct\n"
        "try:\n    construct.run()\nexcept SystemExit as e:\n"
        "    assert 'tensorflow' not in sys.modules; raise\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 2 and "--stats_stop_tau: got 2.0" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# One stopped iteration whose trained weights the final network inherits (--inherit_final,
# so that one short run exercises both features and their resume).
STOP_FLAGS = (
    "--dataset=synthetic",
    "--envelope=8/2-1/6",
    "--iterations=1",
    "--construction_steps=16",
    "--final_steps=2",
    "--eval_every=16",
    "--stats_every=2",
    "--seed=3",
    "--stats_stop_tau=0.6",
    "--stats_stop_patience=2",
    "--inherit_weights",
    "--inherit_final",
    "--nosave_models",
    "--notensorboard",
    "--noprogress",
)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    return finished(tmp_path_factory, "stopped", *STOP_FLAGS)


def test_a_stopped_iteration_records_its_stop_and_cost(stopped_run):
    run = stopped_run
    metrics = json.loads((run / "iter_0" / "metrics.json").read_text())
    stop = metrics["stability_stop"]
    assert metrics["stopped_early"] is True and metrics["steps_planned"] == 16
    assert metrics["steps"] == stop["stop_step"] < 16 and metrics["steps"] >= 4  # min_steps: 16 / 4
    assert stop["steps"][-1] == metrics["steps"] and stop["tau"][0] is None
    assert all(t >= 0.6 for t in stop["tau"][-2:])
    series = json.loads((run / "iter_0" / "stats_series.json").read_text())
    assert series["steps"] == stop["steps"]
    # The statistic that drove the restructure is the one at the stop.
    stats = json.loads((run / "iter_0" / "stats.json").read_text())
    assert all(series["values"][b][-1] == pytest.approx(v) for b, v in stats.items())
    assert metrics["history"][-1]["step"] == metrics["steps"]
    assert "inherited" not in metrics
    final = json.loads((run / "final" / "metrics.json").read_text())
    assert final["steps"] == final["steps_planned"] == 2 and final["stopped_early"] is False
    assert "stability_stop" not in final
    summary = json.loads((run / "summary.json").read_text())
    trained = metrics["steps"]
    assert summary["construction_steps"] == trained and summary["construction_steps_planned"] == 16
    assert summary["construction_cost_epochs"] == pytest.approx((trained + 2) * 50 / 512)
    assert summary["construction_cost_epochs_planned"] == pytest.approx((16 + 2) * 50 / 512)
    assert summary["inherit_final"] is True


def test_weights_are_kept_and_inherited(stopped_run):
    import numpy as np

    from nac.search import inherit

    saved = np.load(stopped_run / "iter_0" / inherit.WEIGHTS_FILE)
    assert "cell1_branch1_bn/moving_mean" in saved.files and not any("_tap/" in k for k in saved.files)
    assert not (stopped_run / "iter_0" / "saved_model").exists()  # --nosave_models
    final = json.loads((stopped_run / "final" / "metrics.json").read_text())
    inherited = final["inherited"]
    assert inherited["from"] == "iter_0" and inherited["weights"] == "ema" and inherited["copied"] > 0
    # 8/2-1/6 -> 8/3-2/6: one appended EnvelopeCell per stage, identity-initialised.
    assert len(inherited["identity_initialised"]) == 12 and inherited["fresh"] == []
    assert not (stopped_run / "final" / inherit.WEIGHTS_FILE).exists()


def test_a_resumed_run_stops_at_the_same_step_and_inherits_the_same_weights(stopped_run, tmp_path):
    import numpy as np

    from nac.search import inherit

    copy = tmp_path / "run"
    shutil.copytree(stopped_run, copy)
    shutil.rmtree(copy / "iter_0")  # as if killed while iteration 0 trained
    (copy / "summary.json").unlink()
    out = construct(f"--run_dir={copy}", *STOP_FLAGS)
    assert out.returncode == 0, out.stderr[-3000:]
    for file in ("stats.json", "stats_series.json", "network.json"):
        assert (copy / "iter_0" / file).read_text() == (stopped_run / "iter_0" / file).read_text(), file
    before = json.loads((stopped_run / "iter_0" / "metrics.json").read_text())
    after = json.loads((copy / "iter_0" / "metrics.json").read_text())
    for key in ("steps", "stability_stop", "test_accuracy", "loss_curve"):
        assert after[key] == before[key], key
    # The weights the final network inherits are the same (the final step itself was kept).
    with (
        np.load(stopped_run / "iter_0" / inherit.WEIGHTS_FILE) as a,
        np.load(copy / "iter_0" / inherit.WEIGHTS_FILE) as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert json.loads((copy / "summary.json").read_text())["complete"]
    out = construct(
        f"--run_dir={copy}", *[f for f in STOP_FLAGS if "patience" not in f], "--stats_stop_patience=3"
    )
    assert out.returncode == 2 and "stats_stop_patience: 2 -> 3" in out.stderr


def test_report_shows_the_stop_and_both_costs(stopped_run, tmp_path):
    from nac.cli import report

    assert report.main([str(stopped_run), "--out", str(tmp_path / "out")]) == 0
    steps = json.loads((stopped_run / "iter_0" / "metrics.json").read_text())["steps"]
    stab = (tmp_path / "out" / "stability.md").read_text()
    assert f"| 16 | stopped at {steps} (tau >= 0.6) |" in stab
    table = (tmp_path / "out" / "table1.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| Constructed"))
    summary = json.loads((stopped_run / "summary.json").read_text())
    assert "(inherited weights)" in row
    assert (
        f"{summary['construction_cost_epochs']:.4g} (fixed windows: 1×{16 * 50 / 512:.3g}+{2 * 50 / 512:.3g} = "
        f"{summary['construction_cost_epochs_planned']:.4g})" in row
    )


def test_the_statistics_callback_stops_training_at_a_record_with_either_statistic():
    import keras

    from nac.data.pipelines import DataConfig, load
    from nac.net.model import BuildOptions
    from nac.net.stats import FeaturemapStatistics
    from nac.search import stopping
    from nac.spec import arch
    from nac.training import train as T

    data = load(
        DataConfig(
            dataset="synthetic", image_size=8, seed=0, synthetic_train_examples=64, synthetic_test_examples=16
        )
    )
    network = arch.network_from_notation("4/2/3")
    keras.utils.set_random_seed(0)
    trainer = T.Trainer(
        network,
        8,
        T.TrainConfig(steps=12, batch_size=8, bn_eval="moving"),
        build_options=BuildOptions(statistics=("l2", "variance")),
    )
    stages = stopping.decisive_stages(network, (True,), (9,))
    stop = stopping.StabilityStop(stopping.StopRule(0.5, 1), stages)
    calls = []

    def on_record(step, values):
        calls.append((step, sorted(values)))
        stop.update(step, values["variance"])
        return step == 4

    stats = FeaturemapStatistics(trainer.model, 8, ("l2", "variance"), series_every=2, on_record=on_record)
    result = trainer.train(data, callbacks=[stats])
    assert result.stopped_early and result.steps == 4
    assert calls == [(2, ["l2", "variance"]), (4, ["l2", "variance"])]
    assert stop.steps == [2, 4] and stop.taus[0] is None
    series = stats.series_of("variance")
    assert series["steps"] == [2, 4]
    assert stats.scaled(stats.final)["variance"] == pytest.approx(
        {b: v[-1] for b, v in series["values"].items()}
    )


def test_savings_reads_the_study_runs_and_replays_a_grid_of_rules(finished_run, stopped_run, tmp_path):
    """experiments/savings.py --study: constructed_sK are the fixed windows, stopinherit_sK the
    stop with inheritance (its rule read from its run_config.json); the fixed windows are
    replayed under every rule of the grid."""
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import savings
    finally:
        sys.path.pop(0)
    study = tmp_path / "study"
    study.mkdir()
    (study / "constructed_s3").symlink_to(finished_run)
    (study / "stopinherit_s3").symlink_to(stopped_run)
    out = tmp_path / "out"
    assert savings.main(["--out", str(out), "--study", str(study), "--seeds", "3"]) == 0
    result = json.loads((out / "savings.json").read_text())
    assert (result["settings"]["tau"], result["settings"]["patience"]) == (0.6, 2)
    totals = result["totals"]
    assert totals["fixed"]["construction_steps"] == totals["fixed"]["construction_steps_planned"] == 24
    stopped = json.loads((stopped_run / "iter_0" / "metrics.json").read_text())["steps"]
    assert totals["inherit"]["construction_steps"] == stopped < 16
    assert [e["window"] for e in result["seeds"][0]["replay"]] == [12, 12]
    grid = {(g["tau"], g["patience"]): g for g in result["grid"]}
    assert len(grid) == len(savings.GRID_TAUS) * len(savings.GRID_PATIENCES)
    # Three records per 12-step window: patience 5 never stops, so nothing is saved or changed.
    assert grid[(0.9, 5)]["steps_saved_fraction"] == 0 and grid[(0.9, 5)]["identical"] == 2
    assert all(0 <= g["steps_saved_fraction"] < 1 for g in grid.values())
    pruned = grid[(0.9, 5)]["pruned_branches"]
    assert grid[(0.9, 5)]["pruned_branches_agreeing"] == pruned > 0
    assert f"| 0.9 | 5 | 0% | 2 of 2 | {pruned} of {pruned} (100%) |" in (out / "savings.md").read_text()
    assert result["settings"]["construction_steps"] == 12  # the study's own settings, not the defaults
