"""experiments/figure4.sh: N seeded constructions of one envelope, then nac.report over them."""

import os
import pathlib
import subprocess

EXPERIMENTS = pathlib.Path(__file__).parents[2] / "experiments"


def test_figure4_script_runs_one_construction_per_seed_and_reports_them(tmp_path):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'for a in "$@"; do case "$a" in --run_dir=*) mkdir -p "${a#--run_dir=}";; esac; done\n'
    )
    fake.chmod(0o755)
    out = tmp_path / "fig4"
    env = dict(os.environ, PYTHON=str(fake), OUT=str(out), SEEDS="3")
    done = subprocess.run(
        ["bash", str(EXPERIMENTS / "figure4.sh"), "--final_steps=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    constructs = [line for line in lines if "nac.construct" in line]
    assert [f"--seed={s}" in line for s, line in zip((1, 2, 3), constructs)] == [True] * 3
    assert all("--final_steps=1" in line and "envelope_a_construct.flags" in line for line in constructs)
    (report,) = [line for line in lines if "nac.report" in line]
    args = report.split()
    assert args[args.index("nac.report") + 1 : args.index("--out")] == [
        str(out / f"construct_s{s}") for s in (1, 2, 3)
    ]
    assert "figure4_widths.png" in done.stdout
