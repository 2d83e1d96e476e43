"""nac's Keras layers, registered as serializable (package "nac") when this module is imported.

A `model.keras` nac wrote opens in any process that has run `import nac.layers`:

    import keras
    import nac.layers  # noqa: F401  (registers LocalResponseNormalization, FeaturemapTap)
    model = keras.models.load_model("runs/quickstart/final/model.keras")

The layers are defined in `nac.net.ops`; this is their public name.
"""

from nac.net.ops import FeaturemapTap, LocalResponseNormalization

__all__ = ["FeaturemapTap", "LocalResponseNormalization"]
