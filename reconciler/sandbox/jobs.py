"""The sandbox's batch jobs and their status machines (docs/api-facts.md, v1 and v2).

A `Job` is the service-side record of either version. User actions are checked against its
status exactly as the service answers them (`Refused` carries the 400/409). Time comes from the
caller as epoch seconds (`now`), so every rule here is a plain function of the job and the time;
the worker drives analysis and processing, the HTTP handlers the user actions.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.geo.tiles import Tile

DOMAIN_ACCOUNT_ID = "5f0e6d7a-1c2b-4a39-9e8f-7d6c5b4a3f21"
PROJECT_ID = "0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
WORKSPACE_ID = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
USER_ID = "2b1a0f9e-8d7c-4b6a-9f5e-4d3c2b1a0f9e"
WAITING = ("PENDING", "SCHEDULED", "QUEUED")
NEVER_STARTED = ("CREATED", "ANALYSIS_DONE")
FINISHED = {"v1": ("DONE", "PARTIAL"), "v2": ("DONE",)}


class Refused(Exception):
    """A user action the job's status does not allow: the HTTP status and the service's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class TileWork:
    tile: Tile
    pu: float
    status: str = "PENDING"  # PENDING → SCHEDULED → QUEUED → PROCESSING → PROCESSED | FAILED
    finishes_at: float | None = None
    skipped: bool = False  # `skipExisting` found all its outputs: done without cost


@dataclass
class Job:
    id: str
    api: str  # "v1" | "v2"
    request: dict[str, Any]
    created: float
    sequence: int = 0  # creation order, for stable listing
    status: str = "CREATED"
    user_action: str = "NONE"
    user_action_updated: float | None = None
    last_updated: float = 0.0
    error: str | None = None
    cost_pu: float = 0.0
    stopped_reason: str | None = None
    tiles: list[TileWork] | None = None
    estimate_pu: float | None = None
    analysis_done_at: float | None = None  # when the running analysis completes
    after_analysis: str | None = None  # "START", "STOP" (v2) or "CANCEL" (v1), asked during analysis
    prepared: bool = False  # existing outputs checked (skipExisting/overwrite) before the first tile
    attempt: int = 0  # processing rounds (restartpartial adds one)

    @property
    def analysed_tiles(self) -> list[TileWork]:
        """The tiles of a job its analysis has tiled: one processing, or past it."""
        assert self.tiles is not None, f"job {self.id} has no tiles before its analysis"
        return self.tiles

    @property
    def completion(self) -> float:
        if not self.tiles:
            return 100.0 if self.status == "DONE" else 0.0
        done = sum(1 for t in self.tiles if t.status == "PROCESSED")
        return round(100.0 * done / len(self.tiles), 2)

    @property
    def description(self) -> str:
        return self.request.get("description") or ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        tiles = data.pop("tiles")
        job = cls(**data)
        if tiles is not None:
            job.tiles = [TileWork(**{**t, "tile": _tile(t["tile"])}) for t in tiles]
        return job


def _tile(data: dict) -> Tile:
    return Tile(**{**data, "bounds": tuple(data["bounds"]), "wgs84": tuple(tuple(p) for p in data["wgs84"])})


def new_job(api: str, request: dict, now: float, sequence: int, seed: int = 0) -> Job:
    """Ids follow from the seed and the creation order, so a seeded run (and its tile failures,
    drawn per job id) repeats exactly."""
    job_id = str(uuid.UUID(int=random.Random(f"{seed}/{sequence}").getrandbits(128), version=4))
    return Job(id=job_id, api=api, request=request, created=now, last_updated=now, sequence=sequence)


def _touch(job: Job, now: float, action: str | None = None) -> None:
    job.last_updated = now
    if action:
        job.user_action, job.user_action_updated = action, now


def analyse(job: Job, now: float, analysis_seconds: float) -> None:
    if job.status != "CREATED":
        raise Refused(400, f"Cannot analyse a request with status {job.status}")
    job.status, job.analysis_done_at = "ANALYSING", now + analysis_seconds
    _touch(job, now, "ANALYSE")


