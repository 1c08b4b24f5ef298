"""Benchmark: `reconciler plan` over N managed jobs, against the bare listing it is built on.

For each N a sandbox starts with N ready jobs and their N manifests (`sandbox serve --seed N`), and
`reconciler state rebuild` records them (timed: it must stay linear). Then, in R interleaved rounds
(this machine's speed drifts by a fifth within an hour, so the measures of one round run side by
side): the bare listing — a small `requests` script that fetches a token and every page of
`GET /api/v2/batch/process` and json-decodes it; the floor — that listing, plus what else every
plan must do before any work per job: read the lockfile through boto3 (import, client, GET, JSON)
and read and hash every manifest file; that floor in a process that also imports the libraries the
standard names (requests-oauthlib, pydantic, click: below it no plan can go), and in one that first
imports what the plan imports (what this plan costs before any work per job, its start-up and exit
included); the library floor with every manifest file parsed into libyaml's events (below it no
first run can go); then `plan` with an empty load cache (first run), then `plan` again with nothing
changed (the cache kept). Each runs in its own process; CPU (user + system) and peak RSS come from
wait4, API calls from /sandbox/stats.

Reported per N: medians and ranges of CPU, the plan's CPU as a multiple of the bare listing's and of
the floor's, CPU per job, peak RSS, API calls, and the rebuild's wall time against a plan's. Targets (issue 28):
at 10,000 jobs, nothing changed ≤ 3× the bare listing's CPU and a first run ≤ 6×, peak RSS ≤ 150 MB
(≤ 800 MB at 100,000), CPU per job at 100,000 within 1.2× of that at 10,000, API calls ⌈N/100⌉ + 1
(token and pages), `state rebuild` of 10,000 jobs within 3× a plan's wall time and of 100,000 in
under 5 minutes.

Run: `.venv/bin/python bench/plan_bench.py [N …] [--runs R] [--profile FILE]` (default N: 1000
10000 100000); the figures are appended to bench/RESULTS.md. With --profile, one more `plan`
(cache kept) of the largest N runs under pyinstrument and its text report is written to FILE.
"""

from __future__ import annotations

import argparse
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

BARE_LISTING = """
import os, requests
session = requests.Session()
token = session.post(os.environ["SH_TOKEN_URL"], data={"grant_type": "client_credentials",
                     "client_id": os.environ["SH_CLIENT_ID"], "client_secret": os.environ["SH_CLIENT_SECRET"]}).json()
session.headers["Authorization"] = "Bearer " + token["access_token"]
url, params, jobs = os.environ["SH_BASE_URL"] + "/api/v2/batch/process", {"count": 100}, 0
while True:
    page = session.get(url, params=params).json()
    jobs += len(page["data"])
    token = page.get("links", {}).get("nextToken")
    if not token:
        break
    params = {"count": 100, "viewtoken": token}
print(jobs)
"""

# The bare listing, then the lockfile read through boto3 and every manifest file read and hashed
# (as the load cache's content_digest does, written out here: importing it would add the plan's
# own imports, which IMPORTED_FLOOR adds on purpose): what a plan must do before any work per job.
# PARSE marks where PARSED_FLOOR also parses each file's bytes, read once as a plan reads them.
_FLOOR = BARE_LISTING + """
import hashlib, json, boto3
bucket, key = os.environ["RECONCILER_STATE"].removeprefix("s3://").split("/", 1)
records = len(json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())["jobs"])
files = 0
for folder, _, names in os.walk("manifests"):
    for name in names:
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            hashlib.blake2b(data, digest_size=16)
            PARSE
            files += 1
print(records, files)
"""
FLOOR = _FLOOR.replace("PARSE", "pass")
# The libraries the project's standard names for a plan's other edges (OAuth2, models, the command
# line; requests and boto3 the floor loads itself). The floor under them is what no plan written to
# that standard can go below, whatever its own code does.
LIBRARIES = "import requests_oauthlib, pydantic, click\n"
LIBRARY_FLOOR = LIBRARIES + FLOOR
# The floor in a process holding the modules a plan imports (reconciler.cli imports the rest when
# its command runs): loading them, and tearing them down at exit, is paid by every plan.
IMPORTED_FLOOR = ("import reconciler.cli, reconciler.api.client, reconciler.operations.run, "
                  "reconciler.operations.planfile, reconciler.render.plan\n" + FLOOR)
