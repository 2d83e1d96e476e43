"""`nac.summary --layers` lists every layer's operations; `--plot` draws one network file."""

import json

import pytest

from nac.cli import summary
from nac.spec.errors import NacError


def test_layers_lists_every_layers_operations(capsys, fixtures_dir):
    path = fixtures_dir / "original_configs" / "longruns" / "network.cons-exp-3-bc-longrun.json"
    assert summary.main([str(path), "--layers", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["layers"]
    assert [sum(1 for r in rows if r["stage"] == s) for s in (1, 2, 3, 4)] == [15, 6, 4, 4]
    assert [len(r["ops"]) for r in rows if r["stage"] == 2] == out["stages"][1]["branches"]
    assert rows[0]["ops"] == ["3x3"] and rows[0]["cell"] == 1
    assert summary.main([str(path), "--layers"]) == 0
    text = capsys.readouterr().out
    assert text.count("widener") == 3
    assert "    1  Cell6    128  1x1 3x3 5x5 5x5sep" in text


def test_skip_inputs_are_listed():
    from nac.cli import networkview
    from nac.spec import arch

    rows = networkview.layer_rows(arch.network_from_notation("8/2-1/6", "conv3x3", True, 3, 10))
    assert all(r["inputs"] == "all" for r in rows) and "(inputs: all)" in networkview.format_layers(rows)


@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_draws_one_network_in_the_format_of_its_extension(tmp_path, ext, magic, capsys):
    out = tmp_path / f"net.{ext}"
    assert summary.main(["8/3-2/6", "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 1000


def test_plot_refuses_an_unknown_format_before_any_work(tmp_path):
    with pytest.raises(NacError, match=r"--plot: got .*\.gif"):
        summary.main(["8/3-2/6", "--plot", str(tmp_path / "net.gif")])
    with pytest.raises(NacError, match="does not exist"):
        summary.main(["8/3-2/6", "--plot", str(tmp_path / "none" / "net.png")])
