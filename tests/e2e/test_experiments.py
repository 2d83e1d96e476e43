"""The shipped flagfiles and the driver's informational modes (--dry_run, --help), run as a user would.

These runs validate and describe without importing TensorFlow, so each takes well under a second.
"""

import os
import pathlib
import subprocess

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
