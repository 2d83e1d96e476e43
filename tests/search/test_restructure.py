"""Tests of nac.restructure: the original's decisions, hand-written cases, errors, the CLI."""

import dataclasses
import json
import pathlib
import random
import subprocess
import sys

import pytest

from nac.cli import restructure as rs_cli
from nac.search import restructure as rs
from nac.search import statsio
from nac.spec import arch as arch_lib
from nac.spec.config import OriginalConfig
from nac.spec.errors import NothingToPruneError, RestructureError, StatsError

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"
CASES = sorted(p.name for p in (FIXTURES / "restructure_cases").iterdir() if p.is_dir())
CONFIGS = FIXTURES / "original_configs"
REPO = pathlib.Path(__file__).parents[2]
OPS = dict(arch_lib.STANDARD_CELL)


# -- helpers ------------------------------------------------------------------------------


def net(*stages, base=128, outputs=None, inputs=None):
    """A network from literal layers: each stage a list of digit strings, "135" meaning
    Branch1, Branch3, Branch5 with the EnvelopeCell's ops. `outputs`/`inputs` per layer in
    network order (default: the stage-width rule, no skip)."""
    body, i = [], 0
    for s, stage in enumerate(stages):
        if s:
            body.append(arch_lib.Widener())
        for layer in stage:
            out = outputs[i] if outputs else 2**s * base
            inp = inputs[i] if inputs else None
            body.append(arch_lib.Cell(tuple((f"Branch{d}", OPS[f"Branch{d}"]) for d in layer), out, inp))
            i += 1
    return arch_lib.Network(tuple(body), arch_lib.Stem.conv1x1(base))


def layout(network):
    """The literal form of `net`: per stage, the digit strings of its layers."""
    return [["".join(key[6:] for key, _ in cell.branches) for _, cell in stage] for stage in network.stages()]


def outputs_of(network):
    return [cell.outputs for _, cell in network.cells()]


def inputs_of(network):
    return [cell.inputs for _, cell in network.cells()]


def stats_from(network, value_of):
    """`{branch id: value_of(index, BranchId)}` over every branch in network order."""
    return {b.original: float(value_of(i, b)) for i, b in enumerate(network.branch_ids())}


def policy(n, **kwargs):
    kwargs.setdefault("construction", (True,) * n)
    kwargs.setdefault("maxlayersperstage", (20,) * n)
    return rs.Policy(**kwargs)


def cli_argv(config, arch, stats, out, *extra):
    return ["--config", str(config), "--arch", str(arch), "--stats", str(stats), "--out", str(out), *extra]


def case_inputs(name):
    d = FIXTURES / "restructure_cases" / name
    config = OriginalConfig.load(d / "config.json")
    body = arch_lib.body_from_original(json.loads((d / "arch.json").read_text()))
    return d, config, config.network(body)


# -- the original's test vectors ----------------------------------------------------------


@pytest.mark.parametrize("stats_file", ["stats.json", "res.log"])
@pytest.mark.parametrize("case", CASES)
def test_original_vectors_function(case, stats_file):
    d, config, network = case_inputs(case)
    stats = statsio.read_stats(d / stats_file)
    new = rs.restructure(network, stats, rs.Policy.from_config(config))
    assert new.arch_json() == json.loads((d / "expected.json").read_text())
    assert new.stem == network.stem and new.head == network.head


def test_nine_vectors_present():
    assert CASES == [f"{i:02d}" for i in range(9)]


@pytest.mark.parametrize("stats_file", ["stats.json", "res.log"])
@pytest.mark.parametrize("case", CASES)
def test_original_vectors_cli_in_process(case, stats_file, tmp_path, capsys):
    d = FIXTURES / "restructure_cases" / case
    out = tmp_path / "sub" / "next.json"
    args = cli_argv(d / "config.json", d / "arch.json", d / stats_file, out)
    with pytest.raises(SystemExit) as exit_info:
        rs_cli.run(args)
    assert exit_info.value.code == 0
    # The original's format: indent=4, sorted keys.
    assert out.read_text().rstrip("\n") == (d / "expected.json").read_text().rstrip("\n")
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "stage 0: pruned" in captured.out and f"wrote {out}" in captured.out
    assert sorted(p.name for p in out.parent.iterdir()) == ["next.json"]  # no temp files left


