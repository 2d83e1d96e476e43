"""nac: Neural Architecture Construction using EnvelopeNets.

Importing the package does not import TensorFlow: command-line tools validate their input
first, so that a user's mistake gets one clean line instead of TensorFlow's start-up logging.
The Python API (`nac.build_model`, `nac.construct_network`, `nac.load_model`,
`nac.preprocess`; `nac.api`) is imported on first use.
"""

__version__ = "0.1.0"

_API = ("build_model", "construct_network", "load_model", "preprocess", "ConstructionResult")


def __getattr__(name):
    if name in _API:
        from nac import api

        return getattr(api, name)
    raise AttributeError(f"module 'nac' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
