"""What a user sees: short log lines in a file, clean exits on a closed pipe and a missing flagfile."""

import re
import subprocess
import sys

from conftest import construct


def test_a_run_piped_to_a_file_has_short_lines(finished_run):
    err = (finished_run.parent / "stderr.txt").read_text()
    lines = err.strip().splitlines()
    assert lines and all(re.match(r"\d\d:\d\d:\d\d \S", line) for line in lines), err[:2000]
    assert not re.search(r"^[IWE]\d{4} |\.py:\d+\]", err, re.MULTILINE), err[:2000]
    assert any(" iter_0: training " in line for line in lines)


def test_a_missing_flagfile_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nope.flags"
    out = construct(f"--flagfile={missing}")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--flagfile={missing}" in lines[0] and "ERROR::" not in lines[0], out.stderr


def _into_a_closed_pipe(*args):
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()  # the reader is gone before the command writes anything
    err = proc.stderr.read()
    return proc.wait(timeout=120), err


def test_output_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    code, err = _into_a_closed_pipe("nac.summary", "128/10-1-1-1/6", "--json")
    assert (code, err) == (141, "")
    code, err = _into_a_closed_pipe(
        "nac.construct", "--dataset=synthetic", "--envelope=8/2-1/6", f"--run_dir={tmp_path}/r", "--dry_run"
    )
    assert (code, err) == (141, "")
