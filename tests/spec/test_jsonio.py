"""Atomic writes and JSON reading errors."""

import os
import stat

import pytest

from nac.spec.errors import ConfigError
from nac.spec.jsonio import load_json, write_atomic, write_json


def test_write_atomic_leaves_no_temporary_and_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"b": [1, 2]}, original_format=True)
        write_atomic(tmp_path / "c.txt", b"bytes")
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "c.txt"]
    assert (tmp_path / "a.json").read_text() == '{\n    "b": [\n        1,\n        2\n    ]\n}\n'
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644


def test_load_json_errors_name_the_file_and_position(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,\n "b": }')
    with pytest.raises(ConfigError, match=r"line 2 column 7"):
        load_json(bad, ConfigError, "config file")
    with pytest.raises(ConfigError, match="does not exist"):
        load_json(tmp_path / "missing.json", ConfigError, "config file")
    with pytest.raises(ConfigError, match="is a directory"):
        load_json(tmp_path, ConfigError, "config file")
