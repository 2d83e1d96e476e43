"""The construct command's flag table: each `define_<section>()` defines its section's flags."""

import re

import pytest
from absl import flags as absl_flags

from nac.cli import construct
from nac.cli import flags as flag_table

SECTIONS = ("output", "data", "search", "statistic", "training", "runtime")


class _Into:
    """Stands in for absl's `flags` module: every DEFINE_* goes into `flag_values`."""

    def __init__(self, flag_values):
        self.flag_values = flag_values

    def __getattr__(self, name):
        define = getattr(absl_flags, name)
        return lambda *args, **kwargs: define(*args, flag_values=self.flag_values, **kwargs)


def _defined_by(monkeypatch, section: str) -> dict:
    flag_values = absl_flags.FlagValues()
    monkeypatch.setattr(flag_table, "flags", _Into(flag_values))
    getattr(flag_table, f"define_{section}")()
    return {name: flag_values[name] for name in flag_values}


@pytest.mark.parametrize("section", SECTIONS)
def test_each_section_defines_only_its_own_flags(monkeypatch, section):
    defined = _defined_by(monkeypatch, section)
    assert defined
    for name, flag in defined.items():
        text = re.sub(r"^<[^>]*>: ", "", flag.help)  # an enum's help starts with its values
        assert text.startswith(f"[{section}] "), (name, flag.help)


def test_the_sections_together_are_the_commands_flags(monkeypatch):
    defined = {}
    for section in SECTIONS:
        for name, flag in _defined_by(monkeypatch, section).items():
            assert name not in defined, name
            defined[name] = flag
    assert set(defined) == set(construct._NAC_FLAGS)
    for name, flag in defined.items():  # the same definitions as the command's
        assert (flag.default, flag.help) == (construct.FLAGS[name].default, construct.FLAGS[name].help)
