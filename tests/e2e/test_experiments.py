"""The shipped flagfiles and the driver's informational modes (--dry_run, --help), run as a user would.

These runs validate and describe without importing TensorFlow, so each takes well under a second.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import RUN_FLAGS, construct

EXPERIMENTS = pathlib.Path(__file__).parents[2] / "experiments"
FLAGFILES = sorted(EXPERIMENTS.glob("*.flags"))
# A random-baseline flagfile names the final network of an earlier run; a preset stands in for it.
NEEDS_ARCH = {"envelope_a_random.flags": str(EXPERIMENTS / "presets" / "constructed_a.json")}


def test_there_are_flagfiles():
    assert len(FLAGFILES) >= 8, FLAGFILES


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=lambda p: p.name)
def test_every_flagfile_passes_a_dry_run(flagfile, tmp_path):
    extra = [f"--arch={NEEDS_ARCH[flagfile.name]}"] if flagfile.name in NEEDS_ARCH else []
    run_dir = tmp_path / "run"
    out = construct(f"--flagfile={flagfile}", "--dry_run", f"--run_dir={run_dir}", *extra)
    assert out.returncode == 0, out.stderr
    assert "trainable parameters" in out.stdout and f"artefacts in {run_dir}" in out.stdout
    assert not run_dir.exists(), "--dry_run must not write anything"


def test_help_exits_zero_and_lists_the_groups():
    out = construct("--helpfull")
    assert out.returncode == 0, out.stderr
    for group in ("[data]", "[search]", "[statistic]", "[training]", "[runtime]", "[output]"):
        assert group in out.stdout, group
    assert construct("--help").returncode == 0


def test_flags_txt_replays_as_a_flagfile(finished_run):
    """A run's flags.txt is a flagfile: replayed, it describes the same run in the same directory."""
    replay = construct(f"--flagfile={finished_run / 'flags.txt'}", "--dry_run")
    assert replay.returncode == 0, replay.stderr
    direct = construct(*RUN_FLAGS, f"--run_dir={finished_run}", "--dry_run")
    assert direct.returncode == 0, direct.stderr
    assert replay.stdout == direct.stdout
    assert "seed 3" in replay.stdout and "2 iterations of 12 steps" in replay.stdout


