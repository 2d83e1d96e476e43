"""End to end: `python -m nac.construct` on synthetic data, resume, modes, bad flags."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import RUN_FLAGS, STEP_FILES, construct, start
from helpers import assert_replays, run_config

from nac.cli import restructure as restructure_cli
from nac.run.original import original_config
from nac.search import restructure as restructure_lib
from nac.search import statsio
from nac.spec import arch, cost
from nac.spec.config import OriginalConfig
from nac.spec.errors import ConfigError


def tree_digest(path):
    """{relative path: sha256} of every file under `path`."""
    digests = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                digests[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return digests


def architectures(run_dir):
    return {
        name: json.loads((run_dir / name / "network.json").read_text())
        for name in ("iter_0", "iter_1", "final")
    }


def test_every_artefact_is_present_and_valid(finished_run):
    import tensorflow as tf

    run = finished_run
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "final",
        "flags.txt",
        "iter_0",
        "iter_1",
        "run_config.json",
        "summary.json",
    ]
    for name in ("iter_0", "iter_1", "final"):
        step = run / name
        for file in STEP_FILES:
            assert (step / file).exists(), f"{name}/{file}"
        text = (step / "network.json").read_text()
        body = arch.body_from_original(json.loads(text))
        assert text.strip() == json.dumps(json.loads(text), indent=4, sort_keys=True)
        network = arch.Network(body, arch.Stem.conv1x1(8))
        ids = {b.original for b in network.branch_ids()}
        stats = statsio.read_stats(step / "stats.json")
        assert set(stats) == ids
        assert statsio.read_stats(step / "res.log") == pytest.approx(stats)
        series = json.loads((step / "stats_series.json").read_text())
        assert series["steps"] == [4, 8, 12]
        first = network.branch_ids()[0].original
        assert set(series["values"]) == ids and series["values"][first][-1] == pytest.approx(stats[first])
        metrics = json.loads((step / "metrics.json").read_text())
        assert [h["step"] for h in metrics["history"]] == [6, 12]
        assert metrics["steps"] == 12 and metrics["trainable_params"] > 0 and metrics["flops_per_image"] > 0
        assert 0 <= metrics["test_accuracy"] <= 1 and metrics["images_per_sec"] > 0
        assert list((step / "tensorboard").glob("events.out.tfevents.*"))
        serving = tf.saved_model.load(str(step / "saved_model")).signatures["serving_default"]
        logits = serving(pixels=tf.zeros((2, 16, 16, 3)))["logits"]
        assert logits.shape == (2, 10)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["role"] == "constructed"
    epochs = 12 * 50 / 512
    assert summary["construction_cost_epochs"] == pytest.approx(2 * epochs + epochs)
    assert [s["name"] for s in summary["steps"]] == ["iter_0", "iter_1", "final"]
    assert summary["final"]["notation"] == "8/4-3/6"


CHATTER = re.compile(
    r"absl::InitializeLog|cudart_stub|cuInit|oneDNN|functional_saver|fingerprint|"
    r"signature_serialization|Sharding callback|UserWarning|retracing|"
    r"^[IWE]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]",  # any C++ log line of TensorFlow
    re.MULTILINE,
)


def test_default_run_prints_nac_lines_and_no_tensorflow_chatter(finished_run):
    """The shared construction runs with the user's default environment and exports models."""
    out = (finished_run.parent / "stdout.txt").read_text()
    err = (finished_run.parent / "stderr.txt").read_text()
    assert (finished_run / "final" / "saved_model").is_dir()
    assert "iter_0: training" in err and "done: " in err
    assert not CHATTER.findall(out + err), CHATTER.findall(out + err)


def test_restructure_cli_replays_every_iteration(finished_run, tmp_path):
    run = finished_run
    assert_replays(run, tmp_path)


# The shared construction's flags without its outputs (SavedModels, TensorBoard): a run that
# computes the same steps, cheaper.
COMPUTE_FLAGS = [f for f in RUN_FLAGS if f != "--save_iteration_models"] + [
    "--nosave_models",
    "--notensorboard",
]


