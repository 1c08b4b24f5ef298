"""Benchmark: apply throughput against a rate-limited service.

N one-tile v2 manifests that want `started` (no budget, so each is a create then a start) are
applied by one `reconciler apply --auto-approve` in its own process, against a sandbox that
answers 429 above LIMIT requests per second (sliding one-second window, Retry-After in ms).
The sandbox's clock is slowed so analyses do not finish during the run: the figures are the
client's, not the sandbox worker's.

Reported: the apply's wall time; API requests the sandbox accepted and refused (429) during the
run, from /sandbox/stats; the achieved rate (accepted requests / wall time) against the limit;
failed actions (the apply's exit code, and manifests without exactly one started job);
duplicates (live jobs beyond one per ownership marker). Targets (issue 8), at N = 1,000 and
LIMIT = 20: rate ≥ 90 % of the limit, 0 failed actions, 0 duplicates.

Run: `.venv/bin/python bench/apply_bench.py [N] [LIMIT] [--parallelism P]`; the figures are appended
to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import append  # noqa: E402

from tests.conftest import SandboxProcess  # noqa: E402
from tests.test_engine_chaos import marked_jobs  # noqa: E402

SMALL_BBOX = "bbox: [9.0, 42.0, 9.01, 42.01]"


def write_manifests(folder: Path, count: int) -> list[str]:
    source = (ROOT / "manifests" / "corsica-max-ndvi.yaml").read_text()
    source = source.replace("bbox: [8.44, 41.31, 9.66, 43.1]", SMALL_BBOX).replace("  policy:\n    maxCostPU: 5000\n", "")
    assert "state: started" in source and "maxCostPU" not in source
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "manifests" / "evalscripts", folder / "evalscripts")  # read only from inside the repository
    names = [f"throughput-{i:04d}" for i in range(count)]
    for name in names:
        (folder / f"{name}.yaml").write_text(source.replace("name: corsica-max-ndvi", f"name: {name}"))
    return names


def stats(env) -> tuple[int, int]:
    """(accepted, refused with 429) API and token requests so far."""
    counts = requests.get(env["SH_BASE_URL"] + "/sandbox/stats", timeout=30).json()["requests"]
    total = sum(n for key, n in counts.items() if "/api/" in key or "token" in key)
    refused = counts.get("refused 429", 0)
    return total - refused, refused


def main() -> None:
    parser = argparse.ArgumentParser(description="apply N creates+starts against a sandbox limited to LIMIT req/s")
    parser.add_argument("count", nargs="?", type=int, default=1000)
    parser.add_argument("limit", nargs="?", type=float, default=20.0, help="requests per second; 0: no limit")
    parser.add_argument("--parallelism", help="apply's --parallelism (default: apply's own)")
    args = parser.parse_args()
    count, limit, parallelism = args.count, args.limit, args.parallelism
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_manifests(folder / "manifests", count)
        sandbox = SandboxProcess(folder / "sandbox", "--rate-limit", f"{limit:g}", "--speed", "0.001")
        try:
            env = {**os.environ, **sandbox.env, "NO_COLOR": "1",
                   "RECONCILER_STATE": "s3://reconciler-state/bench/throughput.json"}
            command = [sys.executable, "-m", "reconciler", "apply", "--auto-approve"]
            command += ["--parallelism", parallelism] if parallelism else []
            accepted, refused = stats(sandbox.env)
            start = time.perf_counter()
            run = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
            wall = time.perf_counter() - start
            after = stats(sandbox.env)
            accepted, refused = after[0] - accepted, after[1] - refused
            live = marked_jobs(sandbox.env)
        finally:
            sandbox.stop()
    duplicates = sum(max(0, len(live.get(n, [])) - 1) for n in names)
    unstarted = sum(1 for n in names if len(live.get(n, [])) != 1 or live[n][0].user_action != "START")
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
    rate = accepted / wall
    share = f" = {rate / limit:.0%} of {limit:g} req/s" if limit else " (no limit)"
    rows = [
        f"| `apply` wall time | {wall:.1f} s (exit {run.returncode}) | |",
        f"| API requests accepted / refused (429) | {accepted:,} / {refused:,} | |",
        f"| achieved rate | {rate:.2f} req/s{share} | ≥ 90 % |",
        f"| failed actions (manifests without exactly one started job) | {unstarted} | 0 |",
        f"| duplicates | {duplicates} | 0 |",
    ]
    append(f"Apply throughput, {count:,} creates+starts at {limit:g} req/s", rows)
    if run.returncode != 0 or unstarted or duplicates:
        raise SystemExit(1)  # a benchmark that did not do its work fails, so a smoke run notices

if __name__ == "__main__":
    main()
