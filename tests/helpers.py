"""Helpers shared by several test modules (`from helpers import ...`; tests/ is on sys.path)."""

import numpy as np

# Parameter counts of the paper's networks (Table 1) for the original configs in
# tests/fixtures/original_configs.
PAPER_PARAMS = {
    "construction/network.cons-exp-3.bc.json": 12_998_738,  # Envelope A
    "longruns/network.cons-exp-3-bc-longrun.json": 48_721_247,  # Constructed A
    "construction/network.construction-cifar10-topline.json": 17_125_834,  # Envelope B
    "longruns/network.generated-topline-cifar10.json": 39_556_426,  # Constructed B
}


def synthetic_data(image_size: int, train_examples: int, test_examples: int, validation_examples: int = 0):
    """The seeded synthetic data set at `image_size` (imports TensorFlow)."""
    from nac.data.pipelines import DataConfig, load

    config = DataConfig(
        dataset="synthetic",
        image_size=image_size,
        seed=0,
        validation_examples=validation_examples,
        synthetic_train_examples=train_examples,
        synthetic_test_examples=test_examples,
    )
    return load(config)


def arrays(dataset):
    """The (images, labels) NumPy arrays of a batched tf.data set of pairs."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def run_config(**flat):
    """A `RunConfig` from flat fields keyed by flag name (as in `run_config.json`)."""
    from nac.run.runconfig import RunConfig

    return RunConfig.from_flat(flat)
