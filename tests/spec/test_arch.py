"""The architecture spec, the original config schema and the pure-Python counts."""

import json
import subprocess
import sys

import pytest
from helpers import PAPER_PARAMS

from nac.spec import arch, cost
from nac.spec.config import OriginalConfig
from nac.spec.errors import ConfigError, SpecError
from nac.spec.jsonio import dumps_original

CONFIGS = "original_configs"


def all_configs(fixtures_dir):
    return sorted((fixtures_dir / CONFIGS).glob("*/*.json"))


@pytest.mark.parametrize("name,expected", sorted(PAPER_PARAMS.items()))
def test_paper_parameter_counts(fixtures_dir, name, expected):
    config = OriginalConfig.load(fixtures_dir / CONFIGS / name)
    assert cost.count_params(config.initial_network()) == expected


def test_paper_flops_envelope_a(fixtures_dir):
    config = OriginalConfig.load(fixtures_dir / CONFIGS / "construction/network.cons-exp-3.bc.json")
    c = cost.analyse(config.initial_network(), 28)
    assert c.flops_per_image == 2_479_052_472  # paper: 124B per batch of 50
    assert round(c.flops_per_batch / 1e9) == 124


# Table 1's FLOPs: (config, kind of count, paper's billions per batch, relative tolerance).
# The A rows are forward counts; the B and ImageNet rows are the paper's profiler's training
# counts (batch 50 on CIFAR-10, 64 on ImageNet: the config's batchsize).
TABLE1_FLOPS = [
    ("construction/network.cons-exp-3.bc.json", "forward", 124, 0.01),  # Envelope A
    ("longruns/network.cons-exp-3-bc-longrun.json", "forward", 272, 0.01),  # Constructed A
    ("longruns/network.cons-exp-3-rnd5-longrun.json", "forward", 518, 0.01),  # Random-1
    ("longruns/network.cons-exp-3-rnd2-longrun.json", "forward", 593, 0.01),  # Random-2
    ("construction/network.construction-cifar10-topline.json", "training", 471, 0.02),  # Envelope B
    ("longruns/network.generated-topline-cifar10.json", "training", 1703, 0.02),  # Constructed B
    ("longruns/network.imgnet-1.json", "training", 4191, 0.02),  # Constructed A on ImageNet
]


@pytest.mark.parametrize("name,kind,paper,tolerance", TABLE1_FLOPS)
def test_every_table_1_flops_row(fixtures_dir, name, kind, paper, tolerance):
    config = OriginalConfig.load(fixtures_dir / CONFIGS / name)
    c = cost.analyse(config.initial_network(), config.parameters.image_size)
    batch = config.parameters.batchsize
    assert batch == cost.paper_batch(config.parameters.dataset)
    count = c.flops_forward_per_image if kind == "forward" else c.flops_training_per_image
    assert count * batch / 1e9 == pytest.approx(paper, rel=tolerance)
    # The other count is far off: each row is one kind of count, not both.
    other = c.flops_training_per_image if kind == "forward" else c.flops_forward_per_image
    assert abs(other * batch / 1e9 / paper - 1) > 0.5


def test_training_flops_pinned(fixtures_dir):
    counts = {}
    for name, *_ in TABLE1_FLOPS:
        config = OriginalConfig.load(fixtures_dir / CONFIGS / name)
        c = cost.analyse(config.initial_network(), config.parameters.image_size)
        counts[name.split("/")[1]] = (c.flops_forward_per_image, c.flops_training_per_image)
    assert counts["network.construction-cifar10-topline.json"] == (3_203_217_408, 9_448_382_976)
    assert counts["network.generated-topline-cifar10.json"] == (11_409_851_136, 34_038_951_168)
    assert counts["network.imgnet-1.json"] == (22_110_487_690, 65_352_970_642)


