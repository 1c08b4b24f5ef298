"""The sandbox's batch jobs and their status machine (BATCH_API.md, v2).

A `Job` is the service-side record; user actions (analyse, start, stop, description updates)
are checked against its status exactly as the service answers them (400/409 otherwise). Time
is driven from outside: the worker calls `due_steps` and applies the results, so every rule here
is a plain function of the job and the clock's reading.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from reconciler.geo.tiles import Tile

DOMAIN_ACCOUNT_ID = "5f0e6d7a-1c2b-4a39-9e8f-7d6c5b4a3f21"
PROJECT_ID = "0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
WORKSPACE_ID = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"


class Refused(Exception):
    """A user action the job's status does not allow: the HTTP status and the service's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class TileWork:
    tile: Tile
    pu: float
    status: str = "PENDING"  # PENDING → PROCESSING → PROCESSED | FAILED
    finishes_at: float | None = None
    skipped: bool = False  # `skipExisting` found all its outputs


@dataclass
class Job:
    id: str
    api: str
    request: dict[str, Any]
    created: datetime
    status: str = "CREATED"
    user_action: str = "NONE"
    user_action_updated: datetime | None = None
    last_updated: datetime | None = None
    error: str | None = None
    cost_pu: float = 0.0
    stopped_reason: str | None = None
    tiles: list[TileWork] | None = None
    estimate_pu: float | None = None
    analysis_done_at: float | None = None  # clock reading when the running analysis completes
    start_after_analysis: bool = False
    stop_after_analysis: bool = False
    prepared: bool = False  # existing outputs checked (skipExisting/overwrite) before the first tile
    sequence: int = 0  # creation order, for stable listing

    @property
    def completion(self) -> float:
        if not self.tiles:
            return 100.0 if self.status == "DONE" else 0.0
        done = sum(1 for t in self.tiles if t.status == "PROCESSED")
        return round(100.0 * done / len(self.tiles), 2)

    @property
    def description(self) -> str:
        return self.request.get("description") or ""


def new_job(api: str, request: dict, now: datetime, sequence: int) -> Job:
    return Job(id=str(uuid.uuid4()), api=api, request=request, created=now, last_updated=now, sequence=sequence)


def _touch(job: Job, now: datetime, action: str | None = None) -> None:
    job.last_updated = now
    if action:
        job.user_action, job.user_action_updated = action, now


def analyse(job: Job, now: datetime, clock: float, analysis_seconds: float) -> None:
    if job.status != "CREATED":
        raise Refused(400, f"Cannot analyse a request with status {job.status}")
    job.status, job.analysis_done_at = "ANALYSING", clock + analysis_seconds
    _touch(job, now, "ANALYSE")


def start(job: Job, now: datetime, clock: float, analysis_seconds: float) -> None:
    if job.status == "CREATED":
        job.status, job.analysis_done_at, job.start_after_analysis = "ANALYSING", clock + analysis_seconds, True
    elif job.status == "ANALYSING":
        job.start_after_analysis, job.stop_after_analysis = True, False
    elif job.status in ("ANALYSIS_DONE", "STOPPED") and job.tiles is not None:
        job.status, job.stopped_reason = "PROCESSING", None
    else:
        raise Refused(400, f"Cannot start a request with status {job.status}")
    _touch(job, now, "START")


def stop(job: Job, now: datetime) -> None:
    if job.status == "ANALYSING":
        job.stop_after_analysis, job.start_after_analysis = True, False  # the analysis still completes
    elif job.status in ("ANALYSIS_DONE", "PROCESSING"):
        job.status, job.stopped_reason = "STOPPED", "USER_ACTION"
        for work in job.tiles or []:
            if work.status == "PROCESSING":  # interrupted: it will be processed again on resume
                work.status, work.finishes_at = "PENDING", None
    else:
        raise Refused(400, f"Cannot stop a request with status {job.status}")
    _touch(job, now, "STOP")


def update_description(job: Job, description: str, now: datetime) -> None:
    queued = job.status == "ANALYSING" and job.start_after_analysis
    if job.status == "PROCESSING" or queued:
        raise Refused(409, "Request is being processed or is waiting to be processed and cannot be updated")
    job.request = {**job.request, "description": description}
    _touch(job, now)


def finish_analysis(job: Job, tiles: list[TileWork] | None, error: str | None, now: datetime) -> None:
    """Apply an analysis result: tiles and estimate, then ANALYSIS_DONE, PROCESSING or STOPPED."""
    job.analysis_done_at = None
    if error is not None or not tiles:
        job.status, job.error = "FAILED", error or "The area of interest intersects no tile of the grid"
    else:
        job.tiles = tiles
        job.estimate_pu = job.cost_pu = round(sum(t.pu for t in tiles), 4)
        if job.stop_after_analysis:
            job.status, job.stopped_reason = "STOPPED", "USER_ACTION"
        elif job.start_after_analysis:
            job.status = "PROCESSING"
        else:
            job.status = "ANALYSIS_DONE"
    job.start_after_analysis = job.stop_after_analysis = False
    _touch(job, now)


def begin_processing(job: Job, existing: set[str], overwrite: bool, skip_existing: bool, now: datetime,
                     outputs_of) -> None:
    """Before the first tile: the service checks what already exists at the delivery paths."""
    job.prepared, job.cost_pu = True, 0.0
    for work in job.tiles or []:
        keys = {o.url for o in outputs_of(work.tile)}
        present = keys & existing
        if skip_existing and present == keys:
            work.status, work.skipped = "PROCESSED", True
        elif present and not overwrite:
            job.status = "FAILED"
            job.error = f"Output files already exist (e.g. {sorted(present)[0]}); set overwrite or skipExisting"
            _touch(job, now)
            return
    _finish_if_complete(job, now)


def schedule_tiles(job: Job, clock: float, workers: int, tile_seconds: float) -> None:
    running = sum(1 for t in job.tiles if t.status == "PROCESSING")
    for work in job.tiles:
        if running >= workers:
            break
        if work.status == "PENDING":
            work.status, work.finishes_at = "PROCESSING", clock + tile_seconds
            running += 1


def finish_tile(job: Job, work: TileWork, now: datetime) -> None:
    work.status, work.finishes_at = "PROCESSED", None
    job.cost_pu = round(sum(w.pu for w in job.tiles if w.status == "PROCESSED" and not w.skipped), 4)
    _touch(job, now)
    _finish_if_complete(job, now)


def _finish_if_complete(job: Job, now: datetime) -> None:
    if job.status == "PROCESSING" and all(t.status == "PROCESSED" for t in job.tiles or []):
        job.status = "DONE"
        _touch(job, now)


def as_task(job: Job) -> dict:
    """The v2 task object, with every field sentinelhub-py reads."""
    task = {
        "id": job.id,
        "request": job.request,
        "domainAccountId": DOMAIN_ACCOUNT_ID,
        "projectId": PROJECT_ID,
        "workspaceId": WORKSPACE_ID,
        "status": job.status,
        "userAction": job.user_action,
        "created": _iso(job.created),
        "lastUpdated": _iso(job.last_updated),
        "completionPercentage": job.completion,
        "costPU": job.cost_pu,
    }
    if job.user_action_updated:
        task["userActionUpdated"] = _iso(job.user_action_updated)
    if job.error:
        task["error"] = job.error
    if job.stopped_reason and job.status == "STOPPED":
        task["stoppedStatusReason"] = job.stopped_reason
    return task


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
