"""Faults a long run meets: two runs on one directory, a full disk, bad input, corrupt data,
divergence. Each ends in one line on stderr, a non-zero exit code, and no traceback."""

import dataclasses
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import FIXTURES, _quiet_env
from helpers import run_config, synthetic_data

from nac.cli import common as cli
from nac.cli import construct, report, restructure, summary
from nac.run import lock
from nac.spec.errors import NacError

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
    from nac.spec.jsonio import write_json

    target = tmp_path / "a.json"
    write_json(target, {"old": 1})

    code = (
        "import resource, sys\n"
        "from nac.spec.jsonio import write_json\n"
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


# Larger than every file of the step but its SavedModel's graph (saved_model.pb, ~0.8 MB).
FILE_SIZE_LIMIT = 200_000
DISK_FLAGS = (
    "--mode=oneshot",
    "--dataset=synthetic",
    "--envelope=8/2-1/6",
    "--final_steps=2",
    "--eval_every=2",
    "--seed=5",
    "--notensorboard",
    "--noprogress",
)


def test_a_full_disk_stops_with_one_line_and_the_rerun_completes(tmp_path):
    from conftest import construct

    run_dir = tmp_path / "run"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    out = construct(f"--run_dir={run_dir}", *DISK_FLAGS, preexec_fn=limit)
    assert out.returncode == 4, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("nac.construct: error: cannot write "), out.stderr[-3000:]
    assert ".final.partial-" in last and "saved_model" in last and "File too large" in last
    assert "rerun the same command" in last and "Traceback" not in out.stderr
    assert not (run_dir / "final").exists() and not (run_dir / "summary.json").exists()
    (staged,) = [p for p in run_dir.iterdir() if ".partial-" in p.name]  # left for the next start
    failed = {n: json.loads((staged / n).read_text()) for n in ("network.json", "stats.json", "metrics.json")}
    assert not (run_dir / lock.LOCK_NAME).exists()

    # Space freed; the output options may change without --force.
    again = construct(f"--run_dir={run_dir}", *DISK_FLAGS, "--nosave_models")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "discarded leftovers" in again.stderr
    assert not [p for p in run_dir.iterdir() if ".partial-" in p.name]
    assert json.loads((run_dir / "summary.json").read_text())["complete"]
    # The same result as the attempt that could not write it.
    done = {n: json.loads((run_dir / "final" / n).read_text()) for n in failed}
    assert done["network.json"] == failed["network.json"]
    assert done["stats.json"] == pytest.approx(failed["stats.json"], rel=1e-6)
    assert (
        done["metrics.json"]["history"][-1]["test_accuracy"]
        == failed["metrics.json"]["history"][-1]["test_accuracy"]
    )


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


# The run configuration of another run (another envelope and seed).
OTHER_RUN = json.dumps(
    run_config(run_dir="elsewhere", dataset="synthetic", envelope="8/1/6", seed=1).to_flat()
)

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
    ("construct", ["--run_dir={t}/file"], {"file": "x"}, "is a file; pass a directory"),
    (
        "construct",
        ["--run_dir={t}/run"],
        {"run/run_config.json": OTHER_RUN},
        "holds a run with other settings",
    ),
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
    ("restructure", rs(stats="{t}/s.json"), {"s.json": "[1, 2]"}, "expected a JSON object"),
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
    (
        "restructure",
        rs(stats="{t}/s.json"),
        {"s.json": b"\xff\xfe\x00garbage"},
        "cannot read statistics file",
    ),
    ("restructure", [*rs(stats="{c}/res.log"), "--metric=mean"], {}, "--metric"),
    # nac.summary
    ("summary", ["hello"], {}, "not an existing file and not a notation"),
    ("summary", ["8/0-1/6"], {}, "8/0-1/6"),
    ("summary", ["8/2-1/6", "--image_size=0"], {}, "--image_size"),
    ("summary", ["8/2-1/6", "--image_size=big"], {}, "image_size"),
    ("summary", ["8/2-1/6", "--num_classes=1"], {}, "--num_classes"),
    ("summary", ["{t}/n.json"], {"n.json": '{"foo": 1}'}, "n.json"),
    ("summary", ["{t}/n.json"], {"n.json": '{"format": "nac-network/1"}'}, "n.json: network"),
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


# -- divergence ----------------------------------------------------------------------------------

IMAGE, BATCH = 8, 32


@pytest.fixture(scope="module")
def tiny_data():
    return synthetic_data(IMAGE, 128, 64)


def test_divergence_checks():
    from nac.net.divergence import Diverged, check_loss, check_metrics, checked_metrics, float32_or_raise

    check_loss(3, 2.3e9, 0.0)  # huge is not divergence; non-finite is
    with pytest.raises(Diverged, match="training loss is nan") as info:
        check_loss(3, float("nan"))
    assert info.value.step == 3 and info.value.exit_code == 3
    with pytest.raises(Diverged, match="evaluation test loss is inf"):
        check_metrics(4, {"test_accuracy": 0.1, "test_loss": float("inf")})
    with np.errstate(over="raise"):  # no RuntimeWarning: the overflow is the error
        with pytest.raises(Diverged, match="batch-norm variance of bn is inf"):
            float32_or_raise(np.array([1.0, 1e300]), "batch-norm variance of bn")
    with pytest.raises(Diverged, match="at training step 6: the batch-norm mean of bn is inf"):
        checked_metrics(6, float32_or_raise, [np.inf], "batch-norm mean of bn")  # gets the step
    assert checked_metrics(6, dict, test_loss=2.0) == {"test_loss": 2.0}
    info.value.step_name, info.value.learning_rate = "iter_1", 1e6
    text = str(info.value)
    assert text.startswith("iter_1: training diverged at training step 3: the training loss is nan")
    assert "lower --learning_rate (now 1e+06)" in text and "--force" in text and "\n" not in text


def test_a_huge_learning_rate_diverges_in_the_trainer(tiny_data):
    import keras

    from nac.net.divergence import Diverged
    from nac.spec import arch
    from nac.training import train as T

    keras.utils.set_random_seed(0)
    config = T.TrainConfig(steps=6, batch_size=BATCH, learning_rate=1e30, bn_recalibration_examples=BATCH)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, config)
    with pytest.raises(Diverged) as info:
        trainer.train(tiny_data)
    assert info.value.step is not None and info.value.step <= 6
    assert not np.isfinite(info.value.value)