def test_training_flops_by_hand():
    # 4x4x1 image, stem 1x1 conv to 4 channels, one cell of 1x1, 3x3, 3x3sep (1 channel each),
    # 10 classes. Multiply-adds: stem 16*4 = 64 (filter gradient only: it reads the image);
    # 1x1 16*4 = 64, 3x3 16*9*4 = 576, 3x3sep depthwise 16*9*4 = 576 (no gradients) +
    # pointwise 16*4 = 64; dense 3*10 = 30.
    net = arch.network_from_notation("4/1/3", input_channels=1)
    c = cost.analyse(net, 4)
    forward = 64 + 64 + 576 + 576 + 64 + 30
    backward = 64 + 2 * (64 + 576 + 64) + 2 * 30
    assert c.flops_forward_per_image == c.flops_per_image == 2 * forward
    assert c.flops_training_per_image == 2 * (forward + backward)


def test_every_config_loads_validates_counts_and_round_trips(fixtures_dir):
    configs = all_configs(fixtures_dir)
    assert len(configs) == 19
    for path in configs:
        config = OriginalConfig.load(path)
        network = config.initial_network()
        assert cost.count_params(network) > 1_000_000
        again = OriginalConfig.from_original(json.loads(json.dumps(config.to_original())))
        assert again == config
        raw = json.loads(path.read_text())
        if "arch" in raw:  # the architecture list is written back exactly as the original did
            assert dumps_original(config.to_original()["arch"]) == dumps_original(raw["arch"])
            assert network.arch_json() == raw["arch"]
        assert config.to_original()["initcell"] == raw["initcell"]


def test_ignored_keys_are_accepted(fixtures_dir):
    raw = json.loads(
        (fixtures_dir / CONFIGS / "construction/network.construction-cifar10-topline.json").read_text()
    )
    assert "maxwideners" in raw["envelopenet"]
    raw["envelopenet"]["k"] = 3
    raw["envelopenet"]["initcell"] = raw["initcell"]
    OriginalConfig.from_original(raw)


def test_network_dict_round_trip_and_fingerprint(fixtures_dir):
    config = OriginalConfig.load(fixtures_dir / CONFIGS / "longruns/network.generated-topline-cifar10.json")
    network = config.initial_network()
    again = arch.Network.from_dict(json.loads(json.dumps(network.to_dict())))
    assert again == network
    assert again.fingerprint() == network.fingerprint()
    other = arch.network_from_notation("16/2-1/6")
    assert other.fingerprint() != network.fingerprint()


def test_notation_parse_print_and_envelope_a(fixtures_dir):
    assert arch.parse_notation("128/10-1-1-1/6") == (128, (10, 1, 1, 1), 6)
    net = arch.network_from_notation("128/10-1-1-1/6")
    config = OriginalConfig.load(fixtures_dir / CONFIGS / "construction/network.cons-exp-3.bc.json")
    assert net == config.initial_network()
    assert net.notation() == "128/10-1-1-1/6"
    b = OriginalConfig.load(
        fixtures_dir / CONFIGS / "construction/network.construction-cifar10-topline.json"
    ).initial_network()
    b_notation = arch.network_from_notation("192/2-2-2/6", "conv3x3", skip=True)
    assert (b_notation.body, b_notation.stem) == (b.body, b.stem)  # net B's head keeps 0.7, not 0.8
    four = arch.network_from_notation("16/2-1/4")
    assert [op for _, op in four.body[0].branches] == ["1x1", "3x3", "3x3sep", "5x5"]
    assert four.notation() == "16/2-1/4"


