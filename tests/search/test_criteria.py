"""The criteria registry (pure Python)."""

import pytest

from nac.search import criteria


def test_registry_names_and_sources():
    assert criteria.NAMES == ("l2", "variance", "taylor", "l1_kernel", "random", "snip", "oracle")
    assert criteria.RECORDED_NAMES == ("l2", "variance", "taylor")
    assert criteria.get("oracle").needs_validation
    assert not any(criteria.get(n).needs_validation for n in criteria.NAMES if n != "oracle")


def test_zero_steps_refused_for_window_criteria():
    for name in ("l2", "variance", "taylor", "l1_kernel", "oracle"):
        assert criteria.refuses_zero_steps(name)
    assert criteria.refuses_zero_steps("snip") is None
    assert criteria.refuses_zero_steps("random") is None


def test_unknown_name_one_line_naming_choices():
    with pytest.raises(ValueError) as e:
        criteria.get("l3")
    msg = str(e.value)
    assert "\n" not in msg and "'l3'" in msg and "snip" in msg and "l1_kernel" in msg


def test_random_values_seeded_and_uniform():
    branches = [f"Cell1/Branch{i}" for i in range(1, 6)]
    a = criteria.random_values(branches, 7)
    assert list(a) == branches
    assert a == criteria.random_values(branches, 7)
    assert a != criteria.random_values(branches, 8)
    assert all(0.0 <= v < 1.0 for v in a.values())
