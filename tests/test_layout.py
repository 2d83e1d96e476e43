"""The layer contract in `.importlinter` holds, and breaking it fails `lint-imports`."""

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(pathlib.Path(sys.executable).with_name("lint-imports"))


def lint(tree: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT, "--config", str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    if not pathlib.Path(LINT).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    copy = tmp_path_factory.mktemp("layout")
    shutil.copytree(ROOT / "nac", copy / "nac", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    return copy


def test_the_layers_hold(tree):
    out = lint(tree)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout


def test_a_spec_module_importing_tensorflow_breaks_the_contract(tree):
    cost = tree / "nac" / "spec" / "cost.py"
    original = cost.read_text()
    cost.write_text(original + "\nimport tensorflow  # noqa\n")
    try:
        out = lint(tree)
    finally:
        cost.write_text(original)
    assert out.returncode != 0
    assert "nac.spec.cost -> tensorflow" in out.stdout, out.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tree):
    arch = tree / "nac" / "spec" / "arch.py"
    original = arch.read_text()
    arch.write_text(original + "\nfrom nac.run import runner  # noqa\n")
    try:
        out = lint(tree)
    finally:
        arch.write_text(original)
    assert out.returncode != 0
    assert "nac.spec is not allowed to import nac.run" in out.stdout, out.stdout


SIZED = ("spec", "search", "net", "data", "training", "run", "reporting", "cli")


def test_modules_and_functions_stay_small():
    """At most 500 lines a module and 80 a function (def to last line, docstring included)."""
    big = []
    for package in SIZED:
        for module in sorted((ROOT / "nac" / package).rglob("*.py")):
            text = module.read_text()
            if len(text.splitlines()) > 500:
                big.append(f"{module.relative_to(ROOT)}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 80:
                        big.append(f"{module.relative_to(ROOT)}: {node.name} {lines} lines")
    assert not big, big
