"""`reconciler status`: each managed job's live status, progress and cost, with its last action.

It reads live state and the lockfile only, so manifests are loaded without resolving `${env:…}`
(no secret is needed to look): a manifest whose validity hangs on an unset variable is still
listed, by name, with what the lockfile knows of it.

A job the paths read do not declare is looked for in the manifest file the lockfile records for it
(outside those paths, e.g. `status NAME` of a job declared beside `manifests/`): read from there,
or said to be there and not readable, rather than called removed.

Cost comes in two figures, never mixed: PU so far (v2 `costPU` once processing began; v1 reports
none, so a v1 job's is estimated: the share of its tiles processed × the service's estimate, and
labelled so) and an estimate (v1 `valueEstimate`, v2 `costPU` after analysis and before processing,
else the offline estimate of the manifest). A job that ended for good (DONE, PARTIAL, FAILED,
CANCELED, GONE) is not priced offline: its PU so far is what it cost. Only a v2 job that ended DONE
is tiled, for its tile count (all of them done), once per distinct area and grid: v2 reports no
tile count, and jobs of one repository tend to share their areas."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.batch.live import LiveJob
from reconciler.batch.statuses import GONE, NOT_CREATED, Status
from reconciler.engine.plan import in_scope
from reconciler.errors import InvalidManifests
from reconciler.manifests.files import repository_root, scope_of, source_of
from reconciler.manifests.loader import load
from reconciler.manifests.manifest import Manifest
from reconciler.operations.live import Tracker, offline_tiles, processing_began, pu_so_far, recorded_jobs
from reconciler.state.model import HistoryEntry, JobState
from reconciler.state.statefile import StateFile

FORMAT_VERSION = 1  # of the JSON (docs/status-json.md)


@dataclass(frozen=True)
class Readable:
    """The manifests as status reads them: the valid ones, and the names of those whose validity
    depends on `${env:…}` values that were not resolved."""

    manifests: list[Manifest]
    unresolved: tuple[str, ...]
    scope: tuple[str, ...] | None = None  # the paths read, named as the lockfile names files; None: unknown


@dataclass(frozen=True)
class JobStatus:
    name: str
    api: str | None  # None: a manifest that needs its variables, with no lockfile record
    # "loaded", "unresolved" (valid only with its ${env:…} values), "unreadable" (its recorded file,
    # outside the paths read, has errors) or "removed"
    manifest: str
    desired: str | None  # spec.state, when the manifest could be read
    job_id: str | None
    status: str  # live status, NOT_CREATED or GONE
    percent: float | None
    tiles_done: int | None
    tiles_total: int | None
    pu_so_far: float | None
    estimate_pu: float | None
    estimate_source: str | None  # "service" (the service's analysis) or "offline" (from the manifest)
    last: HistoryEntry | None
    pu_estimated: float | None = None  # v1: PU so far, estimated (share of tiles processed × the service's estimate)
    file: str | None = None  # the manifest file that declares the job, repository-relative (read, or recorded)
    elsewhere: bool = False  # declared in a recorded file outside the paths read, and looked for there


def read_manifests(paths: Sequence[str]) -> Readable:
    """The manifests under `paths`, `${env:…}` left unresolved; InvalidManifests for any other error."""
    result = load(paths, resolve_env=False)
    if result.errors:
        raise InvalidManifests(result.diagnostics)
    return Readable(result.manifests, tuple(result.deferred), scope_of(paths))


def statuses(client: BatchClient, state: StateFile, readable: Readable,
             names: Collection[str] | None = None) -> list[JobStatus]:
    """A row per job of the manifests or the lockfile (only `names`, when given), by name."""
    lockfile = state.read().lockfile
    by_name = {m.name: m for m in readable.manifests}
    every = set(by_name) | set(readable.unresolved) | set(lockfile.jobs)
    chosen = sorted(every if names is None else every & set(names))
    elsewhere = _read_elsewhere({n: lockfile.jobs[n] for n in chosen if n in lockfile.jobs and n not in by_name
                                 and n not in readable.unresolved}, readable.scope)
    found = {name: m for name, (_, m) in elsewhere.items() if m is not None}
    apis = sorted({lockfile.jobs[n].api for n in chosen if n in lockfile.jobs and lockfile.jobs[n].id})
    jobs_apis = {api: JobsApi(client, api) for api in apis}  # only recorded requests can be live
    live = recorded_jobs(jobs_apis.values(), {n: lockfile.jobs.get(n) for n in chosen})
    tracker = Tracker(jobs_apis, {n: m.body for n, m in {**by_name, **found}.items()})
    counted: dict[str, int | None] = {}  # tiles of a distinct area and grid
    rows = []
    for name in chosen:
        record, job = lockfile.jobs.get(name), live[name]
        manifest = by_name.get(name) or found.get(name)
        kind = "loaded" if name in by_name else "unresolved" if name in readable.unresolved else \
            elsewhere[name][0] if name in elsewhere else "removed"
        gone = record is not None and record.id is not None and job is None
        percent, tiles_done, tiles_total = _figures(tracker, name, job, counted)
        estimate, source = (None, None) if gone else _estimate(tracker, name, job)
        rows.append(JobStatus(
            name, manifest.api if manifest else record.api if record else None, kind,
            manifest.state if manifest else None, record.id if record else None,
            job.status if job else (GONE if gone else NOT_CREATED), percent, tiles_done, tiles_total,
            pu_so_far(job), estimate, source, record.history[-1] if record and record.history else None,
            _pu_estimated(job, percent, estimate, source),
            source_of(manifest.file) if manifest else record.file if record else None, name in elsewhere))
    return rows


def _read_elsewhere(records: Mapping[str, JobState],
                    scope: tuple[str, ...] | None) -> dict[str, tuple[str, Manifest | None]]:
    """Jobs the paths read do not declare, looked for in the manifest file each record names when
    that file lies outside those paths and still exists: {name: (kind, its manifest if loaded)}.
    The files are read like any manifest (inside the repository only, `${env:…}` unresolved)."""
    root = repository_root(".")
    wanted = {name: str(Path(root, record.file)) for name, record in records.items()
              if record.file and scope is not None and not in_scope(record, scope)}
    existing = sorted({path for path in wanted.values() if os.path.isfile(path)})
    if not existing:
        return {}
    result = load(existing, resolve_env=False)
    loaded = {m.name: m for m in result.manifests}
    broken = {d.file for d in result.errors}
    found: dict[str, tuple[str, Manifest | None]] = {}
    for name, path in wanted.items():
        if name in loaded and source_of(loaded[name].file) == records[name].file:
            found[name] = ("loaded", loaded[name])
        elif name in result.deferred:
            found[name] = ("unresolved", None)
        elif path in broken:  # the file has errors: what it declares is not known here
            found[name] = ("unreadable", None)
    return found


def _figures(tracker: Tracker, name: str, job: LiveJob | None,
             counted: dict[str, int | None]) -> tuple[float | None, int | None, int | None]:
    """(percent done, tiles done, tiles total): a v2 job that ended DONE has done all its offline tiles."""
    if job is None:
        return None, None, None
    figures = tracker.figures(name, job)
    if job.api != "v2" or job.status != Status.DONE or figures[2] is not None:
        return figures
    total = _tile_count(tracker.body(name, job), counted)
    return (job.completion if job.completion is not None else 100.0, total, total) if total else figures


def _tile_count(body: Mapping[str, Any] | None, counted: dict[str, int | None]) -> int | None:
    """The offline tiles of a body's area on its grid, counted once per distinct area and grid."""
    if body is None:
        return None
    try:
        key = json.dumps([body.get("input") or body.get("tilingGrid"), body["processRequest"]["input"]["bounds"]],
                         sort_keys=True, default=str)
    except (KeyError, TypeError, ValueError):
        return None
    if key not in counted:
        tiles = offline_tiles(body)
        counted[key] = len(tiles) if tiles else None
    return counted[key]


def _pu_estimated(job: LiveJob | None, percent: float | None, estimate: float | None, source: str | None) -> float | None:
    """A v1 job's PU so far, which v1 does not report: the share of its tiles processed × the
    service's own estimate, once processing began."""
    if job is None or job.api != "v1" or source != "service" or estimate is None or percent is None:
        return None
    if not (processing_began(job) or percent > 0):
        return None
    return round(estimate * percent / 100, 1)


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
