"""`reconciler status`: each managed job's live status, progress and cost, with its last action.

It reads live state and the lockfile only, so manifests are loaded without resolving `${env:…}`
(no secret is needed to look): a manifest whose validity hangs on an unset variable is still
listed, by name, with what the lockfile knows of it.

Cost comes in two figures, never mixed: PU so far (v2 `costPU` once processing began; v1 reports
none) and an estimate (v1 `valueEstimate`, v2 `costPU` after analysis and before processing, else
the offline estimate of the manifest). A job that ended for good (DONE, PARTIAL, FAILED, CANCELED,
GONE) is not priced offline: its PU so far is what it cost, and tiling 10,000 finished jobs would
make every status slow."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.api.models.live import LiveJob
from reconciler.errors import InvalidManifests
from reconciler.manifests.loader import load
from reconciler.manifests.manifest import Manifest
from reconciler.operations.live import Tracker, processing_began, pu_so_far, recorded_jobs
from reconciler.state.model import HistoryEntry
from reconciler.state.statefile import StateFile

FORMAT_VERSION = 1  # of the JSON (docs/status-json.md)


@dataclass(frozen=True)
class Readable:
    """The manifests as status reads them: the valid ones, and the names of those whose validity
    depends on `${env:…}` values that were not resolved."""

    manifests: list[Manifest]
    unresolved: tuple[str, ...]


@dataclass(frozen=True)
class JobStatus:
    name: str
    api: str | None  # None: a manifest that needs its variables, with no lockfile record
    manifest: str  # "loaded", "unresolved" (valid only with its ${env:…} values) or "removed"
    desired: str | None  # spec.state, when the manifest could be read
    job_id: str | None
    status: str  # live status, "NOT CREATED" or "GONE"
    percent: float | None
    tiles_done: int | None
    tiles_total: int | None
    pu_so_far: float | None
    estimate_pu: float | None
    estimate_source: str | None  # "service" (the service's analysis) or "offline" (from the manifest)
    last: HistoryEntry | None


def read_manifests(paths: Sequence[str]) -> Readable:
    """The manifests under `paths`, `${env:…}` left unresolved; InvalidManifests for any other error."""
    result = load(paths, resolve_env=False)
    if result.errors:
        raise InvalidManifests(result.diagnostics)
    return Readable(result.manifests, tuple(result.deferred))


def statuses(client: BatchClient, state: StateFile, readable: Readable,
             names: Collection[str] | None = None) -> list[JobStatus]:
    """A row per job of the manifests or the lockfile (only `names`, when given), by name."""
    lockfile = state.read().lockfile
    by_name = {m.name: m for m in readable.manifests}
    every = set(by_name) | set(readable.unresolved) | set(lockfile.jobs)
    chosen = sorted(every if names is None else every & set(names))
    apis = sorted({lockfile.jobs[n].api for n in chosen if n in lockfile.jobs and lockfile.jobs[n].id})
    jobs_apis = {api: JobsApi(client, api) for api in apis}  # only recorded requests can be live
    live = recorded_jobs(jobs_apis.values(), {n: lockfile.jobs.get(n) for n in chosen})
    tracker = Tracker(jobs_apis, {n: m.body for n, m in by_name.items()})
    rows = []
    for name in chosen:
        record, manifest, job = lockfile.jobs.get(name), by_name.get(name), live[name]
        kind = "loaded" if manifest else "unresolved" if name in readable.unresolved else "removed"
        gone = record is not None and record.id is not None and job is None
        percent, tiles_done, tiles_total = tracker.figures(name, job) if job else (None, None, None)
        estimate, source = (None, None) if gone else _estimate(tracker, name, job)
        rows.append(JobStatus(
            name, manifest.job.spec.api if manifest else record.api if record else None, kind,
            manifest.job.spec.state if manifest else None, record.id if record else None,
            job.status if job else ("GONE" if gone else "NOT CREATED"), percent, tiles_done, tiles_total,
            pu_so_far(job), estimate, source, record.history[-1] if record and record.history else None))
    return rows


def _estimate(tracker: Tracker, name: str, job: LiveJob | None) -> tuple[float | None, str | None]:
    """The estimate and where it comes from (see the module's docstring)."""
    if job is not None and job.api == "v1" and job.cost_pu is not None:
        return job.cost_pu, "service"
    if job is not None and job.api == "v2" and not processing_began(job) and job.cost_pu:
        return job.cost_pu, "service"  # 0 before analysis: not a figure
    tiles = tracker.tiles(name, job)
    body = tracker.body(name, job)
    if not tiles or body is None:
        return None, None
    from reconciler.geo.cost import estimate_pu

    return round(estimate_pu(body["processRequest"], tiles), 1), "offline"
