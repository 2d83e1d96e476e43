"""Small checks shared by the validating modules (pure Python, no TensorFlow)."""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """True for an integer (Python's or NumPy's) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def lists_to_tuples(instance, names) -> None:
    """Replaces the list values of a frozen dataclass's fields `names` by tuples."""
    for name in names:
        value = getattr(instance, name)
        if isinstance(value, list):
            object.__setattr__(instance, name, tuple(value))
