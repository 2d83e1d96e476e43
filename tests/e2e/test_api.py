"""The Python API end to end: `nac.construct_network` on arrays, `nac.load_model`,
`nac.build_model`, and the exports a fresh Keras process reloads (model.keras, TFLite)."""

import io
import json
import os
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout

import numpy as np
import pytest

import nac
from nac.spec.errors import ConfigError, DataError, RunError

SETTINGS = dict(
    envelope="8/2-1/6",
    iterations=1,
    construction_steps=4,
    final_steps=60,
    eval_every=30,
    seed=3,
    augment="none",
    progress=False,
    tensorboard=False,
)


def learnable(n, seed, size=12, classes=4):
    """Grey images whose class is the bright quadrant (chance: 1 / classes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.normal(100, 25, (n, size, size))
    half = size // 2
    for i, c in enumerate(labels):
        row, col = divmod(int(c), 2)
        images[i, row * half : (row + 1) * half, col * half : (col + 1) * half] += 80
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    train, test = learnable(384, 0), learnable(128, 1)
    return nac.construct_network(train, test, run_dir, **SETTINGS), train, test


def test_import_nac_and_its_api_names_import_no_tensorflow():
    code = "import sys, nac; nac.construct_network; nac.build_model; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_build_model_has_the_parameters_nac_summary_counts():
    from nac.cli import summary

    text = io.StringIO()
    with redirect_stdout(text):
        summary.main(
            ["8/2-1/6", "--image_size", "16", "--input_channels", "3", "--num_classes", "10", "--json"]
        )
    model = nac.build_model("8/2-1/6", (16, 16, 3), 10)
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert params == json.loads(text.getvalue())["trainable_params"] == 4546
    assert model.input_shape == (None, 16, 16, 3) and model.output_shape == (None, 10)
    with pytest.raises(Exception, match="build_model option"):
        nac.build_model("8/2-1/6", (16, 16, 3), 10, cell="per_cell")


def test_construct_network_learns_and_returns_the_final_network(api_run):
    result, _, _ = api_run
    run = result.run_dir
    assert result.step == "final" and result.summary["complete"]
    assert result.metrics["test_accuracy"] > 0.6  # chance 0.25
    with open(os.path.join(run, "final", "metrics.json")) as f:
        assert result.history == json.load(f)["history"]
    with open(os.path.join(run, "summary.json")) as f:
        assert result.summary == json.load(f)
    with open(os.path.join(run, "run_config.json")) as f:
        assert json.load(f)["dataset"].startswith("arrays:")
    assert result.network.num_classes == 4 and result.network.input_channels == 1
    assert result.model.input_shape == (None, 12, 12, 1) and result.model.output_shape == (None, 4)
    for name in ("model.keras", "nac_network.json", "network.json", "saved_model"):
        assert os.path.exists(os.path.join(run, "final", name)), name


def test_resume_takes_the_same_data_as_tf_data_and_refuses_other_arrays(api_run):
    import tensorflow as tf

    result, train, test = api_run
    metrics = os.path.join(result.run_dir, "final", "metrics.json")
    before = os.stat(metrics).st_mtime_ns
    again = nac.construct_network(
        tf.data.Dataset.from_tensor_slices(train).batch(50),
        tf.data.Dataset.from_tensor_slices(test),
        result.run_dir,
        **SETTINGS,
    )
    assert again.summary == result.summary and os.stat(metrics).st_mtime_ns == before
    other = (train[0][::-1], train[1][::-1])
    with pytest.raises(RunError, match="holds a run on other arrays"):
        nac.construct_network(other, test, result.run_dir, **SETTINGS)
    assert os.stat(metrics).st_mtime_ns == before


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    train, test = learnable(8, 0), learnable(4, 1)
    with pytest.raises(DataError, match=r"outside \[0, 3\)"):
        nac.construct_network(train, test, tmp_path / "a", num_classes=3)
    with pytest.raises(DataError, match="same image shape"):
        nac.construct_network(train, learnable(4, 1, size=8), tmp_path / "b")
    with pytest.raises(ConfigError, match="did you mean iterations"):
        nac.construct_network(train, test, tmp_path / "c", iteration=2)
    with pytest.raises(ConfigError, match="--envelope"):
        nac.construct_network(train, test, tmp_path / "d", envelope="8/x/6")
    assert os.listdir(tmp_path) == []


def test_model_keras_reloads_in_a_fresh_process_and_trains(api_run, tmp_path):
    result, _, test = api_run
    images = nac.preprocess(test[0][:16]).numpy()
    np.savez(
        tmp_path / "io.npz",
        images=images,
        logits=result.model.predict(images, verbose=0),
        labels=test[1][:16],
    )
    final = os.path.join(result.run_dir, "final")
    code = textwrap.dedent(
        f"""
        import numpy as np, keras, tensorflow as tf
        import nac.layers
        data = np.load({str(tmp_path / "io.npz")!r})
        model = keras.models.load_model({os.path.join(final, "model.keras")!r})
        assert model.input_shape == (None, 12, 12, 1), model.input_shape
        np.testing.assert_allclose(model.predict(data["images"], verbose=0), data["logits"], atol=1e-4)
        before = [w.numpy().copy() for w in model.trainable_weights]
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data["images"], data["labels"], epochs=1, batch_size=8, verbose=0)
        assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
        flat = tf.lite.TFLiteConverter.from_saved_model({os.path.join(final, "saved_model")!r}).convert()
        print("ok", len(flat) > 1000)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.strip().splitlines()[-1:] == ["ok True"], out.stderr[-3000:]


def test_load_model_and_the_network_file_rebuild_the_final_model(api_run):
    result, _, test = api_run
    final = os.path.join(result.run_dir, "final")
    images = nac.preprocess(test[0][:8])
    expected = result.model.predict(images, verbose=0)
    loaded = nac.load_model(final)
    assert loaded.network == result.network and loaded.trainable_weights
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-5)
    rebuilt = nac.build_model(os.path.join(final, "nac_network.json"))
    assert rebuilt.input_shape == (None, 12, 12, 1)
    rebuilt.set_weights(loaded.get_weights())
    from nac.cli import summary

    text = io.StringIO()
    with redirect_stdout(text):
        summary.main([os.path.join(final, "nac_network.json"), "--json"])
    counted = json.loads(text.getvalue())
    assert counted["image_size"] == 12 and counted["num_classes"] == 4
    assert counted["trainable_params"] == sum(int(np.prod(w.shape)) for w in rebuilt.trainable_weights)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0), expected, atol=1e-5)
    with pytest.raises(RunError, match="model.keras is missing"):
        nac.load_model(os.path.join(result.run_dir, "iter_0"))


def test_random_mode_returns_its_network(api_run, tmp_path):
    result, train, test = api_run
    arch = os.path.join(result.run_dir, "final", "nac_network.json")  # the file works as --arch
    settings = dict(SETTINGS, mode="random", arch=arch, num_random=1, final_steps=2, save_models=False)
    for construction_only in ("envelope", "iterations", "construction_steps"):  # --arch gives the network
        settings.pop(construction_only)
    random = nac.construct_network(train, test, tmp_path / "random", **settings)
    assert random.step == "random_0" and random.model is None and random.summary["complete"]
    assert random.network.layers_per_stage() == result.network.layers_per_stage()
    assert random.network.num_classes == 4
