"""The loader of the in-memory arrays source (`arrays:<sha256>`, `nac.construct_network`).

The arrays were checked and stored as uint8 images and int32 labels when they were
registered (`nac.spec.arrays`); `nac.data.arrays.load_splits` hands them over as they are.
"""

from __future__ import annotations

from nac.data import arrays as arrays_data
from nac.data.sources import LoadedSplits


def load(facts, config) -> LoadedSplits:
    """The registered arrays' splits (`facts`, `config`: as every loader takes them)."""
    (train, test), source = arrays_data.load_splits(facts, config)
    return LoadedSplits(train, test, source)
