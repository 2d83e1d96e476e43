"""SavedModel export for serving.

The exported signature `serving_default` takes float32 pixels `[N, image_size, image_size,
channels]` on the 0-255 scale, applies the evaluation preprocessing of the dataset inside the
graph (per-image standardisation; for ImageNet, scaling to [-1, 1]) and returns float32
logits under the output key `logits`. It holds whatever weights the model has when exported;
nac exports after training, when the model carries its evaluation weights (the exponential
moving average, with re-estimated batch-norm statistics).

Load it with `tf.saved_model.load(path).signatures["serving_default"]` or
`keras.layers.TFSMLayer(path, call_endpoint="serving_default")`.

A dataset with class names (tfds:, folder:) adds the signature `class_names`, without inputs,
returning the names in label order under the key `class_names` (a string vector):
`tf.saved_model.load(path).signatures["class_names"]()["class_names"]`.

`save_keras` writes the same model as a Keras archive (`model.keras`): the network's own
input (preprocessed images) and weights, trainable, opened by `keras.models.load_model` in a
process that has imported `nac.layers` (which registers nac's layers).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nac.data import preprocess

ENDPOINT = "serving_default"
CLASS_NAMES_ENDPOINT = "class_names"
KERAS_FILE = "model.keras"


def serving_function(model: keras.Model, dataset: str, image_size: int, channels: int):
    """A tf.function mapping 0-255 pixels to logits with the evaluation preprocessing."""

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, channels], tf.float32, name="pixels")]
    )
    def serve(pixels):
        images = preprocess.eval_preprocess(pixels, dataset, image_size)
        return {"logits": model(images, training=False)}

    return serve


def export_saved_model(
    model: keras.Model,
    path: str,
    dataset: str,
    image_size: int,
    channels: int,
    class_names: tuple[str, ...] | None = None,
):
    """Writes `model` as a SavedModel with the `serving_default` signature to `path`
    (and the `class_names` signature when the dataset names its classes)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(ENDPOINT, serving_function(model, dataset, image_size, channels))
    if class_names:
        names = tf.constant(list(class_names), tf.string)

        @tf.function(input_signature=[])
        def class_names_fn():
            return {"class_names": names}

        archive.add_endpoint(CLASS_NAMES_ENDPOINT, class_names_fn)
    archive.write_out(path, verbose=False)


def save_keras(model: keras.Model, path: str):
    """Writes `model` as a Keras archive to `path` (a `.keras` file)."""
    model.save(path)