def start(job: Job, now: float, analysis_seconds: float) -> None:
    if job.status == "CREATED":
        job.status, job.analysis_done_at, job.after_analysis = "ANALYSING", now + analysis_seconds, "START"
    elif job.status == "ANALYSING" and job.after_analysis is None:
        job.after_analysis = "START"
    elif job.status == "ANALYSIS_DONE" or (job.api == "v2" and job.status == "STOPPED" and job.tiles is not None):
        job.status, job.stopped_reason = "PROCESSING", None
    else:
        raise Refused(400, f"Cannot start a request with status {job.status}")
    _touch(job, now, "START")


def stop(job: Job, now: float) -> None:
    """v2 STOP: resumable; an analysis under way still completes."""
    if job.status == "ANALYSING":
        job.after_analysis = "STOP"
    elif job.status in ("ANALYSIS_DONE", "PROCESSING"):
        job.status, job.stopped_reason = "STOPPED", "USER_ACTION"
        _interrupt(job)
    else:
        raise Refused(400, f"Cannot stop a request with status {job.status}")
    _touch(job, now, "STOP")


def cancel(job: Job, now: float) -> None:
    """v1 CANCEL: final; an analysis under way still completes; tiles being processed are charged."""
    if job.status == "ANALYSING":
        job.after_analysis = "CANCEL"
    elif job.status in ("CREATED", "ANALYSIS_DONE", "PROCESSING"):
        job.status = "CANCELED"
        _interrupt(job)
    else:
        raise Refused(400, f"Cannot cancel a request with status {job.status}")
    _touch(job, now, "CANCEL")


def restart_partial(job: Job, now: float) -> None:
    if job.status != "PARTIAL":
        raise Refused(400, "Only requests with status PARTIAL can be restarted")
    for work in job.tiles or []:
        if work.status == "FAILED":
            work.status = "SCHEDULED"
    job.status, job.error, job.attempt = "PROCESSING", None, job.attempt + 1
    _touch(job, now, "START")


def update_request(job: Job, request: dict, now: float) -> None:
    """A PUT's edited request (description, v1's collection link), refused while processing or queued to."""
    queued = job.status == "ANALYSING" and job.after_analysis == "START"
    if job.status == "PROCESSING" or queued:
        raise Refused(409, "Request is being processed or is waiting to be processed and cannot be updated")
    job.request = request
    _touch(job, now)


def check_deletable(job: Job) -> None:
    """v1 DELETE: not while analysing or processing (or confirmed for it), never with processed tiles."""
    if job.status in ("ANALYSING", "PROCESSING") or job.after_analysis == "START":
        raise Refused(409, f"A request with status {job.status} cannot be deleted; cancel it first")
    if any(t.status == "PROCESSED" and not t.skipped for t in job.tiles or []):
        raise Refused(409, "A request with processed tiles cannot be deleted")


def _interrupt(job: Job) -> None:
    for work in job.tiles or []:
        if work.status in ("QUEUED", "PROCESSING"):  # it goes back to the queue on resume
            work.status, work.finishes_at = "SCHEDULED", None


def finish_analysis(job: Job, tiles: list[TileWork] | None, error: str | None, now: float) -> None:
    """Apply an analysis result: tiles and estimate, then ANALYSIS_DONE or what was asked meanwhile."""
    job.analysis_done_at, asked, job.after_analysis = None, job.after_analysis, None
    if error is not None or not tiles:
        job.status, job.error = "FAILED", error or "The area of interest intersects no tile of the grid"
    else:
        job.tiles = tiles
        job.estimate_pu = job.cost_pu = round(sum(t.pu for t in tiles), 4)
        job.status = {"START": "PROCESSING", "STOP": "STOPPED", "CANCEL": "CANCELED"}.get(asked or "", "ANALYSIS_DONE")
        if job.status == "STOPPED":
            job.stopped_reason = "USER_ACTION"
    _touch(job, now)


def begin_processing(job: Job, existing: set[str], overwrite: bool, skip_existing: bool, now: float, outputs_of) -> None:
    """Before the first tile: the service checks what already exists at the delivery paths."""
    job.prepared, job.cost_pu = True, 0.0
    for work in job.tiles or []:
        keys = {o.url for o in outputs_of(work.tile)}
        present = keys & existing
        if skip_existing and keys and present == keys:
            work.status, work.skipped = "PROCESSED", True
        elif present and not overwrite:
            job.status = "FAILED"
            job.error = f"Output files already exist (e.g. {sorted(present)[0]}); set overwrite or skipExisting"
            _touch(job, now)
            return
        elif work.status == "PENDING":
            work.status = "SCHEDULED"
    _finish_if_complete(job, now, 0.0)


