"""benchmarks/gpu_check.sh: its dry run (everything tiny, on the CPU) writes the report."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--dry_run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["tests"]["exit_code"] == 0 and results["tests"]["dry_run"]
    rows = {(row["variant"], row["steps_per_loop"]): row for row in results["throughput"]["rows"]}
    assert set(rows) == {("float32", 1), ("float32", 20), ("mixed_float16", 1), ("xla", 1)}
    assert all(row.get("images_per_sec", 0) > 0 for row in rows.values()), rows
    assert results["construction"]["exit_code"] == 0
    assert results["construction_summary"]["complete"]
    text = (out / "results.md").read_text()
    assert "| xla |" in text and "Construction: exit 0" in text
