"""Benchmark: `reconciler plan` over N managed jobs, against sentinelhub-py refreshing the same
jobs one `get_request` at a time.

N jobs are created in a fresh sandbox through its API (descriptions carry the ownership marker),
the lockfile is recovered with `reconciler state rebuild`, and N matching manifests are written.
Then `reconciler plan` runs in its own process, in pairs: first with an empty cache folder (every
manifest parsed and validated), then again with nothing changed (manifests served by the load
cache, as in a second plan of a pull request); --runs pairs (default 5), since this machine's
speed drifts by a third within an hour. For each kind: the median and range of wall and CPU time,
the largest peak RSS (from wait4) and API calls (from /sandbox/stats). Targets (issues 8 and 17): API calls ≤ ⌈N/100⌉ + 2
(token + listing pages), plan ≥ 10× faster than the per-job loop, CPU ≤ 6 s on a first run and ≤ 2.5 s
with nothing changed, and RSS ≤ 300 MB at N = 10,000.

Run: `.venv/bin/python bench/plan_bench.py [N] [--runs R] [--profile FILE]`; the figures are appended to
bench/RESULTS.md. With --profile, one more `plan` (load cache filled) runs under pyinstrument and its
report (text) is written to FILE.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import shutil
import statistics
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

SENTINELHUB_LOOP = """
import sys, time
from sentinelhub import SHConfig
from sentinelhub.api.batch import BatchProcessClient
client = BatchProcessClient(config=SHConfig())
ids = [line.strip() for line in open(sys.argv[1])]
start = time.perf_counter()
for request_id in ids:
    client.get_request(request_id)
print(time.perf_counter() - start)
"""


def api_calls(env) -> int:
    stats = requests.get(env["SH_BASE_URL"] + "/sandbox/stats", timeout=30).json()["requests"]
    return sum(n for key, n in stats.items() if "/api/" in key or "token" in key)


def write_manifests(folder: Path, count: int) -> None:
    """N manifests in folder/manifests: the GeoPackage example under the names job-00000…"""
    (folder / "manifests").mkdir(parents=True)
    shutil.copytree(ROOT / "manifests" / "evalscripts", folder / "manifests" / "evalscripts")
    template = (ROOT / "manifests" / "corsica-geopackage.yaml").read_text()
    for i in range(count):
        (folder / "manifests" / f"job-{i:05d}.yaml").write_text(template.replace("name: corsica-geopackage", f"name: job-{i:05d}"))


def seed(sandbox: SandboxProcess, folder: Path, count: int) -> list[str]:
    """N v2 jobs created through the API, and their manifests."""
    from reconciler.manifests.loader import load

    write_manifests(folder, count)
    os.chdir(folder)  # as in a repository: manifests are read only from inside it
    bodies = {m.name: {**m.body, "description": f"{m.description} [reconciler:{m.name}]"}
              for m in load([folder / "manifests"]).manifests}
    http = sandbox.http()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda body: http.post("/api/v2/batch/process", json=body).json()["id"], bodies.values()))
    return ids


def run_plan(env, cwd) -> dict:
    """`reconciler plan` in a child whose rusage we collect with wait4."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "reconciler", "plan", "--detailed-exitcode"], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        raise SystemExit(f"plan failed ({code}): {process.stderr.read().decode()[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "exit": code}


def profile(env, cwd, path: str) -> None:
    subprocess.run([sys.executable, "-m", "pyinstrument", "--outfile", path, "-m", "reconciler", "plan"], env=env,
                   cwd=cwd, stdout=subprocess.DEVNULL, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="plan over N live jobs against sentinelhub-py's per-job loop")
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--profile", metavar="FILE", help="also run plan under pyinstrument, report to FILE")
    parser.add_argument("--runs", type=int, default=5, help="plans of each kind, for a median (default 5)")
    args = parser.parse_args()
    count, profile_to = args.count, args.profile
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox = SandboxProcess(folder / "sandbox", "--speed", "100")
        try:
            env = {**os.environ, **sandbox.env, "NO_COLOR": "1", "RECONCILER_CACHE_DIR": str(folder / "cache")}
            start = time.perf_counter()
            ids = seed(sandbox, folder, count)
            print(f"seeded {count} jobs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            # the rebuild loads the manifests too: without the cache, so that the first plan starts empty
            subprocess.run([sys.executable, "-m", "reconciler", "state", "rebuild"], cwd=folder, check=True,
                           env={**env, "RECONCILER_CACHE_DIR": "off"}, stdout=subprocess.DEVNULL)
            cold, warm = [], []
            for _ in range(args.runs):  # the machine's speed drifts: a median of several, each a first run then a second
                shutil.rmtree(folder / "cache", ignore_errors=True)
                for runs in (cold, warm):
                    before = api_calls(sandbox.env)
                    runs.append(run_plan(env, folder))
                    runs[-1]["calls"] = api_calls(sandbox.env) - before
            (folder / "ids.txt").write_text("\n".join(ids))
            before = api_calls(sandbox.env)
            loop = subprocess.run([sys.executable, "-c", SENTINELHUB_LOOP, str(folder / "ids.txt")], env=env,
                                  capture_output=True, text=True, check=True)
            loop_wall, loop_calls = float(loop.stdout.strip().splitlines()[-1]), api_calls(sandbox.env) - before
            if profile_to:
                profile(env, folder, profile_to)
        finally:
            sandbox.stop()
    limit = math.ceil(count / 100) + 2
    rows = [f"| sentinelhub-py `get_request` loop | {loop_wall:.2f} s, {loop_calls} API calls | |"]
    for runs, label, cpu_target in ((cold, "first run, empty cache", 6), (warm, "again, nothing changed (load cache kept)", 2.5)):
        wall, cpu = [run["wall"] for run in runs], [run["cpu"] for run in runs]
        rows += [
            f"| API calls of `plan`, {label} | {max(run['calls'] for run in runs)} | ≤ {limit} |",
            f"| `plan` wall time, {label} | {_median_of(wall)} (exit {', '.join(sorted({str(r['exit']) for r in runs}))}) | |",
            f"| speed-up over the loop, {label} | {loop_wall / statistics.median(wall):.1f}× | ≥ 10× |",
            f"| `plan` CPU time, {label} | {_median_of(cpu)} | ≤ {cpu_target} s |",
            f"| `plan` peak RSS, {label} | {max(run['rss_mb'] for run in runs):.0f} MB (the largest) | ≤ 300 MB |",
        ]
    append(f"Plan at scale, {count:,} jobs", rows)

def _median_of(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, {min(values):.2f}–{max(values):.2f} s ({len(values)} runs)"


if __name__ == "__main__":
    main()
