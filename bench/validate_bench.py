"""Benchmark: `reconciler validate` over 1,000 manifests, and `reconciler --help` start-up.

Targets (issue 2): validate of 1,000 manifests < 2 s; `--help` < 0.3 s. `validate` is timed with the
load cache off (every manifest parsed and validated) and with it on and the manifests unchanged.
Run: `make bench` (or `.venv/bin/python bench/validate_bench.py [N]`); the figures are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import append

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "manifests"


def make_corpus(folder: Path, count: int) -> None:
    """`count` manifests: the five examples over and over, each under a unique name."""
    shutil.copytree(EXAMPLES / "evalscripts", folder / "evalscripts")
    templates = [(p.stem, p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    for i in range(count):
        stem, text = templates[i % len(templates)]
        name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:"))
        (folder / f"{i:05d}-{stem}.yaml").write_text(text.replace(f"name: {name}", f"name: {name}-{i}"))


def timed(command: list[str], runs: int, cache: str = "off", cwd: Path | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "RECONCILER_CACHE_DIR": cache},
                                cwd=cwd)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description="validate N manifests, and the CLI's start-up")
    parser.add_argument("count", nargs="?", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command, for a median (default 5)")
    args = parser.parse_args()
    count, runs = args.count, args.runs
    reconciler = [sys.executable, "-m", "reconciler"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "manifests"
        make_corpus(corpus, count)
        # run inside the folder, as in a repository: manifests are read only from inside it
        validate = timed([*reconciler, "validate", str(corpus)], runs=runs, cwd=folder)
        timed([*reconciler, "validate", str(corpus)], runs=1, cache=str(folder / "cache"), cwd=folder)  # fills it
        cached = timed([*reconciler, "validate", str(corpus)], runs=runs, cache=str(folder / "cache"), cwd=folder)
        from reconciler.manifests.loader import load

        os.environ["RECONCILER_CACHE_DIR"] = "off"
        os.chdir(folder)
        start = time.perf_counter()
        result = load([corpus])
        in_process = time.perf_counter() - start
        assert len(result.manifests) == count and not result.diagnostics
    help_times = timed([*reconciler, "--help"], runs=2 * runs)
    rows = [
        (f"| validate {count} manifests (CLI, {runs} runs, load cache off) | median {statistics.median(validate):.2f} s, "
         f"min {min(validate):.2f} s | < 2 s |"),
        (f"| validate {count} unchanged manifests (CLI, {runs} runs, load cache on) | median {statistics.median(cached):.2f} s, "
         f"min {min(cached):.2f} s | < 2 s |"),
        f"| load() of {count} manifests in-process | {in_process:.2f} s ({in_process / count * 1000:.2f} ms each) | |",
        (f"| `reconciler --help` ({2 * runs} runs) | median {statistics.median(help_times):.3f} s, "
         f"max {max(help_times):.3f} s | < 0.3 s |"),
    ]
    append("validate and start-up", rows)

if __name__ == "__main__":
    main()