def test_imagenet_stem_is_the_originals(fixtures_dir):
    config = OriginalConfig.load(fixtures_dir / CONFIGS / "longruns/network.imgnet-1.json")
    constructed_a = OriginalConfig.load(
        fixtures_dir / CONFIGS / "longruns/network.cons-exp-3-bc-longrun.json"
    )
    assert config.arch == constructed_a.arch
    stem = arch.Stem.imagenet()
    assert stem == config.stem and arch.Stem.preset("imagenet", 999) == stem  # fixed whatever C
    assert config.head == arch.head_for_stem("imagenet", 1001)
    net = arch.Network(constructed_a.arch, stem, arch.head_for_stem("imagenet", 1001))
    assert net == config.initial_network()
    assert net.stem.out_channels(3) == 288
    assert net.stem.base_width() == 96
    assert net.notation(6) == "288/15-6-4-4/6"
    parts = cost.analyse(net, 299).parts
    assert [p.shape for p in parts[:3]] == [(150, 150, 96), (75, 75, 192), (38, 38, 288)]
    assert [p.params for p in parts[:3]] == [8_064, 510_144, 1_530_144]
    assert cost.count_params(net) == 62_733_378  # the paper's 62M
    # C of a notation keeps its meaning for the body's widths; the stem does not change.
    body = arch.network_from_notation("128/10-1-1-1/6", "imagenet").body
    assert body == arch.network_from_notation("128/10-1-1-1/6").body


def test_branch_ids_count_wideners():
    net = arch.network_from_notation("128/10-1-1-1/6")
    ids = net.branch_ids()
    assert len(ids) == 78
    cells = sorted({b.cell for b in ids})
    assert cells == list(range(1, 11)) + [12, 14, 16]
    assert ids[0].original == "Cell1/Branch1" and ids[0].keras == "cell1_branch1"
    assert arch.BranchId.parse("Cell12/Branch3") == arch.BranchId(12, "Branch3")
    assert all("/" not in b.keras for b in ids)


def test_branch_keys_any_number_and_repeated_ops():
    body = arch.body_from_original(
        [{"filters": {"Branch0": "3x3", "Branch10": "3x3", "Branch2": "7x7"}, "outputs": 30}]
    )
    net = arch.Network(body)
    assert [k for k, _ in net.body[0].branches] == ["Branch0", "Branch10", "Branch2"]  # sorted as strings
    assert net.body[0].width == 30 and net.body[0].branch_width == 10


def test_real_width_floor():
    cell = arch.Cell(arch.STANDARD_CELL, 128)
    assert cell.branch_width == 21 and cell.width == 126


def test_stage_outputs_parameter_limits():
    assert arch.stage_outputs(128, 1, 3, False) == [256, 256, 256]
    assert arch.stage_outputs(128, 0, 5, True) == [42] * 4 + [128]  # int(128 / 3 * (sqrt(4) - 1))
    assert arch.stage_outputs(128, 1, 4, True) == [93, 93, 93, 256]  # int(256 / 2 * (sqrt(3) - 1))
    with pytest.raises(SpecError, match="parameterlimits"):
        arch.stage_outputs(128, 0, 2, True)


def _bad(body):
    with pytest.raises(SpecError) as info:
        arch.Network(arch.body_from_original(body))
    return str(info.value)


def test_bad_arch_inputs_name_field_and_value():
    ok = {"filters": {"Branch1": "1x1"}, "outputs": 8}
    assert "arch[0].filters.Branch1" in _bad([{"filters": {"Branch1": "4x4"}, "outputs": 8}])
    assert "arch[0].filters.Branch1" in _bad([{"filters": {"Branch1": "conv"}, "outputs": 8}])
    assert "at least one branch" in _bad([{"filters": {}, "outputs": 8}])
    assert "arch[0].outputs" in _bad([{"filters": {"Branch1": "1x1", "Branch2": "3x3"}, "outputs": 1}])
    assert "arch[0].outputs" in _bad([{"filters": {"Branch1": "1x1"}, "outputs": "8"}])
    assert "arch[1].inputs" in _bad([ok, {**ok, "inputs": [2]}])
    assert "arch[1].inputs" in _bad([ok, {**ok, "inputs": "some"}])
    assert "widener" in _bad([ok, {"widener": {}}])
    assert "widener" in _bad([ok, {"widener": {}}, {"widener": {}}, ok])
    assert "arch[0].filters key" in _bad([{"filters": {"B1": "1x1"}, "outputs": 8}])
    assert "arch[0].output" in _bad([{"filters": {"Branch1": "1x1"}, "output": 8}])
    assert "arch[0]" in _bad([["Branch1"]])
    with pytest.raises(SpecError, match="expected a JSON list"):
        arch.body_from_original({"filters": {}})


