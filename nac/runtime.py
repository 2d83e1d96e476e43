"""TensorFlow's process settings: thread pools.

`configure_threads(intra, inter)` must run before TensorFlow's runtime starts (before the
first tensor, model or device listing); the driver calls it first thing.

Thread pools. `None` picks nac's automatic choice, `0` leaves TensorFlow's default (as many
threads as cores in each pool), a positive number is used as it is. The automatic choice is
intra-op 1 / inter-op 2 on a machine with at most 2 cores (measured there 1.10-1.16x faster
than TensorFlow's default for these small-op graphs: two independent ops, e.g. two branches'
convolutions, run side by side instead of splitting each small op over both cores), and
TensorFlow's defaults on larger machines, where nothing was measured.
"""

from __future__ import annotations

import os

AUTO_THREADS_MAX_CORES = 2


def auto_threads(cores: int | None = None) -> tuple[int, int]:
    """nac's automatic (intra-op, inter-op) threads for `cores` cores; 0 is TF's default."""
    cores = os.cpu_count() if cores is None else cores
    if cores is not None and cores <= AUTO_THREADS_MAX_CORES:
        return 1, cores
    return 0, 0


def configure_threads(intra: int | None = None, inter: int | None = None) -> tuple[int, int]:
    """Sets TensorFlow's intra-op and inter-op thread pools; returns what was set (0: TF's).

    None picks `auto_threads()` for that pool. Call before TensorFlow's runtime starts.
    """
    auto = auto_threads()
    intra = auto[0] if intra is None else int(intra)
    inter = auto[1] if inter is None else int(inter)
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    return intra, inter
