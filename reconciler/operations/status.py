"""`reconciler status`: each managed job's live status, progress and cost, with its last action."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.manifests.manifest import Manifest
from reconciler.operations.live import recorded_jobs
from reconciler.state.statefile import StateFile


@dataclass(frozen=True)
class JobStatus:
    name: str
    api: str
    desired: str | None  # spec.state, or None when the manifest is gone
    job_id: str | None
    status: str  # live status, "NOT CREATED" or "GONE"
    completion: float | None
    cost_pu: float | None
    last_action: str | None


def statuses(client: BatchClient, state: StateFile, manifests: list[Manifest]) -> list[JobStatus]:
    lockfile = state.read().lockfile
    by_name = {m.name: m for m in manifests}
    apis = {m.job.spec.api for m in manifests} | {r.api for r in lockfile.jobs.values()}
    names = sorted(set(by_name) | set(lockfile.jobs))
    live = recorded_jobs([JobsApi(client, api) for api in sorted(apis)], {n: lockfile.jobs.get(n) for n in names})
    rows = []
    for name in names:
        record, manifest, job = lockfile.jobs.get(name), by_name.get(name), live[name]
        status = job.status if job else ("GONE" if record and record.id else "NOT CREATED")
        last = record.history[-1] if record and record.history else None
        rows.append(JobStatus(
            name, (manifest.job.spec.api if manifest else record.api), manifest.job.spec.state if manifest else None,
            record.id if record else None, status, job.completion if job else None, job.cost_pu if job else None,
            f"{last.action} {last.result} {last.at:%Y-%m-%d %H:%M}" if last else None))
    return rows
