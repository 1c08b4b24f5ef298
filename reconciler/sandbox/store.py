"""The sandbox's state: jobs by id, request counts per endpoint, one lock; optionally kept in an
SQLite file (`--data-dir`) so a restarted sandbox still has its jobs.

Every access happens under `lock`, which the HTTP handlers and the worker share; whoever changes
a job calls `save(job)`, which also keeps the index of jobs the worker has to look at (analysing or
processing), so a sandbox holding 10,000 finished jobs does not scan them every tick; and sets
`changed`, on which the worker sleeps while nothing is due.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from reconciler.sandbox.jobs import Job

ACTIVE = ("ANALYSING", "PROCESSING")


class SandboxState:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._listed: dict[str, list[Job]] = {"v1": [], "v2": []}  # each version's jobs in creation order
        self._active: dict[str, Job] = {}
        self._sequence = 0
        self.stats: Counter[str] = Counter()
        self.changed = threading.Event()  # set by add, save and remove
        self._db: sqlite3.Connection | None = None
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(data_dir / "sandbox.db", check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
            for (data,) in self._db.execute("SELECT data FROM jobs"):
                job = Job.from_dict(json.loads(data))
                self._jobs[job.id] = job
            self._jobs = dict(sorted(self._jobs.items(), key=lambda item: item[1].sequence))
            for job in self._jobs.values():
                self._listed[job.api].append(job)
                self._index(job)
            self._sequence = max((j.sequence for j in self._jobs.values()), default=0)

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def add(self, job: Job) -> None:
        """A new job: its sequence is the highest yet, so it lists last."""
        self._jobs[job.id] = job
        self._listed[job.api].append(job)
        self.save(job)

    def save(self, job: Job) -> None:
        if job.id not in self._jobs:
            return
        self._index(job)
        self.changed.set()
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO jobs (id, data) VALUES (?, ?)", (job.id, json.dumps(job.to_dict())))

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._listed[job.api].remove(job)  # a walk of one list: stale deletions are few
        self._active.pop(job_id, None)
        self.changed.set()
        if self._db is not None:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def jobs(self, api: str | None = None) -> Sequence[Job]:
        """Jobs in creation order; of one version, the kept list itself (no copy: a page of a
        listing costs the same at 100,000 jobs as at 1,000), to read under `lock` and not change."""
        return self._listed[api] if api is not None else list(self._jobs.values())

    def active(self) -> list[Job]:
        """Jobs analysing or processing, in creation order."""
        return sorted(self._active.values(), key=lambda job: job.sequence)

    def _index(self, job: Job) -> None:
        if job.status in ACTIVE:
            self._active[job.id] = job
        else:
            self._active.pop(job.id, None)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
