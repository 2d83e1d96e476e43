"""nac: Neural Architecture Construction using EnvelopeNets.

Importing the package does not import TensorFlow: command-line tools validate their input
first, so that a user's mistake gets one clean line instead of TensorFlow's start-up logging.
"""

__version__ = "0.1.0"