def test_resume_after_sigkill_gives_the_same_run(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    proc = start(f"--run_dir={run_dir}", *COMPUTE_FLAGS)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill while iteration 1 trains
        if (run_dir / "iter_0").exists() and any(
            p.name.startswith(".iter_1.partial") for p in run_dir.iterdir()
        ):
            break
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    else:
        pytest.fail("iteration 1 did not start in time")
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    assert not (run_dir / "iter_1").exists()
    iter_0 = tree_digest(run_dir / "iter_0")

    out = construct(f"--run_dir={run_dir}", *COMPUTE_FLAGS)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "iter_0: done earlier, kept" in out.stderr
    assert "discarded leftovers" in out.stderr
    assert tree_digest(run_dir / "iter_0") == iter_0
    assert not [p for p in run_dir.iterdir() if "partial" in p.name]
    assert architectures(run_dir) == architectures(finished_run)
    assert json.loads((run_dir / "iter_1" / "stats.json").read_text()) == pytest.approx(
        json.loads((finished_run / "iter_1" / "stats.json").read_text()), rel=1e-6
    )

    before = tree_digest(run_dir)
    again = construct(f"--run_dir={run_dir}", *COMPUTE_FLAGS)
    assert again.returncode == 0 and "complete" in again.stderr
    assert tree_digest(run_dir) == before


def test_resume_with_other_flags_is_refused(finished_run):
    before = tree_digest(finished_run)
    flags = [f for f in RUN_FLAGS if not f.startswith("--iterations")] + ["--iterations=3"]
    out = construct(f"--run_dir={finished_run}", *flags)
    assert out.returncode == 2
    assert "iterations: 2 -> 3" in out.stderr and "--force" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert tree_digest(finished_run) == before


def test_sigterm_stops_at_a_step_boundary(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(
        f"--run_dir={run_dir}",
        "--mode=oneshot",
        "--dataset=synthetic",
        "--envelope=8/1/6",
        "--final_steps=100000",
        "--seed=1",
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".final.partial") for p in run_dir.glob(".*")):
        time.sleep(0.2)
    time.sleep(8)  # let training start
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "rerun the same command to resume" in err
    assert not (run_dir / "final").exists()
    assert not [p for p in run_dir.iterdir() if "partial" in p.name]


def test_random_and_oneshot_modes(finished_run, random_run, envelope_run):
    final_arch = finished_run / "final" / "network.json"
    reference = arch.Network(
        arch.body_from_original(json.loads(final_arch.read_text())), arch.Stem.conv1x1(8)
    )
    nets = []
    for j in range(2):
        body = arch.body_from_original(json.loads((random_run / f"random_{j}" / "network.json").read_text()))
        net = arch.Network(body, arch.Stem.conv1x1(8))
        assert net.layers_per_stage() == reference.layers_per_stage()
        assert net.branches_per_stage() == reference.branches_per_stage()
        nets.append(net)
    assert nets[0] != nets[1]
    summary = json.loads((random_run / "summary.json").read_text())
    assert summary["role"] == "random" and summary["complete"]
    steps = sorted(p.name for p in envelope_run.iterdir() if p.is_dir())
    assert steps == ["final"]
    assert json.loads((envelope_run / "summary.json").read_text())["role"] == "envelope"


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--batch_size=0"], "--batch_size"),
        (["--construction_steps=5", "--construction_epochs=1"], "give one of them"),
        (["--envelope=8/2-x/6"], "--envelope"),
        (["--maxlayersperstage=3,4,5"], "--maxlayersperstage"),
        (["--construction=true,maybe"], "--construction"),
        (["--no_such_flag=1"], "no_such_flag"),
        (["--mode=random"], "--arch"),
        (["--config=/nonexistent/config.json"], "config file"),
        (["--dataset=svhn"], "dataset"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(tmp_path, flags, message):
    out = construct(f"--run_dir={tmp_path / 'run'}", "--envelope=8/2-1/6", "--dataset=synthetic", *flags)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "run").exists()


def test_missing_run_dir_and_bad_config_file(tmp_path, fixtures_dir):
    out = construct("--dataset=synthetic")
    assert out.returncode == 2 and "--run_dir" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"parameters": {"steps": 10}')
    out = construct(f"--run_dir={tmp_path / 'run'}", f"--config={bad}")
    assert out.returncode == 2 and "line 1" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_original_config_maps_to_the_run(fixtures_dir):
    from nac.run.runconfig import from_flags

    path = str(fixtures_dir / "original_configs" / "construction" / "network.cons-exp-3.bc.json")
    config = from_flags({"run_dir": "x", "config": path}, set())
    assert (
        config.mode,
        config.construction_budget(),
        config.eval_interval(),
        config.training.batch_size,
    ) == (
        "construct",
        10_000,
        1_000,
        50,
    )
    assert config.search.iterations == 5 and config.resolved_image_size == 28
    assert config.policy_lists()["maxlayersperstage"] == (15, 5, 3, 3)
    assert config.initial_network().notation() == "128/10-1-1-1/6"
    overridden = from_flags(
        {"run_dir": "x", "config": path, "construction_steps": 7, "dataset": "fashion_mnist"},
        {"construction_steps", "dataset"},
    )
    assert overridden.construction_budget() == 7 and overridden.initial_network().input_channels == 1
    longrun = from_flags(
        {
            "run_dir": "x",
            "config": str(
                fixtures_dir / "original_configs" / "longruns" / "network.cons-exp-3-bc-longrun.json"
            ),
        },
        set(),
    )
    assert longrun.mode == "oneshot" and longrun.final_budget() == 100_000 and longrun.role() == "oneshot"
    assert longrun.initial_network().notation() == "128/15-6-4-4/6"


def test_imagenet_preset_and_stem_runs_resolve(fixtures_dir, tmp_path):
    from nac.run.runconfig import from_flags

    path = str(fixtures_dir / "original_configs" / "longruns" / "network.imgnet-1.json")
    config = from_flags({"run_dir": "x", "config": path}, set())
    network = config.initial_network()
    assert (config.data.dataset, config.training.batch_size, config.resolved_image_size) == (
        "imagenet2012",
        64,
        299,
    )
    assert network.num_classes == 1001 and config.label_offset == 1
    assert cost.count_params(network) == 62_733_378
    arch_path = tmp_path / "network.json"
    arch_path.write_text(json.dumps(json.loads(open(path).read())["arch"]))
    by_stem = run_config(
        run_dir="x", mode="oneshot", dataset="imagenet2012", arch=str(arch_path), stem="imagenet"
    )
    assert by_stem.initial_network() == network  # the same stem, head (keep 0.7) and 1001 classes
    run_config(run_dir="x", dataset="imagenet2012", stem="imagenet", envelope="96/2-1/6")
    run_config(run_dir="x", dataset="imagenet2012", augment="crop_flip")
    with pytest.raises(ConfigError, match="--augment: got 'crop_flip'"):
        run_config(run_dir="x", dataset="cifar10", augment="crop_flip")
    with pytest.raises(ConfigError, match="--envelope: got C = 128 with --stem=imagenet"):
        run_config(run_dir="x", dataset="imagenet2012", stem="imagenet", envelope="128/2-1/6")


def test_original_gpus_and_batch_stats_evaluation_batch(fixtures_dir):
    from nac.run.runconfig import from_flags
    from nac.training.recipe import learning_rate_at

    longruns = fixtures_dir / "original_configs" / "longruns"
    path = str(longruns / "network.cons-exp-3-bc-longrun.json")
    plain = from_flags({"run_dir": "x", "config": path}, set())
    assert plain.training.batch_size == 50 and plain.train_config(10).decay_steps(50_000) == 350_000
    four = from_flags({"run_dir": "x", "config": path, "original_gpus": 4}, {"original_gpus"})
    assert (four.training.batch_size, four.per_gpu_batch_size) == (200, 50)
    train = four.train_config(95_000)
    assert train.batch_size == 200 and train.decay_steps(50_000) == pytest.approx(350_000)
    assert learning_rate_at(train, 94_999, 50_000) == 0.1  # never decayed, as in the original
    # nac trains all 100,000 steps of the file (400 epochs); the original trained 95,000 (380).
    assert four.final_budget() * four.training.batch_size / 50_000 == 400
    original = original_config(four)["parameters"]
    assert (original["batchsize"], original["gpus"]) == (50, "[0,1,2,3]")
    explicit = from_flags(
        {"run_dir": "x", "batch_size": 32, "original_gpus": 2}, {"batch_size", "original_gpus"}
    )
    assert explicit.training.batch_size == 64
    with pytest.raises(ConfigError, match="--batch_size"):
        run_config(run_dir="x", batch_size=50, original_gpus=4)
    # ImageNet: the original's decay interval counts CIFAR-10's 50,000 images per epoch.
    imagenet = from_flags(
        {"run_dir": "x", "config": str(longruns / "network.imgnet-1.json"), "original_gpus": 1},
        {"original_gpus"},
    )
    assert imagenet.train_config(10).decay_steps(imagenet.train_examples) == pytest.approx(350 * 50_000 / 64)
    nac_default = from_flags({"run_dir": "x", "config": str(longruns / "network.imgnet-1.json")}, set())
    assert nac_default.train_config(10).decay_steps(nac_default.train_examples) == 350 * 1_281_167 / 64
    # --bn_eval=batch_stats normalises test batches of the original's batch (its batchsize).
    assert plain.train_config(10).global_eval_batch_size == 200
    stats = from_flags({"run_dir": "x", "config": path, "bn_eval": "batch_stats"}, {"bn_eval"})
    assert stats.train_config(10).global_eval_batch_size == 50
    stats4 = from_flags(
        {"run_dir": "x", "config": path, "bn_eval": "batch_stats", "original_gpus": 4},
        {"bn_eval", "original_gpus"},
    )
    assert stats4.train_config(10).global_eval_batch_size == 50


def test_construction_on_two_logical_devices(tmp_path):
    from nac.run import runner

    config = run_config(
        run_dir=str(tmp_path / "run"),
        dataset="synthetic",
        envelope="8/2-1/6",
        iterations=1,
        construction_steps=6,
        final_steps=6,
        eval_every=6,
        stats_every=3,
        strategy="mirrored",
        seed=7,
        tensorboard=False,
        progress=False,
    )
    assert runner.run(config) == 0
    run = tmp_path / "run"
    for name in ("iter_0", "final"):
        metrics = json.loads((run / name / "metrics.json").read_text())
        assert metrics["replicas"] == 2
        assert metrics["history"][-1]["test_examples"] == 256
    # By default only the final network is exported (--save_iteration_models adds the rest).
    assert not (run / "iter_0" / "saved_model").exists()
    assert (run / "final" / "saved_model" / "saved_model.pb").exists()
    out = tmp_path / "next.json"
    assert (
        restructure_cli.main(
            [
                "--config",
                str(run / "config.json"),
                "--arch",
                str(run / "iter_0" / "network.json"),
                "--stats",
                str(run / "iter_0" / "stats.json"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text()) == json.loads((run / "final" / "network.json").read_text())


def test_construction_on_two_worker_processes(tmp_path):
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run_dir = tmp_path / "run"
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nac.construct",
                    f"--run_dir={run_dir}",
                    "--strategy=multi_worker",
                    "--dataset=synthetic",
                    "--envelope=8/2-1/6",
                    "--iterations=1",
                    "--construction_steps=6",
                    "--final_steps=6",
                    "--eval_every=6",
                    "--stats_every=3",
                    "--save_iteration_models",
                    "--seed=7",
                    "--notensorboard",
                    "--noprogress",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    errors = [p.communicate(timeout=400)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json",
        "final",
        "flags.txt",
        "iter_0",
        "run_config.json",
        "summary.json",
    ]
    for name in ("iter_0", "final"):
        metrics = json.loads((run_dir / name / "metrics.json").read_text())
        assert metrics["replicas"] == 2 and metrics["history"][-1]["test_examples"] == 256
        assert (run_dir / name / "saved_model" / "saved_model.pb").exists()
    assert json.loads((run_dir / "summary.json").read_text())["complete"]


def test_variance_construction_without_seed_resumes_and_force_accepts_changes(tmp_path):
    """--statistic=variance drives a construction; a run started without --seed resumes with the
    seed it drew; a changed flag is refused, and accepted with --force."""
    run_dir = tmp_path / "run"
    flags = [
        f"--run_dir={run_dir}",
        "--dataset=synthetic",
        "--envelope=8/2-1/6",
        "--statistic=variance",
        "--iterations=1",
        "--construction_steps=4",
        "--final_steps=4",
        "--eval_every=2",
        "--stats_every=2",
        "--nosave_models",
        "--notensorboard",
        "--noprogress",
    ]
    out = construct(*flags)
    assert out.returncode == 0, out.stderr[-3000:]
    saved = json.loads((run_dir / "run_config.json").read_text())
    assert saved["seed"] is not None and saved["statistic"] == "variance"
    variance = statsio.read_stats(run_dir / "iter_0" / "res.log", "variance")
    assert json.loads((run_dir / "iter_0" / "stats.json").read_text()) == pytest.approx(variance, rel=1e-6)
    network = arch.Network(
        arch.body_from_original(json.loads((run_dir / "iter_0" / "network.json").read_text())),
        arch.Stem.conv1x1(8),
    )
    policy = restructure_lib.Policy.from_config(OriginalConfig.load(run_dir / "config.json"))
    expected = restructure_lib.restructure(network, variance, policy).arch_json()
    final = json.loads((run_dir / "final" / "network.json").read_text())
    assert final == expected  # the variance statistic chose the final network

    iter_0 = tree_digest(run_dir / "iter_0")
    seed_of_final = json.loads((run_dir / "final" / "metrics.json").read_bytes())["seed"]
    changed = [f for f in flags if not f.startswith("--final_steps")] + ["--final_steps=6"]
    refused = construct(*changed)
    assert refused.returncode == 2 and "final_steps" in refused.stderr and "--force" in refused.stderr
    shutil.rmtree(run_dir / "final")  # as if killed before the final training finished
    forced = construct(*changed, "--force")  # still no --seed: the saved one is used
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert json.loads((run_dir / "run_config.json").read_text())["final_steps"] == 6
    assert tree_digest(run_dir / "iter_0") == iter_0  # kept: its network is what the run computes
    assert json.loads((run_dir / "final" / "network.json").read_text()) == final
    resumed = json.loads((run_dir / "final" / "metrics.json").read_text())
    assert resumed["steps"] == 6 and resumed["seed"] == seed_of_final


def test_downsample_flag_validated_resolved_and_compared_on_resume():
    from nac.spec.errors import ConfigError

    config = run_config(run_dir="x", dataset="fashion_mnist", downsample=2)
    assert config.resolved_image_size == 14 and config.to_flat()["downsample"] == 2
    assert run_config(run_dir="x", dataset="cifar10", downsample=2).resolved_image_size == 16
    assert config.differences(run_config(run_dir="x", dataset="fashion_mnist")) == ["downsample"]
    with pytest.raises(ConfigError, match="--downsample: got 3; fashion_mnist's 28x28 images"):
        run_config(run_dir="x", dataset="fashion_mnist", downsample=3)
    with pytest.raises(ConfigError, match="--image_size: got 28; --downsample=2 leaves 14x14"):
        run_config(run_dir="x", dataset="fashion_mnist", downsample=2, image_size=28)
    with pytest.raises(ConfigError, match="--downsample: got 2; it is for the array datasets"):
        run_config(run_dir="x", dataset="imagenet2012", downsample=2)
    with pytest.raises(ConfigError, match="--downsample: got 0; expected an integer >= 1"):
        run_config(run_dir="x", downsample=0)


def test_iterations_evaluate_once_unless_eval_every_is_given():

    config = run_config(run_dir="r", dataset="synthetic", envelope="8/1-1/6", construction_steps=100)
    assert config.train_config(100, iteration=True).eval_steps() == (100,)
    assert config.train_config(100).eval_every == config.eval_interval() == 10  # 512 / 50
    given = run_config(run_dir="r", dataset="synthetic", envelope="8/1-1/6", eval_every=30)
    assert given.train_config(100, iteration=True).eval_steps() == (30, 60, 90, 100)
    both = given.replace(construction_eval_every=40)
    assert both.train_config(100, iteration=True).eval_steps() == (40, 80, 100)
    assert both.train_config(100).eval_steps() == (30, 60, 90, 100)  # the final keeps --eval_every
    only = run_config(run_dir="r", dataset="synthetic", envelope="8/1-1/6", construction_eval_every=25)
    assert only.train_config(100, iteration=True).eval_steps() == (25, 50, 75, 100)
    assert only.train_config(100).eval_every == 10
    with pytest.raises(ConfigError, match="--construction_eval_every"):
        run_config(run_dir="r", dataset="synthetic", construction_eval_every=0)


def test_eval_examples_is_validated_recorded_and_reaches_the_recipe():
    from nac.spec.errors import ConfigError

    config = run_config(run_dir="x", dataset="synthetic", eval_examples=1000)
    assert config.to_flat()["eval_examples"] == 1000
    assert config.train_config(100).eval_examples == 1000
    assert config.differences(run_config(run_dir="x", dataset="synthetic")) == ["eval_examples"]
    with pytest.raises(ConfigError, match="--eval_examples: got -1; expected an integer >= 0"):
        run_config(run_dir="x", eval_examples=-1)


@pytest.mark.parametrize(
    "settings",
    [
        {"envelope": "8/2-1/6"},
        {"envelope": "8/2-1/6", "worstcase": True, "maxfilterprune": 2, "construction": (False, True)},
        {"envelope": "64/3-1-1/6", "parameterlimits": (True, False, False), "maxlayersperstage": (4, 3, 3)},
        {"envelope": "8/2-1/4", "skip": True},
    ],
)
def test_the_policy_is_built_directly_and_equals_the_config_json_replay(settings):
    """RunConfig.policy() builds the restructure Policy from the run's settings; the run's
    config.json (the original's schema) replays into the same Policy."""
    from nac.spec.config import OriginalConfig

    config = run_config(run_dir="x", dataset="synthetic", **settings)
    replayed = restructure_lib.Policy.from_config(OriginalConfig.from_original(original_config(config)))
    assert config.policy() == replayed
    assert config.initial_network() is config.initial_network()  # resolved once


def test_the_finished_runs_config_json_replays_into_its_policy(finished_run):
    from nac.run.runconfig import RunConfig
    from nac.spec.config import OriginalConfig

    saved = RunConfig.from_flat(json.loads((finished_run / "run_config.json").read_text()))
    assert (
        restructure_lib.Policy.from_config(OriginalConfig.load(finished_run / "config.json"))
        == saved.policy()
    )
