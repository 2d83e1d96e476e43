"""An original config's gpus and the keys nac ignores are said once, with the reason."""

import json

import pytest
from conftest import construct

from nac.spec import confignotes

CONFIGS = "original_configs"


def _raw(fixtures_dir, name):
    return json.loads((fixtures_dir / CONFIGS / name).read_text())


def test_every_shipped_config_gets_a_gpus_line_and_each_ignored_key_once(fixtures_dir):
    paths = sorted((fixtures_dir / CONFIGS).glob("*/*.json"))
    assert len(paths) == 19
    for path in paths:
        lines = confignotes.file_notes(str(path), 0, 50)
        assert lines[0].startswith("config: gpus ") and len(lines) == len(set(lines)), path
        assert all(line.startswith("config: ") and ("ignored" in line or "gpus" in line) for line in lines)


def test_the_long_runs_four_gpus_say_what_the_original_trained(fixtures_dir):
    raw = _raw(fixtures_dir, "longruns/network.cons-exp-3-bc-longrun.json")
    default = confignotes.notes(raw, 0, 50)[0]
    assert "4 x 50 = 200 images per step" in default and "this run trains 50" in default
    assert "--original_gpus=4 reproduces" in default
    assert "this run does too" in confignotes.notes(raw, 4, 200)[0]
    envelope = confignotes.notes(_raw(fixtures_dir, "longruns/network.cons-exp-3-en.json"), 0, 50)[0]
    assert "one device, 50 images per step" in envelope


@pytest.mark.parametrize(
    "name, key",
    [
        ("longruns/network.imgnet-1.json", "parameters.k ignored"),
        ("construction/network.construction-cifar10-topline.json", "envelopenet.maxwideners ignored"),
        ("construction/network.construction-cifar10-topline.json", "envelopenet.minwidenerintval ignored"),
        ("construction/network.cons-exp-3.bc.json", "classificationcell size ignored"),
    ],
)
def test_ignored_keys_are_named_with_a_reason(fixtures_dir, name, key):
    lines = [line for line in confignotes.notes(_raw(fixtures_dir, name), 0, 50) if key in line]
    assert len(lines) == 1 and "never reads" in lines[0]


def test_a_copied_initcell_inside_envelopenet_is_named():
    raw = {"parameters": {"gpus": "[0]", "batchsize": 50}, "envelopenet": {"initcell": {}}}
    assert any("envelopenet.initcell ignored" in line for line in confignotes.notes(raw, 0, 50))


def test_the_dry_run_lists_the_notes(fixtures_dir, tmp_path):
    path = fixtures_dir / CONFIGS / "longruns" / "network.cons-exp-3-bc-longrun.json"
    out = construct(f"--config={path}", f"--run_dir={tmp_path / 'r'}", "--dry_run")
    assert out.returncode == 0, out.stderr
    assert "config: gpus [0,1,2,3]: the original trained 4 x 50 = 200 images per step" in out.stdout
