"""Benchmarks cannot rot: every script in bench/ runs here at a toy size, and must exit 0 and record
its table (to a temporary file: BENCH_RESULTS, never bench/RESULTS.md). Their timings are not
checked — a figure at this size means nothing; that they still run is the point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench"
SMOKE = {  # script → a toy size
    "apply_bench.py": ["30", "20"],
    "chaos.py": ["1", "1", "20", "--concurrency", "2", "--speed", "100"],
    "load_stages.py": ["20", "--runs", "1"],
    "lockfile_bench.py": ["50"],
    "plan_bench.py": ["20", "40", "--runs", "1"],
    "validate_bench.py": ["10", "--runs", "1"],
}


def test_every_benchmark_has_a_smoke_run():
    scripts = {path.name for path in BENCH.glob("*.py")} - {"record.py"}
    assert scripts == set(SMOKE), "give the new benchmark a toy size here"


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_the_benchmark_runs_at_a_toy_size_and_records_its_table(script, tmp_path):
    results = tmp_path / "results.md"
    env = {**os.environ, "BENCH_RESULTS": str(results), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, str(BENCH / script), *SMOKE[script]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = results.read_text()
    assert text.startswith("\n## ") and f"`python bench/{script} {' '.join(SMOKE[script])}`" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) >= 3, text  # a header, its rule and at least one row of figures
