"""Small checks shared by the validating modules (pure Python, no TensorFlow)."""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """True for an integer (Python's or NumPy's) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def statistics_in_order(
    statistics, error=ValueError, where: str = "statistics", empty_ok: bool = False
) -> tuple[str, ...]:
    """The featuremap statistics named in `statistics` (a name or names), in `STATISTICS`'
    order; raises `error` naming `where` for an unknown name, or an empty selection unless
    `empty_ok`."""
    from nac.spec.choices import STATISTICS

    names = (statistics,) if isinstance(statistics, str) else tuple(statistics)
    unknown = sorted(set(names) - set(STATISTICS))
    if unknown or not (names or empty_ok):
        raise error(f"{where}: got {list(names)}; expected a non-empty subset of {list(STATISTICS)}")
    return tuple(s for s in STATISTICS if s in names)


def lists_to_tuples(instance, names) -> None:
    """Replaces the list values of a frozen dataclass's fields `names` by tuples."""
    for name in names:
        value = getattr(instance, name)
        if isinstance(value, list):
            object.__setattr__(instance, name, tuple(value))
