"""`make chaos`: break it on purpose and count what went wrong (all counts must be 0).

1. rounds of 8 (--concurrency) concurrent applies on one lockfile (each round changes a description, so there is
   something to do): duplicates, lost jobs, stuck leases, tracebacks;
2. SIGKILL of an apply at a random (seeded) moment, then a recovering apply: duplicates, lost jobs;
3. an apply against 20 % injected 5xx (half of them after the write took effect), a rate limit and
   latency, repeated until converged: duplicates, lost jobs, tracebacks;
4. hypothesis fuzzing of mutated example manifests through the loader: escaped exceptions.

Run: `make chaos` (or `.venv/bin/python bench/chaos.py [ROUNDS] [KILLS] [EXAMPLES] [--concurrency N]`); the
figures are appended to bench/RESULTS.md, and it exits 1 when a count that must be 0 is not.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import append  # noqa: E402

from tests.conftest import SandboxProcess  # noqa: E402
from tests.test_engine_chaos import apply_seconds, marked, write_manifests  # noqa: E402

# The counts that must be 0 (the others say how much was tried).
FAILURES = {"duplicates", "lost", "stuck leases", "tracebacks", "failed recoveries", "escaped exceptions"}


def reconciler(env, cwd, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def problems(env, names: list[str], state_url: str) -> tuple[int, int]:
    """(duplicates, lost): live jobs per marker beyond one, and names without a live job or record."""
    from reconciler.state.operations import open_state

    live = marked(env)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        records = open_state(state_url).read().lockfile.jobs
    finally:
        os.environ.clear()
        os.environ.update(saved)
    duplicates = sum(max(0, len(live.get(n, [])) - 1) for n in names)
    lost = sum(1 for n in names if not live.get(n) or n not in records or records[n].id not in live.get(n, []))
    return duplicates, lost


def concurrent_applies(rounds: int, work: Path, concurrency: int, speed: str) -> dict:
    sandbox = SandboxProcess(work / "sandbox-a", "--speed", speed)
    counts = {"rounds": rounds, "applies": 0, "duplicates": 0, "lost": 0, "stuck leases": 0, "tracebacks": 0,
              "failed applies": 0}
    reasons: dict[str, int] = {}
    try:
        folder = work / "concurrent"
        names = write_manifests(folder / "manifests", "race")
        state_url = "s3://reconciler-state/chaos/concurrent.json"
        env = {**os.environ, **sandbox.env, "RECONCILER_STATE": state_url, "NO_COLOR": "1"}
        target = folder / "manifests" / f"{names[0]}.yaml"
        for round_ in range(rounds):
            text = target.read_text()
            target.write_text(text.replace(text.split("description: ", 1)[1].split("\n", 1)[0], f"round {round_}"))
            runs = [reconciler(env, folder, "apply", "--auto-approve", "--lock-timeout", "120s")
                    for _ in range(concurrency)]
            for run in runs:
                out, err = run.communicate(timeout=600)
                counts["applies"] += 1
                counts["tracebacks"] += "Traceback" in out + err
                if run.returncode != 0:
                    counts["failed applies"] += 1
                    reason = next((line for line in err.splitlines() if line.startswith("Error")), err[-200:])
                    reasons[reason] = reasons.get(reason, 0) + 1
            duplicates, lost = problems(sandbox.env, names, state_url)
            counts["duplicates"] += duplicates
            counts["lost"] += lost
            status = reconciler(env, folder, "lock", "status")
            counts["stuck leases"] += "not locked" not in status.communicate(timeout=60)[0]
    finally:
        sandbox.stop()
    if reasons:
        counts["why"] = "; ".join(f"{n}× {r}" for r, n in sorted(reasons.items()))
    return counts


def kills(trials: int, work: Path, speed: str, seed: int = 20261122) -> dict:
    sandbox = SandboxProcess(work / "sandbox-b", "--speed", speed)
    rng = random.Random(seed)
    counts = {"trials": trials, "killed mid-run": 0, "duplicates": 0, "lost": 0, "failed recoveries": 0}
    try:
        span = apply_seconds(sandbox.env, work / "calibrate")
        for trial in range(trials):
            folder = work / f"kill{trial}"
            names = write_manifests(folder / "manifests", f"kill{trial}")
            state_url = f"s3://reconciler-state/chaos/kill{trial}.json"
            env = {**os.environ, **sandbox.env, "RECONCILER_STATE": state_url, "NO_COLOR": "1"}
            victim = reconciler(env, folder, "apply", "--auto-approve", "--wait", "--poll-interval", "50ms",
                                "--lease-ttl", "1s")
            time.sleep(rng.uniform(0.05, 0.95) * span)
            counts["killed mid-run"] += victim.poll() is None
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            recovery = reconciler(env, folder, "apply", "--auto-approve", "--wait", "--poll-interval", "50ms",
                                  "--lock-timeout", "30s")
            recovery.communicate(timeout=300)
            counts["failed recoveries"] += recovery.returncode != 0
            duplicates, lost = problems(sandbox.env, names, state_url)
            counts["duplicates"] += duplicates
            counts["lost"] += lost
    finally:
        sandbox.stop()
    return counts


def faults(work: Path, speed: str) -> dict:
    sandbox = SandboxProcess(work / "sandbox-c", "--speed", speed, "--error-rate", "0.1", "--lost-response-rate", "0.1",
                             "--rate-limit", "20", "--latency", "20ms", "--random-seed", "8")
    counts = {"applies until converged": 0, "duplicates": 0, "lost": 0, "tracebacks": 0}
    try:
        folder = work / "faults"
        names = write_manifests(folder / "manifests", "faults")
        state_url = "s3://reconciler-state/chaos/faults.json"
        env = {**os.environ, **sandbox.env, "RECONCILER_STATE": state_url, "NO_COLOR": "1"}
        for _ in range(20):
            run = reconciler(env, folder, "apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
            out, err = run.communicate(timeout=600)
            counts["applies until converged"] += 1
            counts["tracebacks"] += "Traceback" in out + err
            check = reconciler(env, folder, "plan", "--detailed-exitcode")
            check.communicate(timeout=300)
            if check.returncode == 0:
                break
        counts["duplicates"], counts["lost"] = problems(sandbox.env, names, state_url)
    finally:
        sandbox.stop()
    return counts


def fuzz(examples: int) -> dict:
    from hypothesis import HealthCheck, given, settings

    from reconciler.manifests.loader import load
    from tests.test_properties import mutated_example

    escaped = []
    folder = Path(tempfile.mkdtemp())
    os.chdir(folder)  # as in a repository: manifests are read only from inside it

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(text=mutated_example())
    def check(text):
        path = folder / "job.yaml"
        path.write_text(text)
        try:
            load([path])
        except Exception as e:  # noqa: BLE001 — counting what escapes is the point
            escaped.append(type(e).__name__)

    check()
    return {"examples": examples, "escaped exceptions": len(escaped)}


def main() -> None:
    parser = argparse.ArgumentParser(description="break it on purpose and count what went wrong (all counts must be 0)")
    parser.add_argument("rounds", nargs="?", type=int, default=100, help="rounds of concurrent applies (default 100)")
    parser.add_argument("trials", nargs="?", type=int, default=100, help="SIGKILL trials (default 100)")
    parser.add_argument("examples", nargs="?", type=int, default=10_000, help="fuzzing examples (default 10000)")
    parser.add_argument("--concurrency", type=int, default=8, help="applies at once in each round (default 8)")
    parser.add_argument("--speed", type=float, default=20, help="how many times faster than real time the sandboxes' jobs run (default 20)")
    args = parser.parse_args()
    speed = str(args.speed)
    rounds, trials, examples = args.rounds, args.trials, args.examples
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            f"{rounds} rounds of {args.concurrency} concurrent applies": concurrent_applies(rounds, work,
                                                                                         args.concurrency, speed),
            f"{trials} SIGKILL trials": kills(trials, work, speed),
            "20 % faults (10 % 5xx, 10 % lost answers), 20 req/s, 20 ms latency": faults(work, speed),
            f"fuzzing, {examples} examples": fuzz(examples),
        }
    lines = [f"| {name} | " + ", ".join(f"{k}: {v}" for k, v in counts.items()) + " |" for name, counts in results.items()]
    append("Chaos", lines, ("run", "counts"))
    wrong = {f"{name}: {key}": value for name, counts in results.items() for key, value in counts.items()
             if key in FAILURES and value}
    if wrong:
        sys.exit("chaos: " + ", ".join(f"{key} {value}" for key, value in wrong.items()))


if __name__ == "__main__":
    main()
