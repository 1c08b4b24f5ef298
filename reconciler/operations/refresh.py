"""Refresh (I/O): list every live job of the API versions in play — one paged listing per
version, never a GET per job, each job reduced as it arrives (engine.reduce) — and read the
lockfile (merged with its journal).
A managed v1 job that ended PARTIAL also gets its FAILED tiles counted (one listing each, and such
jobs are few): a restart re-processes only those, and the plan prices it by their share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.batch import ApiVersion
from reconciler.batch.live import LiveJob
from reconciler.batch.models.v1 import TileStatus
from reconciler.batch.statuses import Status
from reconciler.engine.identity import owner
from reconciler.engine.reduce import Reducer
from reconciler.manifests.manifest import Manifest
from reconciler.state.statefile import Snapshot, StateFile


@dataclass(frozen=True)
class Refreshed:
    snapshot: Snapshot
    live: tuple[LiveJob, ...]
    apis: tuple[ApiVersion, ...]


def versions_in_play(manifests: Iterable[Manifest], snapshot: Snapshot, every: bool) -> tuple[ApiVersion, ...]:
    """v1 and v2 when listing unmanaged jobs; else only the versions manifests or records use."""
    if every:
        return ("v1", "v2")
    used = {m.api for m in manifests} | {r.api for r in snapshot.lockfile.jobs.values()}
    return tuple(sorted(used)) or ("v2",)


def refresh(client: BatchClient, state: StateFile, manifests: list[Manifest], every: bool = False) -> Refreshed:
    """The lockfile, and every live job of the versions in play, each reduced as its page arrives
    to what the plan needs of it (engine.reduce): a listing is never alive in full."""
    snapshot = state.read()
    apis = versions_in_play(manifests, snapshot, every)
    reduce = Reducer(manifests, snapshot.lockfile.jobs)
    live: list[LiveJob] = []
    for api in apis:
        live += JobsApi(client, api).list_jobs(reduce=reduce.fields)
    recorded = {r.id for r in snapshot.lockfile.jobs.values()}
    names = {m.name for m in manifests}
    live = [_with_failed_tiles(client, job) if job.api == "v1" and job.status == Status.PARTIAL
            and (job.id in recorded or owner(job.description) in names) else job for job in live]
    return Refreshed(snapshot, tuple(live), apis)


def _with_failed_tiles(client: BatchClient, job: LiveJob) -> LiveJob:
    return replace(job, failed_tiles=sum(1 for _ in JobsApi(client, "v1").tiles(job.id, status=TileStatus.FAILED)))