def test_loss_scale_skips_are_not_divergence(tiny_data):
    import keras

    from nac.spec import arch
    from nac.training import train as T

    keras.utils.set_random_seed(0)
    config = T.TrainConfig(steps=2, batch_size=BATCH, mixed_precision=True, bn_recalibration_examples=BATCH)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, config)
    initial = [w.numpy().copy() for w in trainer.model.trainable_weights]

    class HugeScale(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # float16 gradients overflow: every step is skipped
            trainer.optimizer.dynamic_scale.assign(1e30)

    result = trainer.train(tiny_data, callbacks=[HugeScale()])
    assert float(trainer.optimizer.dynamic_scale.numpy()) < 1e30  # the scale was lowered: skips
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(initial, result.model.trainable_weights))
    assert all(np.isfinite(loss) for _, loss in result.loss_curve)


def test_mixed_precision_tolerates_a_few_non_finite_losses():
    """A non-finite loss is divergence at once in float32; with mixed precision only when it
    persists for MIXED_PRECISION_PATIENCE reads (the loss-scale optimizer skips such steps)."""
    from nac.net import divergence

    with pytest.raises(divergence.Diverged):
        divergence.LossWatch(False).check(1, float("nan"))
    watch = divergence.LossWatch(True)
    for step in range(1, divergence.MIXED_PRECISION_PATIENCE):
        watch.check(step, float("inf"))
    watch.check(10, 1.0)  # a finite loss resets the count
    for step in range(11, 10 + divergence.MIXED_PRECISION_PATIENCE):
        watch.check(step, float("nan"))
    with pytest.raises(divergence.Diverged) as info:
        watch.check(99, float("nan"))
    assert info.value.step == 99


def test_a_diverged_step_is_one_line_and_writes_nothing(finished_run, tmp_path):
    from conftest import RUN_FLAGS, construct

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    shutil.rmtree(run_dir / "final")  # as if killed before the final training
    kept = {name: tree(run_dir / name) for name in ("iter_0", "iter_1")}
    summary_before = (run_dir / "summary.json").read_bytes()
    out = construct(f"--run_dir={run_dir}", *RUN_FLAGS, "--learning_rate=1e30", "--force")
    assert out.returncode == 3, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("nac.construct: error: final: training diverged at training step ")
    assert "lower --learning_rate (now 1e+30)" in last and "--force" in last
    assert "Traceback" not in out.stderr and "RuntimeWarning" not in out.stderr
    assert "iter_0: done earlier, kept" in out.stderr
    assert not (run_dir / "final").exists()
    assert not [p for p in run_dir.iterdir() if ".partial-" in p.name or p.name == lock.LOCK_NAME]
    assert {name: tree(run_dir / name) for name in kept} == kept
    assert (run_dir / "summary.json").read_bytes() == summary_before


# -- corrupt data ----------------------------------------------------------------------------------


def _idx_dir(directory, cut):
    from formats import write_idx

    write_idx(directory, compressed=False)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-cut])  # a header that promises more than is there
    return path


def _cifar_dir(directory, cut):
    from formats import write_cifar_dir

    write_cifar_dir(directory / "cifar-10-batches-bin")
    path = directory / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-cut])
    return path