def schedule_tiles(job: Job, now: float, workers: int, tile_seconds: float) -> None:
    """Move tiles along SCHEDULED → QUEUED → PROCESSING, `workers` at a time."""
    count = {s: sum(1 for t in job.analysed_tiles if t.status == s) for s in ("QUEUED", "PROCESSING")}
    for work in job.analysed_tiles:
        if work.status == "QUEUED" and count["PROCESSING"] < workers:
            work.status, work.finishes_at = "PROCESSING", now + tile_seconds
            count["PROCESSING"] += 1
            count["QUEUED"] -= 1
    for work in job.analysed_tiles:
        if work.status == "SCHEDULED" and count["QUEUED"] < workers:
            work.status = "QUEUED"
            count["QUEUED"] += 1


def finish_tile(job: Job, work: TileWork, failed: bool, now: float, v2_failure_threshold: float) -> None:
    work.status, work.finishes_at = ("FAILED" if failed else "PROCESSED"), None
    # "all tiles that have been processed or are being processed … are charged for" (seed 001): a
    # tile that failed was processed too; one skipped because its outputs existed was not
    charged = (w.pu for w in job.analysed_tiles if w.status in ("PROCESSED", "FAILED") and not w.skipped)
    job.cost_pu = round(sum(charged), 4)
    _touch(job, now)
    _finish_if_complete(job, now, v2_failure_threshold)


def _finish_if_complete(job: Job, now: float, v2_failure_threshold: float) -> None:
    tiles = job.tiles or []
    if job.status != "PROCESSING" or any(t.status not in ("PROCESSED", "FAILED") for t in tiles):
        return
    failed = sum(1 for t in tiles if t.status == "FAILED")
    if failed == 0:
        job.status = "DONE"
    elif job.api == "v1":
        job.status = "FAILED" if failed == len(tiles) else "PARTIAL"
    else:
        share = failed / len(tiles)
        job.status = "FAILED" if share > v2_failure_threshold else "DONE"
    if job.status != "DONE":
        job.error = f"{failed} of {len(tiles)} tiles failed"
    _touch(job, now)


def is_stale(job: Job, now: float, stale_after: float) -> bool:
    """The service deletes failed, never-started and finished requests after a while."""
    age = now - job.last_updated
    stale_status = job.status == "FAILED" or job.status in NEVER_STARTED or job.status in FINISHED[job.api]
    return age >= stale_after and stale_status


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
        "created": iso(job.created),
        "lastUpdated": iso(job.last_updated),
        "completionPercentage": job.completion,
        "costPU": job.cost_pu,
    }
    if job.user_action_updated:
        task["userActionUpdated"] = iso(job.user_action_updated)
    if job.error:
        task["error"] = job.error
    if job.stopped_reason and job.status == "STOPPED":
        task["stoppedStatusReason"] = job.stopped_reason
    return task


def as_v1_request(job: Job) -> dict:
    """The v1 request object: the submitted body plus the service's fields."""
    request = {"id": job.id, "userId": USER_ID, "accountId": DOMAIN_ACCOUNT_ID, "created": iso(job.created), **job.request,
               "status": job.status, "userAction": job.user_action}
    if job.user_action_updated:
        request["userActionUpdated"] = iso(job.user_action_updated)
    if job.tiles is not None:
        first = job.tiles[0].tile
        request.update(tileCount=len(job.tiles), valueEstimate=job.estimate_pu,
                       tileWidthPx=first.width_px, tileHeightPx=first.height_px)
    if job.error:
        request["error"] = job.error
    return request


def as_v1_tile(job: Job, work: TileWork) -> dict:
    tile = work.tile
    epsg = tile.crs.split(":")[-1]
    tile_object = {
        "id": tile.id,
        "requestId": job.id,
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in tile.wgs84]]},
        "origin": {"type": "Point", "coordinates": [tile.bounds[0], tile.bounds[1]],
                   "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}},
        "status": work.status,
    }
    if work.status == "PROCESSED" and not work.skipped:
        tile_object["cost"] = work.pu
    return tile_object


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
