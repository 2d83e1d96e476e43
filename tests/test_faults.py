"""Faults a long run meets: two runs on one directory, a full disk, bad input, corrupt data,
divergence. Each ends in one line on stderr, a non-zero exit code, and no traceback."""

import json
import os
import resource
import socket
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES, _quiet_env

from nac import cli, construct, lock, report, restructure, summary
from nac.errors import NacError

CASE = FIXTURES / "restructure_cases" / "00"


def tree(path):
    """{relative path: bytes} of every file (and `dir/`: None) under `path`."""
    out = {}
    for root, dirs, files in os.walk(path):
        out.update({os.path.relpath(os.path.join(root, d), path) + "/": None for d in dirs})
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def one_line(capsys, code, prog, exit_code=2):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == exit_code, err
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def run_cli(module, argv):
    """Runs a CLI's console entry point in-process; returns its exit code."""
    with pytest.raises(SystemExit) as info:
        module.run(argv)
    return info.value.code


def run_construct(argv):
    """`python -m nac.construct ARGV` in-process (absl parsing, the driver's error handling)."""
    construct.FLAGS.unparse_flags()
    try:
        with pytest.raises(SystemExit) as info:
            args = construct._parse_flags(["nac.construct", *argv])
            try:
                construct.main(args)
            except NacError as e:
                cli.fail(construct.PROG, str(e), e.exit_code)
            raise SystemExit(0)
        return info.value.code
    finally:
        construct.FLAGS.unparse_flags()


TINY = ["--dataset=synthetic", "--envelope=8/2-1/6", "--seed=3", "--noprogress"]


# -- two runs on one run directory ------------------------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(run_dir, pid, **extra):
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "format": lock.FORMAT,
        "pid": pid,
        "hostname": socket.gethostname(),
        "start_ticks": lock._start_ticks(pid),
        "started": time.time(),
        "command": "python -m nac.construct ...",
        **extra,
    }
    (run_dir / lock.LOCK_NAME).write_text(json.dumps(record))
    return record


def test_a_directory_in_use_is_refused_naming_the_process(tmp_path, sleeper, capsys):
    run_dir = tmp_path / "run"
    write_lock(run_dir, sleeper.pid)
    before = tree(run_dir)
    line = one_line(capsys, run_construct([f"--run_dir={run_dir}", *TINY]), "nac.construct")
    assert f"in use by process {sleeper.pid} on host" in line and "another --run_dir" in line
    assert tree(run_dir) == before  # nothing written, the holder's lock kept


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = tmp_path / "run"
    write_lock(run_dir, dead.pid)
    with lock.RunLock(run_dir, "cmd") as held:
        assert held.took_over["pid"] == dead.pid
        mine = json.loads((run_dir / lock.LOCK_NAME).read_text())
        assert mine["pid"] == os.getpid() and mine["command"] == "cmd"
        with pytest.raises(NacError, match=f"in use by process {os.getpid()}"):
            lock.RunLock(run_dir).acquire()  # a second taker while this one holds it
    assert sorted(os.listdir(run_dir)) == []


def test_stale_when_the_pid_is_reused_a_zombie_or_garbage(tmp_path):
    assert lock.process_alive(os.getpid(), lock._start_ticks(os.getpid()))
    assert not lock.process_alive(os.getpid(), lock._start_ticks(os.getpid()) + 1)  # pid reused
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(100):  # not reaped: a zombie
        if lock._state(zombie.pid) == "Z":
            break
        time.sleep(0.05)
    assert not lock.process_alive(zombie.pid)
    zombie.wait()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / lock.LOCK_NAME).write_text("")  # torn by a crash: not a record nac writes
    lock.RunLock(run_dir).acquire().release()