@pytest.mark.parametrize(
    "dataset, make, expected",
    [("fashion_mnist", _idx_dir, "truncated"), ("cifar10", _cifar_dir, "truncated or corrupt")],
)
def test_a_truncated_data_file_at_start_up_is_one_line(dataset, make, expected, tmp_path, capsys):
    bad = make(tmp_path / "data", 100)
    run_dir = tmp_path / "run"
    argv = [
        f"--run_dir={run_dir}",
        f"--dataset={dataset}",
        f"--data_dir={tmp_path / 'data'}",
        "--envelope=8/2-1/6",
    ]
    line = one_line(capsys, run_construct([*argv, "--noprogress"]), "nac.construct")
    assert str(bad) in line and expected in line, line
    assert tree(run_dir) == {}  # no file written; the lock is given back


def test_a_corrupt_record_file_mid_epoch_is_one_line(tiny_data, tmp_path):
    import types

    import keras
    import tensorflow as tf

    from nac.run import runner
    from nac.run.step import training_errors
    from nac.spec import arch
    from nac.spec.errors import DataError
    from nac.training import train as T

    path = tmp_path / "imagenet" / "train.tfrecord-00000-of-00001"
    path.parent.mkdir()
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(4 * BATCH):
            writer.write(
                rng.standard_normal((IMAGE, IMAGE, 3)).astype(np.float32).tobytes() + bytes([i % 10])
            )
    content = bytearray(path.read_bytes())
    content[len(content) * 3 // 4] ^= 0xFF  # a flipped bit in the fourth batch's records
    path.write_bytes(bytes(content))

    def parse(record):
        values = tf.io.decode_raw(record, tf.uint8)
        image = tf.reshape(
            tf.io.decode_raw(tf.strings.substr(record, 0, IMAGE * IMAGE * 12), tf.float32), (IMAGE, IMAGE, 3)
        )
        return image, tf.cast(values[-1], tf.int32)

    def train(batch_size, **kwargs):
        return tf.data.TFRecordDataset(str(path)).map(parse).batch(batch_size, drop_remainder=True).repeat()

    data = types.SimpleNamespace(
        info=dataclasses.replace(tiny_data.info, source=f"tfds:imagenet2012 ({path.parent})"),
        train=train,
        evaluation=tiny_data.evaluation,
    )
    steps = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch + 1)

    keras.utils.set_random_seed(0)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, T.TrainConfig(steps=6, batch_size=BATCH))
    run = runner.Runner(run_config(run_dir=str(tmp_path / "run"), dataset="imagenet2012"))
    run.data = data
    with pytest.raises(DataError) as info:
        with training_errors(run, "final"):
            trainer.train(data, callbacks=[Count()])
    assert steps == [1, 2, 3]  # mid-epoch: three batches trained before the corrupt record
    text = str(info.value)
    assert "\n" not in text and str(path.parent) in text and "corrupted record" in text, text


def test_the_lock_without_hard_links(tmp_path, monkeypatch):
    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    held = lock.RunLock(tmp_path / "run").acquire()
    assert json.loads((tmp_path / "run" / lock.LOCK_NAME).read_text())["pid"] == os.getpid()
    with pytest.raises(NacError, match="in use by process"):
        lock.RunLock(tmp_path / "run").acquire()
    held.release()
    assert os.listdir(tmp_path / "run") == []


def test_a_short_record_set_at_start_up_is_one_line(tmp_path, monkeypatch):
    import types

    import tensorflow_datasets as tfds

    from nac.data import datasources
    from nac.data import pipelines as data
    from nac.spec.errors import DataError

    # tfds reads a truncated last record as no record: 12 examples where the metadata says 13.
    splits = {s: types.SimpleNamespace(num_examples=13, num_bytes=0, name=s) for s in ("train", "test")}
    monkeypatch.setattr(tfds.core.DatasetInfo, "splits", property(lambda self: splits))
    monkeypatch.setattr(datasources, "online", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=12), pytest.raises(DataError) as info:
        data.load(data.DataConfig("mnist", data_dir=str(tmp_path), seed=1))
    text = str(info.value)
    assert "\n" not in text and "hold 12 examples" in text and "says 13" in text and "truncated" in text, text


def test_a_non_finite_featuremap_statistic_is_divergence():
    from nac.net.divergence import Diverged
    from nac.net.model import build_model, taps
    from nac.net.stats import FeaturemapStatistics
    from nac.spec import arch

    model = build_model(arch.network_from_notation("4/1/2"), IMAGE)
    callback = FeaturemapStatistics(model, BATCH)
    for i, tap in enumerate(taps(model).values()):
        tap.images.assign(float(BATCH))
        tap.l2_sum.assign(float("inf") if i == 1 else 1.0)
    with pytest.raises(Diverged, match=r"featuremap statistic of Cell1/Branch2 is inf") as info:
        callback.values()
    assert info.value.exit_code == 3
