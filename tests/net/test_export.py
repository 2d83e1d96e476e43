"""SavedModel export: the serving signature gives the in-memory model's logits."""

import keras
import numpy as np
import tensorflow as tf

from nac.data import preprocess
from nac.net import export
from nac.net import model as model_lib
from nac.spec import arch


def test_saved_model_matches_in_memory_model(tmp_path):
    net = arch.network_from_notation("6/1-1/6", input_channels=1)
    model = model_lib.build_model(net, 12)
    model(tf.zeros((1, 12, 12, 1)), training=True)  # move batch-norm state off its initial values
    path = str(tmp_path / "saved_model")
    export.export_saved_model(model, path, "fashion_mnist", 12, 1)
    pixels = np.random.RandomState(0).uniform(0, 255, (4, 12, 12, 1)).astype("float32")
    expected = model(
        preprocess.eval_preprocess(tf.constant(pixels), "fashion_mnist", 12), training=False
    ).numpy()

    loaded = tf.saved_model.load(path)
    logits = loaded.signatures["serving_default"](pixels=tf.constant(pixels))["logits"].numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)

    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    np.testing.assert_allclose(layer(pixels)["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