def test_a_lock_from_another_host_is_refused_with_the_fix(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_lock(run_dir, 1, hostname="elsewhere")
    line = one_line(capsys, run_construct([f"--run_dir={run_dir}", *TINY]), "nac.construct")
    assert "process 1 on host 'elsewhere'" in line and f"delete {run_dir / lock.LOCK_NAME}" in line


@pytest.mark.parametrize(
    "strategy, tf_config, chief",
    [
        ("auto", None, True),
        ("auto", {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ("auto", {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ("auto", {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
        (
            "multi_worker",
            {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
            False,
        ),
        (
            "multi_worker",
            {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
            True,
        ),
        ("one_device", {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, True),
    ],
)
def test_only_the_chief_takes_the_lock(strategy, tf_config, chief):
    env = {"TF_CONFIG": json.dumps(tf_config)} if tf_config else {}
    assert lock.is_chief_from_env(strategy, env) is chief


# -- a full disk --------------------------------------------------------------------------------


def test_a_failed_write_names_the_file_and_keeps_the_target(tmp_path):
    from nac.jsonio import write_json

    target = tmp_path / "a.json"
    write_json(target, {"old": 1})

    code = (
        "import resource, sys\n"
        "from nac.jsonio import write_json\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
        "try:\n"
        f"    write_json({str(target)!r}, {{'x': 'y' * 1000}})\n"
        "except OSError as e:\n"
        "    print(e.filename, e.strerror)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_quiet_env())
    assert out.stdout.strip() == f"{target} File too large", out.stderr
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(os.listdir(tmp_path)) == ["a.json"]  # no temporary file left


DISK_FLAGS = [
    "--dataset=synthetic",
    "--envelope=8/2-1/6",
    "--iterations=1",
    "--construction_steps=2",
    "--final_steps=2",
    "--eval_every=2",
    "--stats_every=1",
    "--seed=3",
    "--notensorboard",
    "--nosave_models",
    "--noprogress",
]
# iter_0's largest file (stats_series.json) has 3272 bytes, final's (more branches) 4288.
FILE_SIZE_LIMIT = 3800


def test_a_full_disk_stops_with_one_line_and_the_rerun_completes(tmp_path):
    from nac import arch as arch_lib
    from nac import restructure as rs
    from nac import statsio
    from nac.config import OriginalConfig

    run_dir = tmp_path / "run"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    out = subprocess.run(
        [sys.executable, "-m", "nac.construct", f"--run_dir={run_dir}", *DISK_FLAGS],
        capture_output=True,
        text=True,
        env=_quiet_env(),
        preexec_fn=limit,
        timeout=600,
    )
    assert out.returncode == 4, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("nac.construct: error: ") and "File too large" in last, out.stderr[-3000:]
    assert ".final.partial-" in last and "stats_series.json" in last and "Traceback" not in out.stderr
    assert "rerun the same command" in last
    assert (run_dir / "iter_0" / "stats_series.json").is_file()
    assert not (run_dir / "final").exists()
    assert [p.name for p in run_dir.iterdir() if ".partial-" in p.name]  # left for the next start
    assert not (run_dir / lock.LOCK_NAME).exists()
    iter_0 = tree(run_dir / "iter_0")

    again = subprocess.run(
        [sys.executable, "-m", "nac.construct", f"--run_dir={run_dir}", *DISK_FLAGS],
        capture_output=True,
        text=True,
        env=_quiet_env(),
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "discarded leftovers" in again.stderr and "iter_0: done earlier, kept" in again.stderr
    assert tree(run_dir / "iter_0") == iter_0
    assert not [p for p in run_dir.iterdir() if ".partial-" in p.name]
    assert json.loads((run_dir / "summary.json").read_text())["complete"]
    # The same result as a run that never failed: the final network is iter_0's restructure.
    config = OriginalConfig.load(run_dir / "config.json")
    body = arch_lib.body_from_original(json.loads((run_dir / "iter_0" / "network.json").read_text()))
    expected = rs.restructure(
        config.network(body),
        statsio.read_stats(run_dir / "iter_0" / "stats.json"),
        rs.Policy.from_config(config),
    )
    assert json.loads((run_dir / "final" / "network.json").read_text()) == expected.arch_json()


# -- a matrix of bad inputs ---------------------------------------------------------------------


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def _summary(**extra):
    return json.dumps(
        {
            "format": "nac-summary/1",
            "role": "envelope",
            "mode": "oneshot",
            "dataset": "synthetic",
            "steps": [],
            **extra,
        }
    )


def rs(stats="{c}/stats.json", arch="{c}/arch.json", config="{c}/config.json", out="{t}/o.json", *extra):
    """nac.restructure arguments: the restructure case's files unless given."""
    return [f"--config={config}", f"--arch={arch}", f"--stats={stats}", f"--out={out}", *extra]


# (tool, arguments with {t} = a fresh temporary directory and {c} = the restructure case,
#  files to create under {t} first, what the line must say).
MATRIX = [
    # nac.construct: flags (wrong types, out-of-range values), files, run directories.
    ("construct", ["--run_dir={t}/run", "--iterations=two"], {}, "iterations"),
    ("construct", ["--run_dir={t}/run", "--batch_size=-5"], {}, "--batch_size"),
    ("construct", ["--run_dir={t}/run", "--learning_rate=-1"], {}, "learning_rate"),
    ("construct", ["--run_dir={t}/run", "--image_size=0"], {}, "image_size"),
    ("construct", ["--run_dir={t}/run", "--mode=oneshot", "--arch={t}/none.json"], {}, "does not exist"),
    (
        "construct",
        ["--run_dir={t}/run", "--mode=oneshot", "--arch={t}/a.json"],
        {"a.json": '{"a": 1}'},
        "a.json",
    ),
    ("construct", ["--run_dir={t}/run", "--config={t}"], {}, "is a directory"),
    ("construct", ["--run_dir={t}/run", "--config={t}/c.json"], {"c.json": "[1, 2]"}, "c.json"),
    ("construct", ["--run_dir={t}/file"], {"file": "x"}, "file"),
    ("construct", ["--run_dir={t}/run"], {"run/run_config.json": "[]"}, "run_config.json"),
    (
        "construct",
        ["--run_dir={t}/run"],
        {"run/run_config.json": '{"iterations": "x", "mode": 3}'},
        "run_config.json",
    ),
    ("construct", ["--run_dir={t}/run"], {"run/run_config.json": "{"}, "not valid JSON"),
    # nac.restructure
    ("restructure", rs(stats="{t}/no.json"), {}, "does not exist"),
    ("restructure", rs(stats="{t}/s.json"), {"s.json": "[1, 2]"}, "s.json"),
    (
        "restructure",
        rs(stats="{t}/s.json"),
        {"s.json": '{"Cell99/Branch1": 1.0}'},
        "'Cell99/Branch1' is not a branch",
    ),
    ("restructure", rs(stats="{t}/s.json"), {"s.json": '{"Cell1/Branch1": 1.0}'}, "has no value"),
    ("restructure", rs(stats="{t}/s.json"), {"s.json": '{"Cell1/Branch1": "big"}'}, "expected a number"),
    ("restructure", rs(stats="{t}/s.log"), {"s.log": "nothing here\n"}, "no MeanSSS"),
    ("restructure", rs(arch="{t}/a.json"), {"a.json": '{"not": "a list"}'}, "a.json"),
    ("restructure", rs(arch="{t}/a.json"), {"a.json": '[{"filters": 1}'}, "not valid JSON"),
    ("restructure", rs(config="{t}/c.json"), {"c.json": '{"parameters": 3}'}, "c.json"),
    ("restructure", rs(out="{t}"), {}, "cannot write"),
    ("restructure", rs(stats="{t}/s.json"), {"s.json": b"\xff\xfe\x00garbage"}, "cannot read statistics file"),
    ("restructure", [*rs(stats="{c}/res.log"), "--metric=mean"], {}, "--metric"),
    # nac.summary
    ("summary", ["hello"], {}, "not an existing file and not a notation"),
    ("summary", ["8/0-1/6"], {}, "8/0-1/6"),
    ("summary", ["8/2-1/6", "--image_size=0"], {}, "--image_size"),
    ("summary", ["8/2-1/6", "--image_size=big"], {}, "image_size"),
    ("summary", ["8/2-1/6", "--num_classes=1"], {}, "--num_classes"),
    ("summary", ["{t}/n.json"], {"n.json": '{"foo": 1}'}, "n.json"),
    ("summary", ["{t}/n.json"], {"n.json": '{"format": "nac-network/1"}'}, "network"),
    ("summary", ["{t}"], {}, "is a directory"),
    ("summary", ["{t}/n.json"], {"n.json": b"\x89PNG\xff\xfe"}, "cannot read file"),
    # nac.report
    ("report", ["{t}/none", "--out={t}/o"], {}, "does not exist"),
    ("report", ["{t}", "--out={t}/o"], {}, "not a run directory"),
    (
        "report",
        ["{t}/rundir", "--out={t}/o"],
        {"rundir/summary.json": _summary(format="nac-summary/2")},
        "nac-summary/1",
    ),
    ("report", ["{t}/rundir", "--out={t}/o"], {"rundir/summary.json": "[]"}, "nac-summary/1"),
    (
        "report",
        ["{t}/rundir", "--out={t}/o"],
        {"rundir/summary.json": _summary(steps=[{"name": "final"}])},
        "steps[0]",
    ),
    ("report", ["{t}/rundir", "--out={t}/o"], {"rundir/run_config.json": "[]"}, "run_config.json"),
    (
        "report",
        ["{t}/rundir", "--out={t}/o"],
        {"rundir/summary.json": _summary(), "rundir/final/metrics.json": '{"name": '},
        "not valid JSON",
    ),
    (
        "report",
        ["{t}/rundir", "--out={t}/o", "--iteration=-1"],
        {"rundir/summary.json": _summary()},
        "--iteration",
    ),
    (
        "report",
        ["{t}/rundir", "--out={t}/o", "--stability_threshold=2"],
        {"rundir/summary.json": _summary()},
        "--stability_threshold",
    ),
    ("report", ["{t}/rundir", "--out={t}/f"], {"rundir/summary.json": _summary(), "f": ""}, "is a file"),
]
MODULES = {"restructure": restructure, "summary": summary, "report": report}


@pytest.mark.parametrize(
    "tool, argv, files, message", MATRIX, ids=[f"{m[0]}-{i}" for i, m in enumerate(MATRIX)]
)
def test_bad_input_matrix(tool, argv, files, message, tmp_path, capsys):
    t = tmp_path / "in"
    t.mkdir()
    for name, text in files.items():
        _write(t / name, text)
    argv = [a.format(t=t, c=CASE) for a in argv]
    before = tree(tmp_path)
    if tool == "construct":
        code = run_construct(argv if any(a.startswith("--envelope") for a in argv) else [*argv, *TINY])
    else:
        code = run_cli(MODULES[tool], argv)
    line = one_line(capsys, code, f"nac.{tool}")
    assert message.format(t=t) in line, line
    assert tree(tmp_path) == before  # nothing written anywhere, nothing changed
    assert sorted(os.listdir(tmp_path)) == ["in"]
