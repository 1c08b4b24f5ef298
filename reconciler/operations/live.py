"""Beside refresh: the live job each recorded name has now — one listing per API version, each
name joined to its request by the id the lockfile holds — and how far along it is. `status`,
apply's last look at the jobs (observe) and `apply --wait` all read live state this way.

How far along: v2 reports `completionPercentage` but no tile count, so the tiles are that share of
the tiles of the job's area on its grid, computed offline (reconciler.geo; none for a GeoPackage
input). v1 reports `tileCount` but no percentage, so its PROCESSED tiles are counted from the
tiles endpoint: one paged listing per v1 job that is processing (such jobs are few), once for one
that ended part-way, none for one that ended DONE (all of them) or never started (none yet)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.api.jobs import JobsApi
from reconciler.batch import ApiVersion
from reconciler.batch.live import LiveJob
from reconciler.batch.models.v1 import TileStatus
from reconciler.batch.statuses import MISSING, RUNNING, TERMINAL, Status, settled
from reconciler.state.model import JobState

# v1 statuses whose tiles are counted from the tiles endpoint (some may be processed, not all)
_COUNTED = frozenset({Status.PROCESSING, Status.PARTIAL, Status.FAILED, Status.CANCELED})
_PROCESSING_BEGAN = frozenset({Status.PROCESSING, Status.DONE, Status.PARTIAL})
_STOPPED_SOMEWHERE = frozenset({Status.FAILED, Status.STOPPED, Status.CANCELED})  # before processing, or part-way through
# Ended for good: what such a job cost is known, so it is not tiled offline (10,000 finished jobs
# would each cost a tiling); one tiled while it ran keeps its count.
_ENDED = TERMINAL - {Status.STOPPED}


def recorded_jobs(apis: Iterable[JobsApi], records: Mapping[str, JobState | None]) -> dict[str, LiveJob | None]:
    """{name: its live job, or None when it has no request or the listing does not show it}."""
    return joined([job for api in apis for job in api.list_jobs()], records)


def joined(live: Iterable[LiveJob], records: Mapping[str, JobState | None]) -> dict[str, LiveJob | None]:
    """The same, from jobs already listed."""
    by_id = {job.id: job for job in live}
    return {name: by_id.get(record.id) if record is not None and record.id else None for name, record in records.items()}


@dataclass(frozen=True)
class JobProgress:
    """One job while `apply --wait` waits: where it is, how far along, what it has cost so far."""

    name: str
    api: str | None
    wanted: str | None  # spec.state
    status: str  # the live status, or MISSING
    settled: bool  # nothing moves it further without another run (at its spec.state, or stuck)
    percent: float | None
    tiles_done: int | None
    tiles_total: int | None
    pu_so_far: float | None
    elapsed: float | None  # seconds from the start of the wait until it settled (or until now)

    @property
    def running(self) -> bool:
        """Still running at the service (stopping this program does not stop it)."""
        return self.status in RUNNING


def processing_began(job: LiveJob) -> bool:
    """Whether tiles have been processed (or are being): v2's costPU then counts what was spent,
    before that it is the service's estimate (0 before analysis)."""
    return job.status in _PROCESSING_BEGAN or (job.status in _STOPPED_SOMEWHERE and bool(job.completion))


def pu_so_far(job: LiveJob | None) -> float | None:
    """Processing units spent so far: v2's costPU once processing began; v1 reports none."""
    return job.cost_pu if job is not None and job.api == "v2" and processing_began(job) else None


def offline_tiles(body: Mapping[str, Any]) -> list | None:
    """The tiles of a create body's area on its grid (v1 `tilingGrid` or v2 `input`); None for a
    GeoPackage input, or when the body cannot be tiled."""
    from reconciler.geo.tiles import body_tiles

    try:
        return body_tiles(body)
    except (ValueError, KeyError, TypeError):  # GeoError is a ValueError; a live echo may lack a field
        return None


class Tracker:
    """How far along jobs are, for `status` and `apply --wait`. The offline tiles of a job are
    computed once per tracker, and a v1 job's PROCESSED tiles are counted again only while it is
    processing. `bodies` are the manifests' create bodies; a job without one is tiled from its
    live request."""

    def __init__(self, apis: Mapping[ApiVersion, JobsApi], bodies: Mapping[str, Mapping[str, Any]],
                 clock: Callable[[], float] = time.monotonic):
        self._apis, self._bodies, self._clock = apis, bodies, clock
        self._start = clock()
        self._tiles: dict[str, list | None] = {}
        self._counted: dict[tuple[str, str], int] = {}
        self._settled_at: dict[str, float] = {}

    def body(self, name: str, job: LiveJob | None) -> Mapping[str, Any] | None:
        """The create body the job is tiled and priced from: its manifest's, else its live request."""
        return self._bodies.get(name) or (job.request if job is not None else None)

    def tiles(self, name: str, job: LiveJob | None) -> list | None:
        """The job's offline tiles; None when they cannot be computed, or the job ended before they were."""
        if name not in self._tiles:
            if job is not None and job.status in _ENDED:
                return None
            body = self.body(name, job)
            self._tiles[name] = offline_tiles(body) if body else None
        return self._tiles[name]

    def figures(self, name: str, job: LiveJob) -> tuple[float | None, int | None, int | None]:
        """(percent done, tiles done, tiles total), each None when unknown."""
        if job.api == "v2":
            tiles = self.tiles(name, job)
            total = len(tiles) if tiles else None
            if job.completion is None or total is None:
                return job.completion, None, total
            return job.completion, round(job.completion * total / 100), total
        total = job.tile_count
        done = self._processed(job) if total is not None else None
        percent = round(100.0 * done / total, 2) if total and done is not None else None
        return percent, done, total

    def progress(self, name: str, wanted: str, job: LiveJob | None) -> JobProgress:
        """The job of `name` as the wait shows it; elapsed time stops when it settles."""
        status = job.status if job is not None else MISSING
        now, done = self._clock(), settled(wanted, status)
        if done:
            now = self._settled_at.setdefault(name, now)
        else:
            self._settled_at.pop(name, None)
        percent, tiles_done, tiles_total = self.figures(name, job) if job is not None else (None, None, None)
        return JobProgress(name, job.api if job else None, wanted, status, done, percent, tiles_done, tiles_total,
                           pu_so_far(job), now - self._start)

    def _processed(self, job: LiveJob) -> int:
        if job.status == Status.DONE:
            return job.tile_count or 0
        if job.status not in _COUNTED:
            return 0  # not processing yet
        key = (job.id, job.status)
        if job.status == Status.PROCESSING or key not in self._counted:
            self._counted[key] = sum(1 for _ in self._apis["v1"].tiles(job.id, status=TileStatus.PROCESSED))
        return self._counted[key]