def run_restructure(*argv):
    """`python -m nac.restructure ARGV` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "nac.restructure", *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("case, stats_file", [("00", "stats.json"), ("05", "res.log")])
def test_original_vectors_cli_subprocess(case, stats_file, tmp_path):
    d = FIXTURES / "restructure_cases" / case
    out = tmp_path / "next.json"
    proc = run_restructure(*cli_argv(d / "config.json", d / "arch.json", d / stats_file, out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(out.read_text()) == json.loads((d / "expected.json").read_text())
    assert "->" in proc.stdout


def test_vector_report_and_frozen_stage_with_skip():
    # Case 03: construction [true, true, false], skip on: the frozen stage keeps its cells.
    d, config, network = case_inputs("03")
    new, report = rs.restructure_with_report(
        network, statsio.read_stats(d / "stats.json"), rs.Policy.from_config(config)
    )
    assert [s.action for s in report.stages] == ["restructured", "restructured", "frozen"]
    assert [s.layers_after for s in report.stages] == [3, 3, 2]
    assert report.added_cells == (3, 7)
    assert [len(s.pruned) for s in report.stages] == [4, 4, 0]  # min(6, 12 // 3)
    assert [k for k, _ in new.stages()[2]] == [9, 10]
    assert [c for _, c in new.stages()[2]] == [c for _, c in network.stages()[2]]
    assert set(inputs_of(new)) == {"all"}


def test_variance_statistic_reads_variance_lines(tmp_path):
    d, config, network = case_inputs("01")
    l2 = statsio.read_stats(d / "res.log", "l2")
    variance = statsio.read_stats(d / "res.log", "variance")
    assert l2 != variance
    expected = rs.restructure(network, variance, rs.Policy.from_config(config)).arch_json()
    out = tmp_path / "next.json"
    for flag in ("--statistic", "--metric"):  # --metric: the flag's former name
        assert (
            rs_cli.main(cli_argv(d / "config.json", d / "arch.json", d / "res.log", out, flag, "variance"))
            == 0
        )
        assert json.loads(out.read_text()) == expected
        out.unlink()


# -- the paper's trace of cons-exp-3.bc ---------------------------------------------------

TRACE = [  # (layers per stage, branches per stage) after 0..5 restructurings
    ([10, 1, 1, 1], [60, 6, 6, 6]),
    ([11, 2, 2, 2], [60, 10, 10, 10]),
    ([12, 3, 3, 3], [60, 13, 13, 13]),
    ([13, 4, 4, 4], [60, 15, 15, 15]),
    ([14, 5, 4, 4], [60, 16, 15, 15]),
    ([15, 6, 4, 4], [60, 17, 15, 15]),
]

GENERATORS = {
    "ascending": lambda i, b: i,
    "descending": lambda i, b: -i,
    "constant": lambda i, b: 1.0,
    "seeded": lambda i, b: random.Random(f"{b.original}").random(),
    "by_key": lambda i, b: (7 * b.cell + 3 * arch_lib.branch_number(b.key)) % 11,
}


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@pytest.mark.parametrize("worstcase", [False, True])
def test_cons_exp_3_bc_trace(generator, worstcase):
    config = OriginalConfig.load(CONFIGS / "construction" / "network.cons-exp-3.bc.json")
    pol = rs.Policy.from_config(config)
    if worstcase:
        pol = dataclasses.replace(pol, worstcase=True)
    network = config.initial_network()
    assert network.notation() == "128/10-1-1-1/6"
    for step, (layers, branches) in enumerate(TRACE):
        assert (network.layers_per_stage(), network.branches_per_stage()) == (layers, branches), step
        if step < len(TRACE) - 1:
            network = rs.restructure(network, stats_from(network, GENERATORS[generator]), pol)
    assert network.notation() == "128/15-6-4-4/6"
    assert outputs_of(network) == [128] * 15 + [256] * 6 + [512] * 4 + [1024] * 4


# -- hand-written cases -------------------------------------------------------------------

# Two stages: 12 branches (limit min(6, 12 // 3) = 4) and 6 branches (limit 2).
SMALL = (["123456", "123456"], ["123456"])
SMALL_VALUES = {  # Cell1: 1..6, Cell2: 12..7 by key, Cell4: 6..1 by key
    **{f"Cell1/Branch{k}": float(k) for k in range(1, 7)},
    **{f"Cell2/Branch{k}": float(13 - k) for k in range(1, 7)},
    **{f"Cell4/Branch{k}": float(7 - k) for k in range(1, 7)},
}


def test_best_case_literal():
    new, report = rs.restructure_with_report(net(*SMALL), SMALL_VALUES, policy(2))
    assert layout(new) == [["56", "123456", "123456"], ["1234", "123456"]]
    assert outputs_of(new) == [128, 128, 128, 256, 256]
    assert [b.original for b in report.pruned] == [
        "Cell1/Branch1",
        "Cell1/Branch2",
        "Cell1/Branch3",
        "Cell1/Branch4",
        "Cell4/Branch6",
        "Cell4/Branch5",
    ]
    assert report.added_cells == (3, 6)
    assert report.cell_map == ((1, 1), (2, 2), (4, 5))
    assert report.new_index(4) == 5
    assert [s.prune_limit for s in report.stages] == [4, 2]
    assert report.to_dict()["stages"][1]["pruned"] == ["Cell4/Branch6", "Cell4/Branch5"]
    assert isinstance(new.body[3], arch_lib.Widener)


def test_worst_case_literal():
    new = rs.restructure(net(*SMALL), SMALL_VALUES, policy(2, worstcase=True))
    # Largest first: Cell2/Branch1 (12), Branch2 (11), Branch3 (10), Branch4 (9).
    assert layout(new) == [["123456", "56", "123456"], ["3456", "123456"]]


@pytest.mark.parametrize("worstcase", [False, True])
def test_ties_are_broken_by_network_order(worstcase):
    stats = {b.original: 5.0 for b in net(*SMALL).branch_ids()}
    new, report = rs.restructure_with_report(net(*SMALL), stats, policy(2, worstcase=worstcase))
    assert layout(new) == [["56", "123456", "123456"], ["3456", "123456"]]
    # Mixed: equal values among themselves keep network order, even across layers.
    stats.update({"Cell2/Branch2": 1.0, "Cell1/Branch5": 1.0, "Cell2/Branch1": 1.0})
    new = rs.restructure(net(*SMALL), stats, policy(2))
    assert layout(new)[0] == ["2346", "3456", "123456"]


def test_stats_order_does_not_matter():
    items = list(SMALL_VALUES.items())
    random.Random(3).shuffle(items)
    assert rs.restructure(net(*SMALL), dict(items), policy(2)) == rs.restructure(
        net(*SMALL), SMALL_VALUES, policy(2)
    )


def test_last_branch_in_layer_is_never_pruned():
    network = net(["1", "12", "123"])  # 6 branches: limit 2
    stats = {
        "Cell1/Branch1": 0.0,
        "Cell2/Branch1": 1.0,
        "Cell2/Branch2": 2.0,
        "Cell3/Branch1": 3.0,
        "Cell3/Branch2": 4.0,
        "Cell3/Branch3": 5.0,
    }
    new, report = rs.restructure_with_report(network, stats, policy(1))
    # Cell1/Branch1 is alone (skipped), Cell2/Branch1 pruned, Cell2/Branch2 now alone (skipped,
    # and it does not count), Cell3/Branch1 pruned: the limit is reached.
    assert [b.original for b in report.pruned] == ["Cell2/Branch1", "Cell3/Branch1"]
    assert layout(new) == [["1", "2", "23", "123456"]]


def test_fewer_prunable_than_the_limit():
    network = net(["1", "1", "1", "12", "1", "1", "1", "1", "1"])  # 10 branches: limit 3
    stats = stats_from(network, lambda i, b: i)
    new, report = rs.restructure_with_report(network, stats, policy(1))
    assert [b.original for b in report.pruned] == ["Cell4/Branch1"]
    assert report.stages[0].prune_limit == 3
    assert layout(new) == [["1", "1", "1", "2", "1", "1", "1", "1", "1", "123456"]]


@pytest.mark.parametrize(
    "branches, maxfilterprune, fraction, expected",
    [
        (60, 6, 1 / 3, 6),
        (60, 2, 1 / 3, 2),
        (6, 6, 1 / 3, 2),
        (9, 6, 1 / 3, 3),
        (8, 6, 1 / 3, 2),
        (5, 6, 1 / 3, 1),
        (2, 6, 1 / 3, 1),
        (1, 6, 1 / 3, 1),
        (6, 6, 0.5, 3),
        (17, 6, 1 / 3, 5),
        (18, 6, 1 / 3, 6),
        (21, 6, 1 / 3, 6),
    ],
)
def test_prune_limit(branches, maxfilterprune, fraction, expected):
    pol = policy(1, maxfilterprune=maxfilterprune, prune_fraction=fraction)
    assert pol.prune_limit(branches) == expected


def test_maxfilterprune_and_one_third_cap_decide_the_count():
    network = net(["123456"] * 10, ["123456"] * 2)  # 60 and 12 branches
    stats = stats_from(network, lambda i, b: i)
    counts = lambda pol: [len(s.pruned) for s in rs.restructure_with_report(network, stats, pol)[1].stages]  # noqa: E731
    assert counts(policy(2)) == [6, 4]
    assert counts(policy(2, maxfilterprune=2)) == [2, 2]
    assert counts(policy(2, maxfilterprune=5)) == [5, 4]
    assert counts(policy(2, prune_fraction=0.25)) == [6, 3]
    new = rs.restructure(network, stats, policy(2, maxfilterprune=2))
    assert layout(new) == [["3456"] + ["123456"] * 10, ["3456", "123456", "123456"]]


def test_frozen_stage_is_copied_and_needs_no_stats():
    network = net(["12", "34"], ["123", "456"], outputs=[128, 100, 7, 300], inputs=[None, (0,), "all", None])
    stats = {"Cell1/Branch1": 1.0, "Cell1/Branch2": 2.0, "Cell2/Branch3": 3.0, "Cell2/Branch4": 4.0}
    new, report = rs.restructure_with_report(network, stats, policy(2, construction=(True, False)))
    assert [s.action for s in report.stages] == ["restructured", "frozen"]
    assert layout(new) == [["2", "34", "123456"], ["123", "456"]]
    # outputs are recomputed for every stage, frozen ones too (the original's set_outputs);
    # without skip, layers keep their inputs and the new cell has none.
    assert outputs_of(new) == [128, 128, 128, 256, 256]
    assert inputs_of(new) == [None, (0,), None, "all", None]
    assert report.cell_map == ((1, 1), (2, 2), (4, 5), (5, 6))
    assert report.stages[1].describe() == "stage 1: unchanged (construction is false)"


def test_stage_at_its_maximum_is_restructured_and_above_is_copied():
    network = net(["12", "12"], ["12", "12", "12"])
    stats = stats_from(network, lambda i, b: i)
    pol = policy(2, maxlayersperstage=(2, 2))  # stage 0: len == max; stage 1: max + 1
    new, report = rs.restructure_with_report(
        network, {k: v for k, v in stats.items() if k.startswith(("Cell1/", "Cell2/"))}, pol
    )
    assert [s.action for s in report.stages] == ["restructured", "full"]
    assert layout(new) == [["2", "12", "123456"], ["12", "12", "12"]]
    assert "above its maximum" in report.stages[1].describe()
    # The restructured stage now has max + 1 layers and is copied next time.
    again, report = rs.restructure_with_report(new, {}, pol)
    assert again == new and [s.action for s in report.stages] == ["full", "full"]


def test_parameter_limits():
    network = net(["12", "12", "12"], ["12"])
    stats = stats_from(network, lambda i, b: i)
    # Stage 1 ends with 2 layers: the original divides by zero.
    with pytest.raises(RestructureError, match=r"parameterlimits\[1\].*2 layers"):
        rs.restructure(network, stats, policy(2, parameterlimits=(True, True)))
    new = rs.restructure(network, stats, policy(2, parameterlimits=(True, False)))
    assert outputs_of(new) == [46, 46, 46, 128, 256, 256]  # int(128 / 2 * (sqrt(3) - 1)) = 46
    # A frozen one-layer stage with a limit keeps W; a frozen two-layer stage fails too.
    new = rs.restructure(network, stats, policy(2, parameterlimits=(False, True), construction=(True, False)))
    assert outputs_of(new) == [128, 128, 128, 128, 256]
    two = net(["12"], ["12", "12"])
    with pytest.raises(RestructureError, match=r"parameterlimits\[1\]"):
        rs.restructure(
            two,
            stats_from(two, lambda i, b: i),
            policy(2, parameterlimits=(False, True), construction=(True, False)),
        )


def test_outputs_follow_the_stem_base_width():
    network = net(["12"], ["12"], base=192)
    new = rs.restructure(network, stats_from(network, lambda i, b: i), policy(2))
    assert outputs_of(new) == [192, 192, 384, 384]


def test_skip_is_reapplied():
    network = net(["12", "34"], ["56"], inputs=[(0,), None, (1, 2)])
    stats = stats_from(network, lambda i, b: i)
    new = rs.restructure(network, stats, policy(2, skip=True))
    assert inputs_of(new) == ["all"] * 5
    new = rs.restructure(network, stats, policy(2, skip=False))
    assert inputs_of(new) == [(0,), None, None, (1, 2), None]
    assert new.arch_json()[0]["inputs"] == [0] and "inputs" not in new.arch_json()[2]


def test_custom_envelopecell_keys_are_kept():
    network = net(["123"])
    cell = (("Branch7", "3x3"), ("Branch9", "5x5sep"))
    new = rs.restructure(network, stats_from(network, lambda i, b: i), policy(1, envelopecell=cell))
    assert new.body[-1].branches == cell
    assert (
        rs.Policy(
            construction=(True,), maxlayersperstage=(3,), envelopecell={"Branch9": "5x5sep", "Branch7": "3x3"}
        ).envelopecell
        == cell
    )


def test_deterministic_and_input_untouched():
    network = net(*SMALL)
    before = network.to_dict()
    first = rs.restructure_with_report(network, SMALL_VALUES, policy(2))
    assert rs.restructure_with_report(network, SMALL_VALUES, policy(2)) == first
    assert network.to_dict() == before
    assert first[0].fingerprint() == rs.restructure(net(*SMALL), SMALL_VALUES, policy(2)).fingerprint()


def test_policy_from_config_and_errors():
    config = OriginalConfig.load(CONFIGS / "construction" / "network.construction-cifar10-topline.json")
    pol = rs.Policy.from_config(config)
    assert pol == rs.Policy(
        construction=(True, True, False),
        maxlayersperstage=(7, 6, 2),
        maxfilterprune=6,
        worstcase=False,
        envelopecell=arch_lib.STANDARD_CELL,
        parameterlimits=(False, False, False),
        skip=True,
    )
    wc = rs.Policy.from_config(OriginalConfig.load(CONFIGS / "construction" / "network.cons-exp-3.wc.json"))
    assert wc.worstcase
    longrun = OriginalConfig.load(CONFIGS / "longruns" / "network.generated-topline-cifar10.json")
    with pytest.raises(RestructureError, match="envelopenet.*construction config"):
        rs.Policy.from_config(longrun)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"construction": (True,)}, r"policy.construction: got 1 values.*2 stages.*one per stage"),
        ({"maxlayersperstage": (5, 5, 5)}, r"policy.maxlayersperstage: got 3 values"),
        ({"parameterlimits": (False,)}, r"policy.parameterlimits: got 1 values"),
    ],
)
def test_policy_length_errors(kwargs, match):
    with pytest.raises(RestructureError, match=match):
        rs.restructure(net(*SMALL), SMALL_VALUES, policy(2, **kwargs))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"maxfilterprune": 0}, "maxfilterprune"),
        ({"maxfilterprune": True}, "maxfilterprune"),
        ({"prune_fraction": 0}, "prune_fraction"),
        ({"prune_fraction": 1.5}, "prune_fraction"),
        ({"construction": (1, 0)}, "construction"),
        ({"maxlayersperstage": (0, 3)}, "maxlayersperstage"),
        ({"parameterlimits": ("no", False)}, "parameterlimits"),
        ({"worstcase": "yes"}, "worstcase"),
        ({"skip": 1}, "skip"),
        ({"envelopecell": ()}, "envelopecell"),
        ({"envelopecell": (("Branch1", "2x2"),)}, "envelopecell"),
        ({"envelopecell": (("B1", "3x3"),)}, "envelopecell"),
        ({"envelopecell": (("Branch1", "3x3"), ("Branch1", "5x5"))}, "envelopecell"),
    ],
)
def test_policy_value_errors(kwargs, field):
    with pytest.raises(RestructureError, match=f"policy.{field}"):
        policy(2, **kwargs)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"Cell99/Branch1": 1.0}, r"'Cell99/Branch1' is not a branch of the architecture"),
        ({"Cell3/Branch1": 1.0}, r"'Cell3/Branch1' is not a branch"),  # entry 3 is a widener
        ({"Cell1/Branch7": 1.0}, r"'Cell1/Branch7' is not a branch"),
        ({"garbage": 1.0}, r"'garbage' is not a branch"),
        ({"Cell1/Branch1": "abc"}, r"Cell1/Branch1 has value 'abc', not a number"),
        ({"Cell1/Branch1": None}, r"Cell1/Branch1 has value None, not a number"),
        ({"Cell1/Branch1": True}, r"not a number"),
        ({"Cell4/Branch2": float("nan")}, r"Cell4/Branch2 has value nan; give a finite number"),
        ({"Cell2/Branch2": float("inf")}, r"finite"),
        ({"Cell2/Branch3": "1.5"}, r"Cell2/Branch3 has value '1.5', not a number"),
    ],
)
def test_stats_errors(change, match):
    stats = dict(SMALL_VALUES)
    stats.update(change)
    with pytest.raises(StatsError, match=match) as info:
        rs.restructure(net(*SMALL), stats, policy(2))
    assert "\n" not in str(info.value)


def test_missing_stats_error():
    stats = dict(SMALL_VALUES)
    del stats["Cell4/Branch3"]
    with pytest.raises(StatsError, match=r"Cell4/Branch3 has no value, but its stage 1 is restructured"):
        rs.restructure(net(*SMALL), stats, policy(2))
    # Allowed when that stage is frozen (above its maximum: see the test of maxlayersperstage).
    rs.restructure(net(*SMALL), stats, policy(2, construction=(True, False)))
    with pytest.raises(StatsError, match="expected a mapping"):
        rs.restructure(net(*SMALL), [1.0, 2.0], policy(2))


def test_nothing_to_prune():
    network = net(["123"], ["1", "2"])
    stats = stats_from(network, lambda i, b: i)
    with pytest.raises(NothingToPruneError, match=r"stage 1: nothing to prune.*construction\[1\]"):
        rs.restructure(network, stats, policy(2))
    assert issubclass(NothingToPruneError, RestructureError)
    new = rs.restructure(network, stats, policy(2, construction=(True, False)))
    assert layout(new) == [["23", "123456"], ["1", "2"]]


# -- the command line: errors ------------------------------------------------------------


@pytest.fixture
def cli_files(tmp_path):
    """A small consistent set of inputs (case 03: 3 stages, skip) and a writer for variants."""
    d = FIXTURES / "restructure_cases" / "03"
    files = {
        "config": json.loads((d / "config.json").read_text()),
        "arch": json.loads((d / "arch.json").read_text()),
        "stats": json.loads((d / "stats.json").read_text()),
    }

    def write(**overrides):
        paths = {}
        for name, value in {**files, **overrides}.items():
            path = tmp_path / f"{name}.json"
            path.write_text(value if isinstance(value, str) else json.dumps(value))
            paths[name] = str(path)
        return paths

    return files, write, tmp_path


def run_cli(paths, out, extra=()):
    argv = cli_argv(paths["config"], paths["arch"], paths["stats"], out, *extra)
    with pytest.raises(SystemExit) as info:
        rs_cli.run(argv)
    return info.value.code


def assert_cli_error(capsys, code, out, match):
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nac.restructure: error: ")
    assert match in lines[0], lines[0]
    assert not pathlib.Path(out).exists()
    assert not any(p.name.startswith("next.json") for p in pathlib.Path(out).parent.iterdir())


def test_cli_works_on_the_fixture_inputs(cli_files, capsys):
    files, write, tmp = cli_files
    assert run_cli(write(), tmp / "next.json") == 0
    assert "stage 2: unchanged (construction is false)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f["stats"].update({"Cell99/Branch1": 1.0}), "'Cell99/Branch1' is not a branch"),
        (lambda f: f["stats"].pop("Cell1/Branch1"), "Cell1/Branch1 has no value"),
        (lambda f: f["stats"].update({"Cell1/Branch1": "x"}), "expected a number"),
        (lambda f: f["stats"].update({"Cell1/Branch1": float("nan")}), "expected a finite number"),
        (
            lambda f: f["config"]["envelopenet"].update(
                stages=2,
                layersperstage=[2, 2],
                maxlayersperstage=[7, 6],
                construction=[True, True],
                parameterlimits=[False, False],
            ),
            "policy.construction: got 2 values [True, True] for a network of 3 stages",
        ),
        (
            lambda f: f["config"]["envelopenet"].update(parameterlimits=[False, False, True]),
            "parameterlimits[2]",
        ),
        (
            lambda f: f["arch"].__setitem__(0, {"filters": {"Branch1": "2x2"}, "outputs": 192}),
            "arch[0].filters.Branch1",
        ),
        (lambda f: f["config"].pop("envelopenet"), "envelopenet"),
    ],
)
def test_cli_errors(cli_files, capsys, mutate, match):
    files, write, tmp = cli_files
    files = json.loads(json.dumps(files))
    mutate(files)
    paths = write(**files)
    out = tmp / "next.json"
    assert_cli_error(capsys, run_cli(paths, out), out, match)


def test_cli_nothing_to_prune(cli_files, capsys):
    files, write, tmp = cli_files
    files = json.loads(json.dumps(files))
    files["arch"][0:2] = [{"filters": {"Branch1": "1x1"}, "outputs": 192, "inputs": "all"}] * 2
    files["stats"] = {k: v for k, v in files["stats"].items() if not k.startswith(("Cell1/", "Cell2/"))}
    files["stats"].update({"Cell1/Branch1": 1.0, "Cell2/Branch1": 2.0})
    out = tmp / "next.json"
    assert_cli_error(capsys, run_cli(write(**files), out), out, "stage 0: nothing to prune")


def test_cli_config_without_envelopenet(cli_files, capsys):
    files, write, tmp = cli_files
    paths = write()
    paths["config"] = str(CONFIGS / "longruns" / "network.generated-topline-cifar10.json")
    paths["arch"] = str(write(arch=json.loads(pathlib.Path(paths["config"]).read_text())["arch"])["arch"])
    out = tmp / "next.json"
    assert_cli_error(capsys, run_cli(paths, out), out, "needs a construction config")


@pytest.mark.parametrize(
    "which, text, match",
    [
        ("stats", "MeanSSS:Cell1/Branch1:[nan]\n", "expected a finite number"),
        ("stats", "nothing here\n", "no MeanSSS:Cell<k>/Branch<N>:[value] lines found"),
        ("stats", "{not json", "not valid JSON"),
        ("arch", "{not json", "not valid JSON"),
        ("arch", "{}", "expected a JSON list"),
        ("config", "[]", "config"),
    ],
)
def test_cli_bad_files(cli_files, capsys, which, text, match):
    files, write, tmp = cli_files
    paths = write(**{which: text})
    out = tmp / "next.json"
    assert_cli_error(capsys, run_cli(paths, out), out, match)


def test_cli_missing_files_and_bad_out(cli_files, capsys):
    files, write, tmp = cli_files
    for name in ("config", "arch", "stats"):
        paths = write()
        paths[name] = str(tmp / "absent.json")
        out = tmp / "next.json"
        assert_cli_error(capsys, run_cli(paths, out), out, "does not exist")
    (tmp / "outdir").mkdir()
    assert run_cli(write(), tmp / "outdir") == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert list((tmp / "outdir").iterdir()) == []


@pytest.mark.parametrize(
    "argv, match",
    [
        ([], "the following arguments are required"),
        (["--config", "c", "--arch", "a", "--stats", "s"], "--out"),
        (["--config", "c", "--arch", "a", "--stats", "s", "--out", "o", "--metric", "l1"], "invalid choice"),
        (["--config", "c", "--arch", "a", "--stats", "s", "--out", "o", "--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_bad_flags(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        rs_cli.run(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and match in err


def test_cli_subprocess_error_is_one_line(cli_files):
    files, write, tmp = cli_files
    files = json.loads(json.dumps(files))
    files["stats"]["Cell1/Branch1"] = "x"
    paths = write(**files)
    out = tmp / "next.json"
    proc = run_restructure(*cli_argv(paths["config"], paths["arch"], paths["stats"], out))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Cell1/Branch1" in proc.stderr
    assert not out.exists()
    proc = run_restructure("--metric", "l1")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1


def test_import_does_not_import_tensorflow():
    code = (
        "import sys, nac.restructure, nac.spec.random_arch; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