# What a first run cannot go below: the library floor with every manifest file parsed into libyaml's
# events (the least ruamel.yaml does to read YAML with its lines), nothing made of them.
PARSED_FLOOR = LIBRARIES + """
from _ruamel_yaml import CParser
def parse(data):
    parser = CParser(data.decode())
    for _ in iter(parser.get_event, None):  # None after the stream's end
        pass
    parser.dispose()
""" + _FLOOR.replace("PARSE", "parse(data)")


def api_calls(env: dict[str, str]) -> int:
    stats = requests.get(env["SH_BASE_URL"] + "/sandbox/stats", timeout=30).json()["requests"]
    return sum(n for key, n in stats.items() if "/api/" in key or "token" in key)


def measured(command: list[str], env: dict[str, str], cwd: Path, accept: tuple[int, ...] = (0, 2)) -> dict:
    """Run `command` in a child; its wall time, CPU (user + system) and peak RSS, from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code not in accept:
            raise SystemExit(f"{' '.join(command[:4])} failed ({code}): {err.read().decode()[-2000:]}")
        return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
                "out": out.read().decode()}


class Sandbox:
    """`reconciler sandbox serve` with seeded jobs, in a child, until `stop`."""

    def __init__(self, folder: Path, *args: str):
        self.env_file = folder / "sandbox.env"
        self.log = (folder / "sandbox.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--env-file",
                                         str(self.env_file), *args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900  # seeding 100,000 jobs and their manifests takes a while
        while not self.env_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise SystemExit(f"the sandbox did not start: {(folder / 'sandbox.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.env = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


def one_size(count: int, runs: int, profile_to: str | None) -> tuple[list[str], dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        sandbox = Sandbox(folder, "--speed", "100", "--seed", str(count), "--seed-dir", str(folder / "manifests"))
        seeded = time.perf_counter() - start
        try:
            env = {**os.environ, **sandbox.env, "NO_COLOR": "1", "RECONCILER_CACHE_DIR": str(folder / "cache"),
                   "RECONCILER_STATE": "s3://reconciler-state/bench/plan.json"}
            python = sys.executable
            rebuild = measured([python, "-m", "reconciler", "state", "rebuild", "manifests"],
                               {**env, "RECONCILER_CACHE_DIR": "off"}, folder, accept=(0,))

            def script(source: str, counts: int) -> dict:
                """One run of a script above, which prints `counts` counts: of jobs (then of records and files)."""
                before = api_calls(sandbox.env)
                run = measured([python, "-c", source], env, folder, accept=(0,))
                run["calls"] = api_calls(sandbox.env) - before
                assert run["out"].split() == [str(count)] * counts, run["out"]
                return run

            bare, floor, library, imported, parsed, cold, warm = [], [], [], [], [], [], []
            for _ in range(runs):  # side by side in each round: the machine's speed drifts between rounds
                bare.append(script(BARE_LISTING, 1))
                floor.append(script(FLOOR, 3))
                library.append(script(LIBRARY_FLOOR, 3))
                imported.append(script(IMPORTED_FLOOR, 3))
                parsed.append(script(PARSED_FLOOR, 3))
                shutil.rmtree(folder / "cache", ignore_errors=True)
                for kind in (cold, warm):
                    before = api_calls(sandbox.env)
                    kind.append(measured([python, "-m", "reconciler", "plan", "manifests", "--detailed-exitcode"],
                                         env, folder))
                    kind[-1]["calls"] = api_calls(sandbox.env) - before
            if profile_to:
                subprocess.run([python, "-m", "pyinstrument", "--outfile", profile_to, "-m", "reconciler", "plan",
                                "manifests"], env=env, cwd=folder, stdout=subprocess.DEVNULL, check=False)
        finally:
            sandbox.stop()
    bare_cpu, floor_cpu = statistics.median(r["cpu"] for r in bare), statistics.median(r["cpu"] for r in floor)
    rows = [f"| sandbox with {count:,} seeded jobs and manifests, started | {seeded:.1f} s | < 60 s at 100,000 |",
            f"| `state rebuild` of {count:,} jobs | {rebuild['wall']:.1f} s wall, {rebuild['cpu']:.1f} s CPU, "
            f"{rebuild['wall'] / statistics.median(r['wall'] for r in warm):.1f}× a plan's wall | ≤ 3× a plan; "
            "< 300 s at 100,000 |",
            f"| bare listing CPU | {_median_of([r['cpu'] for r in bare])}, {max(r['calls'] for r in bare)} calls | |"]
    for runs_of, label in ((floor, "floor CPU: the bare listing, the lockfile read through boto3, every manifest "
                                   "file read and hashed"),
                           (library, "the floor under the libraries of the standard (requests-oauthlib, pydantic, "
                                     "click), CPU: below any plan, nothing changed"),
                           (imported, "the floor under the plan's imports, CPU"),
                           (parsed, "the library floor and every manifest file parsed into libyaml's events, CPU: "
                                    "below any first run")):
        cpu = [r["cpu"] for r in runs_of]
        rows.append(f"| {label} | {_median_of(cpu)} = {statistics.median(cpu) / bare_cpu:.1f}× the bare listing | |")
    for kind, label, ratio in ((warm, "nothing changed (load cache kept)", 3), (cold, "first run, empty cache", 6)):
        cpu = [r["cpu"] for r in kind]
        rows += [f"| `plan` CPU, {label} | {_median_of(cpu)} = {statistics.median(cpu) / bare_cpu:.1f}× the bare "
                 f"listing, {statistics.median(cpu) / floor_cpu:.1f}× the floor, "
                 f"{statistics.median(cpu) / count * 1000:.3f} ms per job | ≤ {ratio}× at 10,000 |",
                 f"| `plan` peak RSS, {label} | {max(r['rss_mb'] for r in kind):.0f} MB | ≤ 150 MB at 10,000; "
                 "≤ 800 MB at 100,000 |",
                 f"| `plan` API calls, {label} | {max(r['calls'] for r in kind)} | {math.ceil(count / 100) + 1} |"]
    per_job = {"nothing changed": statistics.median(r["cpu"] for r in warm) / count,
               "first run": statistics.median(r["cpu"] for r in cold) / count}
    return rows, per_job


def linearity(per_job: dict[int, dict[str, float]]) -> list[str]:
    """CPU per job at each N against that at 10,000 (or the smallest N run): linear is about 1×."""
    reference = 10_000 if 10_000 in per_job else min(per_job)
    return [f"| `plan` CPU per job, {kind}, {count:,} jobs | {figures[kind] * 1000:.3f} ms = "
            f"{figures[kind] / per_job[reference][kind]:.2f}× that at {reference:,} | ≤ 1.2× at 100,000 |"
            for kind in ("nothing changed", "first run") for count, figures in sorted(per_job.items())]


def _median_of(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f}, {len(values)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description="plan over N live jobs against the bare listing it is built on")
    parser.add_argument("counts", nargs="*", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds per N, for a median (default 5)")
    parser.add_argument("--profile", metavar="FILE", help="also run plan of the largest N under pyinstrument")
    args = parser.parse_args()
    per_job = {}
    for count in args.counts:
        rows, per_job[count] = one_size(count, args.runs, args.profile if count == max(args.counts) else None)
        append(f"Plan at scale, {count:,} jobs, against the bare listing", rows)
    if len(per_job) > 1:
        append("Plan at scale, CPU per job across sizes (linear: about 1×)", linearity(per_job))


if __name__ == "__main__":
    main()