def test_study_script_runs_every_role_and_reports_only_run_directories(tmp_path):
    """experiments/study.sh with a stand-in Python that records its calls: one nac.construct
    run per role and seed, then nac.report over exactly those run directories (its globs once
    also passed the NAME.log files it writes beside them, and the report step failed)."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'for a in "$@"; do case "$a" in --run_dir=*) mkdir -p "${a#--run_dir=}";; esac; done\n'
    )
    fake.chmod(0o755)
    out_dir, report = tmp_path / "study", tmp_path / "report"
    env = dict(os.environ, PYTHON=str(fake), STUDY_DIR=str(out_dir), STUDY_REPORT=str(report), JOBS="2")
    done = subprocess.run(
        ["bash", str(EXPERIMENTS / "study.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    runs = {
        a.split("=", 1)[1]
        for line in lines
        if "nac.construct" in line
        for a in line.split()
        if "--run_dir=" in a
    }
    names = {"envelope_s1"} | {
        f"{r}_s{s}" for r in ("constructed", "worstcase", "random", "stopinherit") for s in (1, 2, 3)
    }
    assert runs == {str(out_dir / n) for n in names}
    (report_line,) = [line for line in lines if "nac.report" in line]
    args = report_line.split()
    reported = args[args.index("nac.report") + 1 : args.index("--out")]
    assert sorted(reported) == sorted(runs) and all(pathlib.Path(p).is_dir() for p in reported)
    assert any(p.name.endswith(".log") for p in out_dir.iterdir())  # the logs the globs caught


FAKE_NAC = """#!{python}
import json, os, pathlib, sys
args = sys.argv[1:]
with open({calls!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
if args[:2] == ["-m", "nac.construct"]:
    run = pathlib.Path([a for a in args if a.startswith("--run_dir=")][0].split("=", 1)[1])
    if run.name == os.environ.get("FAIL_RUN"):
        sys.exit(3)
    (run / "final").mkdir(parents=True, exist_ok=True)
elif args[:2] == ["-m", "nac.ablate"]:
    tau = {{"l2": 0.3, "variance": 0.1, "taylor": 0.5, "l1_kernel": -0.2, "snip": 0.2, "random": 0.0}}
    stages = [{{"stage": 0, "tau": {{k: {{"value": v}} for k, v in tau.items()}}}}]
    pathlib.Path(args[2], "ablation.json").write_text(json.dumps({{"stages": stages}}))
"""


def _fake_nac(tmp_path):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(FAKE_NAC.format(python=sys.executable, calls=str(calls)))
    fake.chmod(0o755)
    return fake, calls


def _study(tmp_path, fake, *extra, env=None):
    return subprocess.run(
        [sys.executable, str(EXPERIMENTS / "study.py"), "--scale=pilot", f"--python={fake}",
         f"--out={tmp_path / 'study'}", *extra],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})),
    )  # fmt: skip


def test_study_py_runs_both_parts_picks_the_best_criterion_and_reports(tmp_path):
    """experiments/study.py with a stand-in Python: part 1's runs are ablated, the best other
    criterion of part 1 (the fake's ablations rank taylor first) drives part 2's fourth role,
    and nac.report reads exactly the run directories."""
    fake, calls = _fake_nac(tmp_path)
    done = _study(tmp_path, fake)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = calls.read_text().splitlines()
    out = tmp_path / "study"
    assert json.loads((out / "best_criterion.json").read_text())["criterion"] == "taylor"
    best = [line for line in lines if "construct_best_s1" in line]
    assert best and "--statistic=taylor" in best[0]
    ablated = {line.split()[2] for line in lines if "nac.ablate" in line}
    assert ablated == {str(out / f"mech_s{s}_{n}" / "final") for s in (1, 2) for n in (10, 20, 40, 120)}
    design = json.loads((out / "design.json").read_text())
    assert design["power"]["pairs"] == 2 and design["power"]["min_detectable_difference_points"] > 5
    (report,) = [line.split() for line in lines if "nac.report" in line]
    reported = report[report.index("nac.report") + 1 : report.index("--out")]
    assert len(reported) == 8 + 8 + 2 + 1 and all(pathlib.Path(p).is_dir() for p in reported)
    assert report[-1] == "--formats=png"
    assert all(
        "--skip" in line and "--validation_examples=2000" in line for line in lines if "construct " in line
    )
    calls.write_text("")
    again = _study(tmp_path, fake)  # rerun: every construction again (nac.construct skips
    assert again.returncode == 0 and (out / "best_criterion.json").exists()  # finished runs)
    rerun = calls.read_text()
    assert "nac.ablate" not in rerun and rerun.count("nac.construct") == 8 + 8 + 2 + 1


def test_study_py_does_not_run_what_needs_a_failed_run(tmp_path):
    fake, calls = _fake_nac(tmp_path)
    done = _study(tmp_path, fake, env={"FAIL_RUN": "construct_l2_s1"})
    assert done.returncode == 1
    assert "construct_l2_s1" in done.stderr and "rerun to resume" in done.stderr
    text = calls.read_text()
    assert "matched_s2" in text and "matched_s1" not in text and "retrain_r1" not in text
    assert "nac.report" not in text


def test_study_py_dry_run_prints_the_plan_and_the_power_and_writes_nothing(tmp_path):
    fake, calls = _fake_nac(tmp_path)
    done = _study(tmp_path, fake, "--dry_run")
    assert done.returncode == 0, done.stderr
    assert "2 pairs detect" in done.stdout and "construct_best_s1 (after part 1)" in done.stdout
    assert not calls.exists() and not (tmp_path / "study").exists()
