"""The shipped flagfiles and the driver's informational modes (--dry_run, --help), run as a user would.

These runs validate and describe without importing TensorFlow, so each takes well under a second.
"""

import pathlib

import pytest
from conftest import RUN_FLAGS, construct

EXPERIMENTS = pathlib.Path(__file__).parent.parent / "experiments"
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