def test_wrong_number_of_wideners_in_config(fixtures_dir):
    raw = json.loads((fixtures_dir / CONFIGS / "longruns/network.cons-exp-3-bc-longrun.json").read_text())
    raw["arch"] = [e for e in raw["arch"] if "widener" not in e][:3] + [{"widener": {}}] + raw["arch"][-1:]
    with pytest.raises(ConfigError, match="wideners"):
        OriginalConfig.from_original(raw)


def test_bad_config_values(fixtures_dir):
    raw = json.loads((fixtures_dir / CONFIGS / "construction/network.cons-exp-3.bc.json").read_text())
    for section, key, value, match in [
        ("parameters", "steps", "10", "parameters.steps"),
        ("parameters", "dataset", "svhn", "parameters.dataset"),
        ("envelopenet", "layersperstage", [10, 1], "envelopenet.layersperstage"),
        ("envelopenet", "construction", [1, 1, 1, 1], "envelopenet.construction"),
        ("envelopenet", "envelopecell", {"Branch1": "2x2"}, "envelopenet.envelopecell.Branch1"),
    ]:
        bad = json.loads(json.dumps(raw))
        bad[section][key] = value
        with pytest.raises(ConfigError, match=match.replace(".", r"\.")):
            OriginalConfig.from_original(bad)
    bad = json.loads(json.dumps(raw))
    del bad["envelopenet"]
    with pytest.raises(ConfigError, match="envelopenet"):
        OriginalConfig.from_original(bad)


def test_skip_index_must_pool_down():
    body = arch.body_from_original(
        [
            {"filters": {"Branch1": "1x1"}, "outputs": 8},
            {"widener": {}},
            {"filters": {"Branch1": "1x1"}, "outputs": 8},
            {"widener": {}},
            {"filters": {"Branch1": "1x1"}, "outputs": 8, "inputs": [0, 2]},
        ]
    )
    c = cost.analyse(arch.Network(body, arch.Stem.conv1x1(8)), 16)
    skip = [p for p in c.parts if p.kind == "skip"][0]
    # input: entry 4 (widener: 8 + 16 channels) + stem (8) + entry 2 (widener: 8 + 8)
    assert skip.params == (24 + 8 + 16) * 24 + 24


def run_summary(*args):
    return subprocess.run([sys.executable, "-m", "nac.summary", *args], capture_output=True, text=True)


