"""`python -m nac.ablate` on the shared tiny construction: the format, the base accuracy
against the step's recorded one, one-line errors."""

import json
import subprocess
import sys

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
        assert set(branch["criteria"]) == {"l2", "l1_kernel", "random"}
    assert [s["stage"] for s in doc["stages"]] == [0, 1]
    for stage in doc["stages"]:
        for tau in stage["tau"].values():
            assert tau["value"] is None or tau["ci"][0] <= tau["value"] <= tau["ci"][1]
    assert any("variance" in note for note in doc["notes"])
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
