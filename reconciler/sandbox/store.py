"""The sandbox's state: jobs by id in creation order, request counts per endpoint, one lock.

Kept in memory; every access happens under `lock`, which the HTTP handlers and the worker share.
"""

from __future__ import annotations

import threading
from collections import Counter

from reconciler.sandbox.jobs import Job


class SandboxState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._sequence = 0
        self.stats: Counter[str] = Counter()

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def jobs(self, api: str | None = None) -> list[Job]:
        return [j for j in self._jobs.values() if api is None or j.api == api]