def test_summary_cli_config_and_notation(fixtures_dir):
    out = run_summary(str(fixtures_dir / CONFIGS / "construction/network.cons-exp-3.bc.json"), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["trainable_params"] == 12_998_738
    assert data["notation"] == "128/10-1-1-1/6"
    assert data["flops_per_image"] == data["flops_forward_per_image"] == 2_479_052_472
    assert data["flops_training_per_image"] == 7_077_850_552
    assert (data["flops_batch"], data["flops_forward_per_batch"]) == (50, 50 * 2_479_052_472)
    assert "tensorflow" not in out.stderr.lower()
    text = run_summary("192/2-2-2/6", "--stem", "conv3x3", "--skip")
    assert text.returncode == 0 and "17,125,834" in text.stdout


def test_summary_cli_bare_arch_list(fixtures_dir, tmp_path):
    raw = json.loads((fixtures_dir / CONFIGS / "longruns/network.generated-topline-cifar10.json").read_text())
    path = tmp_path / "network.json"
    path.write_text(json.dumps(raw["arch"]))
    data = json.loads(run_summary(str(path), "--stem", "conv3x3", "--json").stdout)
    assert data["trainable_params"] == 39_556_426
    assert data["notation"] == "192/7-7-2/6"


def test_summary_cli_constructed_a_under_the_imagenet_stem(fixtures_dir, tmp_path):
    raw = json.loads((fixtures_dir / CONFIGS / "longruns/network.cons-exp-3-bc-longrun.json").read_text())
    path = tmp_path / "network.json"
    path.write_text(json.dumps(raw["arch"]))
    args = ("--stem", "imagenet", "--num_classes", "1001", "--image_size", "299", "--input_channels", "3")
    out = run_summary(str(path), *args)
    assert out.returncode == 0, out.stderr
    assert "trainable parameters: 62,733,378" in out.stdout and "288/15-6-4-4/6" in out.stdout
    data = json.loads(run_summary(str(path), "--stem", "imagenet", "--json").stdout)
    assert (data["trainable_params"], data["num_classes"], data["image_size"]) == (62_733_378, 1001, 299)
    out = run_summary(str(path), "--stem", "imagenet", "--stem_width", "288")
    assert out.returncode == 2 and "--stem_width" in out.stderr


@pytest.mark.parametrize(
    "content,message",
    [
        ('[{"filters": {"Branch1": "2x2"}, "outputs": 8}]', "arch[0].filters.Branch1"),
        ('[{"filters": {"Branch1": "3x3"}, "outputs": 8},', "line 1 column 48"),
        (
            '[{"filters": {"Branch1": "3x3"}, "outputs": 8}, {"filters": {"Branch1": "3x3"}, "outputs": 8, "inputs": [5]}]',
            "arch[1].inputs",
        ),
    ],
)
def test_summary_cli_errors_are_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    out = run_summary(str(path))
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert message in out.stderr


def test_summary_cli_missing_file_and_bad_notation():
    out = run_summary("nope/missing.json")
    assert out.returncode == 2 and "notation" in out.stderr
    out = run_summary("128/10-1-x/6")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    out = run_summary("16/2-1/6", "--image_size", "0")
    assert out.returncode == 2 and "--image_size" in out.stderr


def test_random_config_instance_is_seeded(fixtures_dir):
    path = str(fixtures_dir / CONFIGS / "construction/network.cons-exp-3-rnd.json")
    a = json.loads(run_summary(path, "--json", "--seed", "1").stdout)
    b = json.loads(run_summary(path, "--json", "--seed", "1").stdout)
    c = json.loads(run_summary(path, "--json", "--seed", "2").stdout)
    assert a == b and a["fingerprint"] != c["fingerprint"]
    assert [sum(s["branches"]) for s in a["stages"]] == [60, 17, 15, 15]


def test_pure_python_modules_do_not_import_tensorflow():
    code = (
        "import sys, nac.spec.arch, nac.spec.config, nac.spec.cost, nac.summary, nac.search.statsio, nac.spec.random_arch, nac.data.datafiles,"
        " nac.restructure, nac.training.recipe, nac.run.runconfig, nac.run.rundir, nac.search.stability, nac.reporting.table1, nac.search.stopping,"
        " nac.search.inherit, nac.net.divergence, nac.run.lock, nac.reporting.original_results, nac.training.runtime,"
        " nac.reporting.studystats, nac.spec.choices, nac.spec.checks, nac.spec.errors, nac.spec.jsonio, nac.cli;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')];"
        "assert not bad, bad[:5]"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_cell_validates_itself_and_holds_parsed_ops():
    cell = arch.Cell((("Branch2", "5x5sep"), ("Branch0", "1x1")), 12)
    assert cell.branches == (("Branch0", "1x1"), ("Branch2", "5x5sep"))  # the JSON form: strings
    assert cell.branch_ops() == (("Branch0", arch.Op(1, False)), ("Branch2", arch.Op(5, True)))
    assert cell == arch.Cell((("Branch0", "1x1"), ("Branch2", "5x5sep")), 12)  # ops are not a field
    with pytest.raises(SpecError, match="cell branch Branch1: got '4x4'"):
        arch.Cell((("Branch1", "4x4"),), 8)
    with pytest.raises(SpecError, match="cell branch key: got 'B1'"):
        arch.Cell((("B1", "3x3"),), 8)
