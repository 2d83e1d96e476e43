"""`python -m nac.report`: Table 1, figures, architecture pictures and stability from run dirs."""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from nac.cli import report as report_cli
from nac.reporting import report
from nac.run import rundir
from nac.spec import arch

FIGURES = ("figure2_statistic", "figure3_accuracy", "figure4_widths", "stability")


def make_report(out, *runs, extra=()):
    assert report_cli.main([*map(str, runs), "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text())


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def fail_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        report_cli.run(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nac.report: error: "), err
    return err


def copy_run(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("saved_model", "tensorboard"))
    return dst


@pytest.fixture(scope="module")
def full(finished_run, envelope_run, random_run, worstcase_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    runs = (finished_run, envelope_run, random_run, worstcase_run)
    return out, make_report(out, *runs), runs


def test_every_file_is_written(full, finished_run):
    out, rep, _ = full
    labels = {r["path"]: r["label"] for r in rep["runs"]}
    cons = rundir.file_label(labels[str(finished_run)])
    worst = rundir.file_label(labels[str(full[2][3])])
    expected = {"table1.md", "table1.csv", "report.md", "report.json", "stability.json", "stability.md"}
    for stem in (*FIGURES, f"arch_{cons}_iter0", f"arch_{cons}_iter1", f"arch_{worst}_iter0"):
        expected |= {f"{stem}.png", f"{stem}.svg", f"{stem}.pdf"}
    assert expected <= {p.name for p in out.iterdir()}
    assert set(rep["files"]) == expected
    for name in expected:
        data = (out / name).read_bytes()
        if name.endswith(".png"):
            assert data.startswith(b"\x89PNG") and len(data) > 5000, name
        if name.endswith(".svg"):
            assert b"<svg" in data[:2000], name
        if name.endswith(".pdf"):
            assert data.startswith(b"%PDF"), name
    md = (out / "report.md").read_text()
    assert (out / "table1.md").read_text() in md
    for name in expected - {"report.md", "report.json", "table1.md", "stability.json"}:
        assert f"({name})" in md, name
    assert rep["notes"] == []


def test_formats_choose_the_figure_files(finished_run, tmp_path, capsys):
    out = tmp_path / "png"
    rep = make_report(out, finished_run, extra=("--formats=png",))
    figures = [f for f in rep["files"] if f.endswith((".png", ".svg", ".pdf"))]
    assert figures and all(f.endswith(".png") for f in figures)
    assert not list(out.glob("*.svg")) and not list(out.glob("*.pdf"))
    md = (out / "report.md").read_text()
    assert ".svg)" not in md and ".pdf)" not in md and "(figure4_widths.png)" in md
    err = fail_line(capsys, [str(finished_run), "--out", str(tmp_path / "bad"), "--formats=png,jpg"])
    assert "--formats: got 'png,jpg'" in err and "png, svg, pdf" in err
    assert not (tmp_path / "bad").exists()


def test_study_statistics_section(full):
    out, rep, (cons, envelope, random_, worst) = full
    study = rep["study"]
    labels = {r["path"]: r["label"] for r in rep["runs"]}
    groups = {g["group"]: g for g in study["groups"]}
    assert set(groups) == {"constructed", "envelope", "random", "worst_case"}
    assert groups["random"]["n"] == 2
    by_other = {c["other"]: c for c in study["comparisons"]}
    # The random run's --arch is the construction's final network: paired by that match.
    paired = by_other["random"]["paired"]
    assert paired["n_pairs"] == 1 and paired["pairs"][0]["constructed"] == f"{labels[str(cons)]}:final"
    assert by_other["worst_case"]["paired"] is None  # seeds 3 and 4: nothing to pair
    assert [b["of"] for b in study["beats_random"]] == [2]
    assert len(study["convergence"]) == 5
    q2 = [q for q in study["stability_vs_convergence"] if q["run"] == labels[str(cons)]]
    assert [q["evaluations"] for q in q2] == [2, 2]  # --eval_every=6 in 12-step iterations
    md = (out / "report.md").read_text()
    assert "## Study statistics" in md and "### Question 2" in md


def test_table_numbers_equal_the_runs_json(full):
    out, rep, (cons, envelope, random_, worst) = full
    rows = read_csv(out / "table1.csv")
    groups = [r for r in rows if r["row_type"] == "group"]
    nets = [r for r in rows if r["row_type"] == "net"]
    assert [g["role"] for g in groups] == ["envelope", "constructed", "worst_case", "random"]
    assert groups[3]["network"] == "Random (2 nets)" and groups[3]["n"] == "2"

    expected = {}  # (run dir, step) -> summary row
    summaries = {}
    for run in (cons, envelope, random_, worst):
        summary = json.loads((run / "summary.json").read_text())
        summaries[str(run)] = summary
        for row in summary["steps"]:
            if row["name"] == "final" or row["name"].startswith("random_"):
                expected[(str(run), row["name"])] = row
    assert {(n["run_dir"], n["step"]) for n in nets} == set(expected)
    for net in nets:
        want = expected[(net["run_dir"], net["step"])]
        assert net["notation"] == want["notation"]
        assert int(net["trainable_params_mean"]) == want["trainable_params"]
        assert float(net["flops_per_batch_50_mean"]) == want["flops_per_batch_50"]
        assert (
            float(net["flops_per_image_mean"]) == want["flops_per_image"] == want["flops_forward_per_image"]
        )
        assert float(net["flops_training_per_image_mean"]) == want["flops_training_per_image"]
        assert (
            want["flops_forward_per_image"]
            < want["flops_training_per_image"]
            < 3 * want["flops_forward_per_image"]
        )
        assert int(net["flops_batch_mean"]) == 50  # the paper's batch (64 on ImageNet)
        assert float(net["flops_training_per_batch_mean"]) == 50 * want["flops_training_per_image"]
        assert float(net["test_error_pct_mean"]) == pytest.approx(100 * want["test_error"], rel=1e-12)
        summary = summaries[net["run_dir"]]
        if net["role"] in ("constructed", "worst_case"):
            assert float(net["construction_cost_epochs_mean"]) == summary["construction_cost_epochs"]
            assert float(net["construction_cost_wall_time_s_mean"]) == pytest.approx(
                summary["construction_cost_wall_time_s"], rel=1e-12
            )
            assert want == {k: summary["final"][k] for k in want}
        else:
            assert net["construction_cost_epochs_mean"] == ""
    for i, group in enumerate(groups):
        members = [n for n in nets if n["group"] == str(i)]
        assert int(group["n"]) == len(members) > 0
        for field in ("trainable_params", "flops_per_batch_50", "test_error_pct"):
            values = [float(m[f"{field}_mean"]) for m in members]
            assert float(group[f"{field}_mean"]) == pytest.approx(np.mean(values), rel=1e-12)
            std = np.std(values, ddof=1) if len(values) > 1 else 0.0
            assert float(group[f"{field}_std"]) == pytest.approx(std, rel=1e-12, abs=1e-12)
    # The Markdown table shows the same numbers.
    md = (out / "table1.md").read_text()
    final = summaries[str(cons)]["final"]
    assert f"{final['trainable_params']:,}" in md
    assert f"{100 * final['test_error']:.2f}" in md
    assert "| Random (2 nets) | synthetic |" in md


def test_restructure_is_replayed_and_matches_the_next_network(full, finished_run):
    _, rep, _ = full
    archs = [a for a in rep["architectures"] if a["run"] == rep["runs"][0]["label"]]
    assert [a["iteration"] for a in archs] == [0, 1]
    for a in archs:
        assert a["matches_next"] is True
        # Independent check: the pruned branches are exactly those missing in the next network.
        i = a["iteration"]
        before = arch.body_from_original(json.loads((finished_run / f"iter_{i}/network.json").read_text()))
        name = f"iter_{i + 1}" if i == 0 else "final"
        after = arch.body_from_original(json.loads((finished_run / name / "network.json").read_text()))
        cell_map = dict(a["restructure"]["cell_map"])
        gone = {
            f"Cell{k}/{key}"
            for k, entry in enumerate(before, start=1)
            if isinstance(entry, arch.Cell)
            for key, _ in entry.branches
            if key not in dict(after[cell_map[k] - 1].branches)
        }
        pruned = {b for s in a["restructure"]["stages"] for b in s["pruned"]}
        assert pruned == gone and pruned
        added = [s["added_cell"] for s in a["restructure"]["stages"]]
        assert all(len(after[k - 1].branches) == 6 for k in added)


def test_figures_hold_the_runs_data(full, finished_run):
    _, rep, _ = full
    fig2 = rep["figure2"]
    series = json.loads((finished_run / "iter_0/stats_series.json").read_text())
    assert fig2["step"] == "iter_0" and fig2["steps"] == series["steps"] == [4, 8, 12]
    first = fig2["layers"][0]["branches"][0]
    assert first["values"] == pytest.approx([v / 50 for v in series["values"][first["branch"]]])
    assert len(fig2["layers"]) == 3  # 8/2-1/6: three layers
    roles = {c["role"]: c for c in rep["figure3"]}
    assert set(roles) == {"constructed", "envelope", "worst_case", "random"}
    assert roles["random"]["method"] == "identical" and len(roles["random"]["members"]) == 2
    history = json.loads((finished_run / "final/metrics.json").read_text())["history"]
    assert roles["constructed"]["mean"] == [h["test_accuracy"] for h in history]
    (widths,) = rep["figure4"]
    final = arch.body_from_original(json.loads((finished_run / "final/network.json").read_text()))
    assert [[w["mean"] for w in stage] for stage in widths["stages"]] == [
        [c.num_branches for _, c in stage] for stage in arch.body_stages(final)
    ]
    assert all(w["std"] == 0 for stage in widths["stages"] for w in stage)


def test_iteration_option_and_one_run_only(finished_run, tmp_path):
    rep = make_report(tmp_path, finished_run, extra=["--iteration", "1"])
    assert rep["figure2"]["step"] == "iter_1"
    assert {c["role"] for c in rep["figure3"]} == {"constructed"}
    rep = make_report(tmp_path / "missing", finished_run, extra=["--iteration", "7"])
    assert rep["figure2"] is None
    assert any("Figure 2" in n for n in rep["notes"])
    assert not (tmp_path / "missing" / "figure2_statistic.png").exists()


def test_partial_runs_are_reported_as_far_as_they_got(finished_run, tmp_path):
    no_final = copy_run(finished_run, tmp_path / "no_final")
    shutil.rmtree(no_final / "final")
    summary = json.loads((no_final / "summary.json").read_text())
    summary.update(complete=False, steps=summary["steps"][:2])
    del summary["final"]
    (no_final / "summary.json").write_text(json.dumps(summary))
    no_summary = copy_run(finished_run, tmp_path / "no_summary")
    shutil.rmtree(no_summary / "iter_1")
    shutil.rmtree(no_summary / "final")
    (no_summary / "summary.json").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(finished_run / "run_config.json", empty)
    shutil.copy(finished_run / "config.json", empty)

    out = tmp_path / "out"
    rep = make_report(out, no_final, no_summary, empty)
    names = {p.name for p in out.iterdir()}
    assert {"arch_no_final_iter0.png", "arch_no_final_iter1.svg", "arch_no_summary_iter0.png"} <= names
    assert {"figure2_statistic.png", "stability.png", "report.md"} <= names
    assert not names & {"table1.csv", "figure3_accuracy.png", "figure4_widths.png"}
    md = (out / "report.md").read_text()
    for text in ("empty: no finished step; skipped", "Figure 3:", "Figure 4:", "Table 1:"):
        assert text in md
    assert [r["complete"] for r in rep["runs"]] == [False, False, False]
    assert rep["runs"][1]["role"] == "constructed"  # from run_config.json
    assert [a["matches_next"] for a in rep["architectures"]] == [True, None, None]

    # A final that finished after the last summary write still enters the table.
    late = copy_run(finished_run, tmp_path / "late")
    (late / "summary.json").write_text(json.dumps(summary))
    rep = make_report(tmp_path / "out_late", late)
    (row,) = rep["table1"]["rows"]
    metrics = json.loads((late / "final/metrics.json").read_text())
    assert row["test_error_pct"]["mean"] == pytest.approx(100 * metrics["test_error"])
    assert any("metrics.json" in n for n in rep["notes"])


def test_runs_of_an_older_nac_without_the_two_flops_counts(finished_run, tmp_path):
    old = copy_run(finished_run, tmp_path / "old")
    summary = json.loads((old / "summary.json").read_text())
    for row in [*summary["steps"], summary["final"]]:
        forward = row.pop("flops_forward_per_image")
        row.pop("flops_training_per_image")
    (old / "summary.json").write_text(json.dumps(summary))
    for metrics_path in old.glob("*/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        del metrics["flops_forward_per_image"], metrics["flops_training_per_image"]
        metrics_path.write_text(json.dumps(metrics))
    out = tmp_path / "out"
    rep = make_report(out, old)
    (row,) = rep["table1"]["rows"]
    assert row["flops_per_image"]["mean"] == forward == summary["final"]["flops_per_image"]
    assert row["flops_forward_per_batch"]["mean"] == 50 * forward
    assert row["flops_training_per_image"] is None and row["flops_training_per_batch"] is None
    (net,) = [r for r in read_csv(out / "table1.csv") if r["row_type"] == "net"]
    assert net["flops_training_per_image_mean"] == "" and float(net["flops_per_image_mean"]) == forward


def test_a_replay_that_differs_is_drawn_with_a_warning(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "edited")
    path = run / "iter_1" / "network.json"
    body = json.loads(path.read_text())
    key = sorted(body[0]["filters"])[0]
    body[0]["filters"][key] = "9x9"  # same branch keys, so the statistics still fit
    path.write_text(json.dumps(body))
    rep = make_report(tmp_path / "out", run)
    assert rep["architectures"][0]["matches_next"] is False
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("nac.report: warning: ") for line in lines)
    assert "edited iter_0: restructuring network.json" in lines[0]
    assert (tmp_path / "out" / "arch_edited_iter0.png").exists()
    assert "differs from the next step" in (tmp_path / "out" / "report.md").read_text()


# -- stability on a hand-made run -------------------------------------------------------

# Stage 0: one layer of 5 branches, stage 1: one layer of 3, stage 2: one branch (skipped).
BODY = [
    {"filters": {f"Branch{i}": "3x3" for i in range(1, 6)}, "outputs": 10},
    {"widener": {}},
    {"filters": {f"Branch{i}": "1x1" for i in range(1, 4)}, "outputs": 12},
    {"widener": {}},
    {"filters": {"Branch1": "5x5"}, "outputs": 4},
]
STAGE0 = [f"Cell1/Branch{i}" for i in range(1, 6)]
STAGE1 = [f"Cell3/Branch{i}" for i in range(1, 4)]
# Rankings at steps 5..40; the last is the end of the iteration (stats.json).
SERIES = {
    5: ([5, 4, 3, 2, 1], [3, 2, 1]),  # both reversed: tau -1
    10: ([1, 2, 3, 4, 5], [1, 2, 3]),  # identical: 1
    20: ([2, 1, 3, 4, 5], [1, 2, 3]),  # one swap of 10 pairs: 0.8; weighted (5*0.8+3)/8
    30: ([1, 2, 3, 4, 5], [1, 2, 3]),
    40: ([1, 2, 3, 4, 5], [1, 2, 3]),
}


def hand_made_run(path):
    step = path / "iter_0"
    step.mkdir(parents=True)
    steps = sorted(SERIES)
    values = {b: [10.0 * SERIES[s][0][i] for s in steps] for i, b in enumerate(STAGE0)}
    values |= {b: [2.0 * SERIES[s][1][i] for s in steps] for i, b in enumerate(STAGE1)}
    values["Cell5/Branch1"] = [7.0] * len(steps)
    row = {
        "name": "iter_0",
        "notation": "10/1-1-1/6",
        "trainable_params": 1,
        "flops_per_image": 2,
        "flops_per_batch_50": 100,
        "steps": 40,
        "epochs": 1.0,
        "test_accuracy": 0.5,
        "test_error": 0.5,
        "wall_time_s": 1.0,
    }
    (step / "network.json").write_text(json.dumps(BODY))
    (step / "stats.json").write_text(json.dumps({b: v[-1] for b, v in values.items()}))
    series = {
        "format": "nac-stats-series/1",
        "metric": "l2",
        "batch_size": 2,
        "steps": steps,
        "values": values,
    }
    (step / "stats_series.json").write_text(json.dumps(series))
    (step / "metrics.json").write_text(json.dumps({**row, "history": [{"step": 40, "test_accuracy": 0.5}]}))
    summary = {
        "format": "nac-summary/1",
        "role": "constructed",
        "mode": "construct",
        "dataset": "synthetic",
        "iterations": 2,
        "steps": [row],
        "complete": False,
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_stability_of_known_rankings(tmp_path):
    run = hand_made_run(tmp_path / "hand")
    rep = make_report(tmp_path / "out", run)
    (result,) = rep["stability"]["runs"]
    (it,) = result["iterations"]
    assert it["recorded_steps"] == [5, 10, 20, 30, 40]
    assert it["tau"] == pytest.approx([-1.0, 1.0, (5 * 0.8 + 3 * 1.0) / 8, 1.0, 1.0])
    assert [(s["stage"], s["branches"]) for s in it["per_stage"]] == [(0, 5), (1, 3)]
    assert it["per_stage"][0]["tau"][2] == pytest.approx(0.8)
    assert it["stable_step"] == 30 and it["stable_fraction"] == pytest.approx(0.75)
    saved = json.loads((tmp_path / "out/stability.json").read_text())
    assert saved["runs"][0]["iterations"][0]["stable_step"] == 30
    assert (
        "| hand | 0 | 10/1-1-1/6 | 40 | 5 | -1.000 | 30 | 0.75 |"
        in (tmp_path / "out/stability.md").read_text()
    )
    # A lower threshold is met from step 10 on (0.875 >= 0.85).
    rep = make_report(tmp_path / "out2", run, extra=["--stability_threshold", "0.85"])
    assert rep["stability"]["runs"][0]["iterations"][0]["stable_step"] == 10
    # No config.json: the picture is drawn without pruning marks, with a note.
    assert (tmp_path / "out/arch_hand_iter0.png").exists()
    assert any("no config.json" in n for n in rep["notes"])


def test_aggregate_curves():
    grid, mean, std, method = report.aggregate_curves([([1, 2], [0.0, 1.0]), ([1, 2], [1.0, 3.0])])
    assert method == "identical" and grid.tolist() == [1, 2]
    assert mean.tolist() == [0.5, 2.0] and std == pytest.approx([math.sqrt(0.5), math.sqrt(2.0)])
    grid, mean, _, method = report.aggregate_curves([([0, 10], [0.0, 1.0]), ([5, 20], [1.0, 1.0])])
    assert method == "interpolated" and grid.tolist() == [5, 10] and mean.tolist() == [0.75, 1.0]
    assert report.aggregate_curves([([0, 1], [0, 0]), ([2, 3], [0, 0])]) is None


# -- errors and the command line ------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_2(envelope_run, tmp_path, capsys):
    assert "required" in fail_line(capsys, ["--out", str(tmp_path / "o")])
    assert "does not exist" in fail_line(capsys, [str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert "not a run directory" in fail_line(capsys, [str(tmp_path), "--out", str(tmp_path / "o")])
    corrupt = copy_run(envelope_run, tmp_path / "corrupt")
    (corrupt / "final" / "metrics.json").write_text('{"name": ')
    assert "not valid JSON" in fail_line(capsys, [str(corrupt), "--out", str(tmp_path / "o")])
    (corrupt / "final" / "metrics.json").unlink()
    (corrupt / "summary.json").write_text("[]")
    assert "nac-summary/1" in fail_line(capsys, [str(corrupt), "--out", str(tmp_path / "o")])
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "is a file" in fail_line(capsys, [str(envelope_run), "--out", str(a_file)])
    assert not (tmp_path / "o").exists()


def test_command_line_runs_headless_without_tensorflow(envelope_run, random_run, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["MPLBACKEND"] = "Agg"
    code = (
        "import sys; from nac import report; "
        f"report.main([{str(envelope_run)!r}, {str(random_run)!r}, '--out', {str(tmp_path / 'o')!r}]); "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "o" / "figure3_accuracy.png").exists()
    out = subprocess.run(
        [sys.executable, "-m", "nac.report", str(tmp_path / "nope"), "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stdout == ""


# -- the original's results folder beside nac's runs ------------------------------------------

TF_PREFIX = "2018-06-01 12:00:00.000001: I tensorflow/core/kernels/logging_ops.cc:79] "


def tiny_original_config(fixtures_dir):
    raw = json.loads((fixtures_dir / "original_configs/construction/network.cons-exp-3.bc.json").read_text())
    raw["parameters"].update(
        archname="tiny", steps=40, evalintval=20, batchsize=5, iterations=2, image_size=8
    )
    raw["envelopenet"].update(
        stages=2,
        layersperstage=[2, 1],
        maxlayersperstage=[4, 3],
        construction=[True, True],
        parameterlimits=[False, False],
        maxfilterprune=2,
        envelopecell={"Branch1": "1x1", "Branch2": "3x3", "Branch3": "3x3sep"},
    )
    raw["initcell"]["Layer0"]["Branch0"]["outputs"] = 6
    return raw


def write_event_file(path, points):
    """A TF1-format event file: Event protos with `simple_value` scalars, as
    tf.compat.v1.summary.FileWriter writes them."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2
    from tensorflow.core.util import event_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(event_pb2.Event(wall_time=1000.0, file_version="brain.Event:2").SerializeToString())
        for step, accuracy in points:
            value = summary_pb2.Summary.Value(tag="Precision @ 1", simple_value=accuracy)
            other = summary_pb2.Summary.Value(tag="loss", simple_value=2.5)
            event = event_pb2.Event(
                wall_time=1000.0 + step, step=step, summary=summary_pb2.Summary(value=[other, value])
            )
            writer.write(event.SerializeToString())


def original_results_folder(root, fixtures_dir):
    """results/tiny, results/tiny-1, results/tiny-2 in the original's formats; the networks
    follow by the restructure rule from each iteration's res.log. Returns (config path,
    networks, per-iteration stats rounds, accuracies)."""
    from nac.search import restructure as rs
    from nac.spec.config import OriginalConfig

    raw = tiny_original_config(fixtures_dir)
    config_path = root / "network.tiny.json"
    config_path.write_text(json.dumps(raw))
    config = OriginalConfig.load(config_path)
    policy = rs.Policy.from_config(config)
    network = config.initial_network()
    networks, rounds_of, accuracies = [], [], []
    for k in range(3):
        folder = root / "results" / ("tiny" if k == 0 else f"tiny-{k}")
        folder.mkdir(parents=True)
        (folder / "network.json").write_text(json.dumps(network.arch_json(), indent=4, sort_keys=True))
        branches = [b.original for b in network.branch_ids()]
        rounds = [{b: 5.0 * (1 + (7 * i + 3 * r + k) % 11) for i, b in enumerate(branches)} for r in range(3)]
        lines = ["INFO:tensorflow:step 0, loss = 2.30"]
        for values in rounds:
            for b in branches:
                lines.append(f"{TF_PREFIX}MeanSSS:{b}:[{values[b]}]")
                lines.append(f"{TF_PREFIX}Variance:{b}:[0.5]")
        (folder / "res.log").write_text("\n".join(lines) + "\n")
        accuracy = [0.2 + 0.1 * k, 0.3 + 0.1 * k]
        write_event_file(folder / "events.out.tfevents.1527854400.host", list(zip((20, 40), accuracy)))
        networks.append(network)
        rounds_of.append(rounds)
        accuracies.append(accuracy)
        network = rs.restructure(network, rounds[-1], policy)
    return config_path, networks, rounds_of, accuracies


def test_original_results_folder_beside_a_nac_run(finished_run, fixtures_dir, tmp_path):
    from nac.spec import cost

    config_path, networks, rounds, accuracies = original_results_folder(tmp_path, fixtures_dir)
    out = tmp_path / "out"
    rep = make_report(
        out,
        finished_run,
        extra=["--original", str(tmp_path / "results"), "--original_config", str(config_path)],
    )
    original = [r for r in rep["runs"] if r["origin"] == "original"]
    assert [(r["label"], r["role"], r["finished_steps"]) for r in original] == [
        ("original:tiny", "constructed", ["iter_0", "iter_1", "final"])
    ]
    # Table 1: a row of its own, counted from the final network.json with the config's stem and head.
    rows = {r["network"]: r for r in rep["table1"]["rows"]}
    assert {"Constructed", "Constructed (original)"} <= set(rows)
    row = rows["Constructed (original)"]
    counted = cost.analyse(networks[2], 8)
    assert row["trainable_params"]["mean"] == counted.params
    assert row["flops_per_image"]["mean"] == counted.flops_forward_per_image
    assert row["flops_training_per_image"]["mean"] == counted.flops_training_per_image
    assert row["test_error_pct"]["mean"] == pytest.approx(100 * (1 - accuracies[2][-1]))
    assert row["notation"] == networks[2].notation(3)
    csv_rows = [r for r in read_csv(out / "table1.csv") if r["row_type"] == "net"]
    assert {r["origin"] for r in csv_rows} == {"nac", "original"}
    # Figure 2 from iteration 0's res.log: every round, divided by the batch size.
    fig2 = rep["figure2_original"]
    assert fig2["steps"] == [1, 2, 3] and fig2["batch_size"] == 5
    first = fig2["layers"][0]["branches"][0]
    assert first["values"] == pytest.approx([r[first["branch"]] / 5 for r in rounds[0]])
    assert (out / "figure2_statistic_original.png").exists() and rep["figure2"]["run"] != "original:tiny"
    # Figure 3 from the final folder's Precision @ 1 events (a TF1 event file).
    (curve,) = [c for c in rep["figure3"] if c["origin"] == "original"]
    assert curve["steps"] == [20, 40] and curve["mean"] == pytest.approx(accuracies[2])
    # Lineage and replay: restructuring iteration k's res.log gives network.json of k + 1.
    lineage = [a for a in rep["architectures"] if a["run"] == "original:tiny"]
    assert [(a["iteration"], a["matches_next"]) for a in lineage] == [(0, True), (1, True)]
    assert lineage[1]["next_notation"] == networks[2].notation(3)
    assert (out / "arch_original_tiny_iter1.png").exists()


def test_original_results_without_config_and_a_differing_replay(fixtures_dir, tmp_path, capsys):
    config_path, networks, _, _ = original_results_folder(tmp_path, fixtures_dir)
    results = tmp_path / "results"
    rep = make_report(tmp_path / "bare", extra=["--original", str(results)])
    assert [a["matches_next"] for a in rep["architectures"]] == [None, None]
    assert any("replay check was skipped" in n for n in rep["notes"])
    (row,) = rep["table1"]["rows"]
    assert row["network"] == "Constructed (original)" and row["dataset"] == "cifar10"
    # One archname's folder works too; an edited next network fails the replay with a warning.
    body = json.loads((results / "tiny-2" / "network.json").read_text())
    body[0]["filters"] = {"Branch9": "5x5"}
    (results / "tiny-2" / "network.json").write_text(json.dumps(body))
    capsys.readouterr()
    rep = make_report(
        tmp_path / "edited",
        extra=["--original", str(results / "tiny"), "--original_config", str(config_path)],
    )
    assert [a["matches_next"] for a in rep["architectures"]] == [True, False]
    assert "original:tiny iter_1: restructuring" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report_cli.run(["--original", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert "--original" in capsys.readouterr().err


def test_question_2_reads_a_curve_on_the_same_images():
    """The last evaluation's accuracy on the shortened evaluations' images ends the curve when
    recorded (runs since it is); otherwise the curve is the history as it is."""
    from nac.reporting.gather import _same_images_curve

    entries = [
        {"step": 20, "test_accuracy": 0.5, "test_examples": 2000},
        {"step": 40, "test_accuracy": 0.6, "test_examples": 2000},
        {"step": 60, "test_accuracy": 0.64, "test_examples": 10000},
    ]
    assert _same_images_curve(entries) == ((20, 0.5), (40, 0.6), (60, 0.64))
    entries[-1] |= {"test_subset_accuracy": 0.62, "test_subset_examples": 2000}
    assert _same_images_curve(entries) == ((20, 0.5), (40, 0.6), (60, 0.62))
    entries[-1]["test_subset_examples"] = 1000  # other images than the curve's: left as it is
    assert _same_images_curve(entries)[-1] == (60, 0.64)


def test_a_run_driven_by_random_is_l2_stability_against_its_own_last_record(tmp_path):
    run = hand_made_run(tmp_path / "hand")
    stats = json.loads((run / "iter_0/stats.json").read_text())
    (run / "iter_0/stats.json").write_text(json.dumps({b: -v for b, v in stats.items()}))  # reversed
    rep = make_report(tmp_path / "out", run)
    assert any("differs from stats.json" in n for n in rep["notes"])
    assert rep["stability"]["runs"][0]["iterations"][0]["tau"][-1] == pytest.approx(-1.0)
    (run / "run_config.json").write_text(json.dumps({"mode": "construct", "statistic": "random"}))
    rep = make_report(tmp_path / "out2", run)
    (it,) = rep["stability"]["runs"][0]["iterations"]
    assert it["stable_step"] == 30 and it["tau"][-1] == pytest.approx(1.0)
    assert not any("differs from stats.json" in n for n in rep["notes"])
    assert any("driven by random; its stability rows are l2's ranking" in n for n in rep["notes"])


def test_shorter_trainings_of_a_role_are_kept_apart_by_their_steps():
    def run(label, steps, role="envelope", notation="8/2-1/6"):
        final = types.SimpleNamespace(row={"notation": notation, "steps": steps})
        return types.SimpleNamespace(label=label, role=role, dataset="d", steps={"final": final})

    runs = [run("a", 10), run("b", 10), run("c", 40), run("d", 40), run("e", 25, notation="8/1-1/6")]
    runs += [run("f", 10, role="constructed"), run("g", 5, role="oneshot"), run("h", 9, role="oneshot")]
    assert report.length_variants(runs) == {"a": "10 steps", "b": "10 steps", "g": "5 steps"}
