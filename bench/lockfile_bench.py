"""Benchmark: bytes written to the state store per recorded action, by lockfile size.

Target (issues 5 and 8): O(1) per action, ≤ 4 KB, whatever the number of jobs — a journal entry
per action instead of rewriting a multi-MB lockfile. The entry is the object an S3 store would be
sent (the bytes do not depend on the store; a local one keeps the benchmark free of a server).
Run: `.venv/bin/python bench/lockfile_bench.py [JOBS …]` (default 100 1000 10000); the figures are appended to
bench/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime

from record import append

from reconciler.state.model import HistoryEntry, JobState, Lockfile
from reconciler.state.objects import open_store
from reconciler.state.statefile import StateFile


def measure(jobs: int, actions: int = 20) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as folder:
        store, key = open_store(f"{folder}/state.json")
        state = StateFile(store, key)
        lockfile = Lockfile(jobs={f"job-{i}": JobState(id=f"{i:08d}-0000-4000-8000-000000000000", api="v2",
                                                        specHash="0" * 32, status="DONE") for i in range(jobs)})
        journal = state.journal(state.write(lockfile, state.read()))
        sizes = [journal.record(f"job-{i}", JobState(id="0" * 36, api="v2", specHash="0" * 32, status="PROCESSING"),
                                HistoryEntry(at=datetime.now(UTC), who="ci@runner", action="start",
                                             result="ok", requestId="0" * 36, revision="f" * 40))
                 for i in range(actions)]
        return len(store.get(key).data), max(sizes)


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [100, 1_000, 10_000]
    rows = []
    for jobs in sizes:
        lockfile, per_action = measure(jobs)
        rows.append(f"| {jobs:,} jobs | {lockfile:,} bytes | {per_action} bytes | ≤ 4 KB |")
    append("Lockfile cost", rows, ("lockfile", "size", "written per recorded action", "target"))


if __name__ == "__main__":
    main()
