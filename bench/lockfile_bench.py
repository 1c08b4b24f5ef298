"""Benchmark: bytes written to the state store per recorded action, by lockfile size.

Target (issues 5 and 8): O(1) per action, ≤ 4 KB, whatever the number of jobs — a journal entry
per action instead of rewriting a multi-MB lockfile. Run: `.venv/bin/python bench/lockfile_bench.py`.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone

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
                                HistoryEntry(at=datetime.now(timezone.utc), who="ci@runner", action="start",
                                             result="ok", requestId="0" * 36, revision="f" * 40))
                 for i in range(actions)]
        return len(store.get(key).data), max(sizes)


def main() -> None:
    for jobs in (100, 1_000, 10_000):
        lockfile, per_action = measure(jobs)
        print(f"| {jobs:,} jobs | lockfile {lockfile:,} bytes | {per_action} bytes per recorded action | ≤ 4 KB |")


if __name__ == "__main__":
    main()
