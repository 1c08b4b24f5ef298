"""The sandbox's clock-driven worker: finishes analyses (real tiles and PU estimates from
`reconciler.geo`), checks existing outputs before processing, processes tiles a few at a time
(failing some when asked to), writes each tile's outputs to the delivery bucket on the sandbox
S3, and deletes stale requests.

It runs in its own thread. Decisions are taken under the state lock; slow work (tiling, S3 I/O)
happens outside it and is applied afterwards only if the job still expects it (a STOP or CANCEL
may have come in between). With a manual clock there is no thread: `clock.advance` calls `settle`
at each moment `next_due` names, holding the state lock throughout.

An analysis covers at most MAX_TILES_PER_ANALYSIS tiles (see `limits`): a larger area fails it
before its tiles are listed, as the service refuses what it cannot process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.geo.cost import cost_factors, tile_pu
from reconciler.geo.tiles import GeoError, tiles_for_bounds
from reconciler.sandbox import delivery, jobs
from reconciler.sandbox.faults import Faults, tile_fails
from reconciler.sandbox.limits import check_tile_count
from reconciler.sandbox.store import SandboxState

logger = logging.getLogger(__name__)
# The longest the worker sleeps when nothing is due: every change to a job wakes it sooner, so this
# only bounds what a change made some other way (none is known) would wait.
IDLE_WAKE = 1.0


@dataclass(frozen=True)
class Timing:
    """Seconds each phase takes at speed 1; `speed` divides them all."""

    analysis_seconds: float = 0.3
    tile_seconds: float = 0.05
    workers: int = 8
    speed: float = 1.0
    tick_seconds: float = 0.01

    @property
    def analysis(self) -> float:
        return self.analysis_seconds / self.speed

    @property
    def tile(self) -> float:
        return self.tile_seconds / self.speed


def analyse_request(request: dict, s3: Any) -> tuple[list[jobs.TileWork] | None, str | None]:
    """The tiles the service would process, each with its PU, or the error the analysis ends with."""
    process = request["processRequest"]
    grid = request.get("tilingGrid") or request["input"]
    try:
        factors = cost_factors(process)
        if grid.get("type") == "geopackage":
            from reconciler.sandbox.geopackage import feature_tiles

            tiles = feature_tiles(grid, s3)
        else:
            check_tile_count(process["input"]["bounds"], grid["id"])
            tiles = tiles_for_bounds(process["input"]["bounds"], grid["id"], grid["resolution"],
                                     grid.get("bufferX") or 0, grid.get("bufferY") or 0)
            check_tile_count(process["input"]["bounds"], grid["id"], len(tiles))
    except (GeoError, ValueError) as e:
        return None, str(e)
    return [jobs.TileWork(tile, round(tile_pu(tile, factors), 4)) for tile in tiles], None


@dataclass
class _Due:
    analyses: list[jobs.Job] = field(default_factory=list)
    preparations: list[jobs.Job] = field(default_factory=list)
    tiles: list[tuple[jobs.Job, jobs.TileWork]] = field(default_factory=list)


class Worker(threading.Thread):
    """`sweep_each_step`: look for stale jobs at every step, not at most once a second (a manual
    clock jumps, and the step at the new time must find every job that became stale)."""

    def __init__(self, state: SandboxState, s3: Any, timing: Timing, faults: Faults, clock=time.time,
                 sweep_each_step: bool = False):
        super().__init__(name="sandbox-worker", daemon=True)
        self.state, self.s3, self.timing, self.faults, self.clock = state, s3, timing, faults, clock
        self.sweep_each_step = sweep_each_step
        self._stop_event = threading.Event()
        self._swept = float("-inf")  # when finished jobs were last checked for staleness

    def stop(self) -> None:
        self._stop_event.set()
        self.state.changed.set()
        if self.is_alive():
            self.join(timeout=10)

    def run(self) -> None:
        """A step, then a tick's rest after a busy one (what falls due meanwhile is done in one
        step); after an idle one, sleep until something falls due or a job changes
        (`state.changed`), so an idle sandbox takes no CPU. `changed` is cleared before the step:
        a change during it cuts the sleep short."""
        while not self._stop_event.is_set():
            self.state.changed.clear()
            if self.step():
                self._stop_event.wait(self.timing.tick_seconds)
            else:
                self.state.changed.wait(self._quiet_seconds())

    def step(self) -> bool:
        """One round of due work at the current time; whether anything happened."""
        due, changed = self._due()
        for job in due.analyses:
            self._guarded(job, lambda job=job: self._analyse(job))
        for job in due.preparations:
            self._guarded(job, lambda job=job: self._prepare(job))
        for job, work in due.tiles:
            self._guarded(job, lambda job=job, work=work: self._process(job, work))
        return changed or bool(due.analyses or due.preparations or due.tiles)

    def settle(self) -> None:
        """Step until nothing more happens at the current time. Each busy step moves some job on
        (an analysis ends, a tile advances a status), so this ends."""
        while self.step():
            pass

    def _quiet_seconds(self) -> float:
        """How long nothing can fall due: until the next analysis or tile ends, or the next look
        for stale jobs; at least a tick, at most IDLE_WAKE."""
        moments = [self.next_due(float("-inf"))]
        if self.faults.stale_after is not None:
            moments.append(self._swept + self._sweep_every())
        soonest = min((m for m in moments if m is not None), default=None)
        rest = IDLE_WAKE if soonest is None else soonest - self.clock()
        return min(IDLE_WAKE, max(self.timing.tick_seconds, rest))

    def _sweep_every(self) -> float:
        return 0.0 if self.sweep_each_step else min(1.0, (self.faults.stale_after or 0) / 4)

    def next_due(self, after: float) -> float | None:
        """The first moment later than `after` at which an analysis ends or a tile finishes."""
        with self.state.lock:
            moments = []
            for job in self.state.active():
                if job.status == "ANALYSING" and job.analysis_done_at is not None:
                    moments.append(job.analysis_done_at)
                elif job.status == "PROCESSING":
                    moments += [w.finishes_at for w in job.tiles or []
                                if w.status == "PROCESSING" and w.finishes_at is not None]
            return min((m for m in moments if m > after), default=None)

    def _guarded(self, job: jobs.Job, step) -> None:
        """A step that breaks (e.g. the delivery bucket is gone) fails its job, not the worker."""
        try:
            step()
        except Exception as e:  # noqa: BLE001 — the worker must outlive any one job
            logger.warning("job %s failed in the sandbox worker: %s", job.id, e)
            with self.state.lock:
                job.status, job.error, job.analysis_done_at = "FAILED", f"Processing error: {e}", None
                job.last_updated = self.clock()
                self.state.save(job)

    def _analyse(self, job: jobs.Job) -> None:
        result = analyse_request(job.request, self.s3)
        with self.state.lock:
            jobs.finish_analysis(job, *result, self.clock())
            self.state.save(job)

    def _due(self) -> tuple[_Due, bool]:
        """What is due now, and whether deciding it changed anything (stale jobs gone, tiles queued)."""
        now, due, changed = self.clock(), _Due(), False
        with self.state.lock:
            stale_after = self.faults.stale_after
            if stale_after is not None and now - self._swept >= self._sweep_every():
                self._swept = now
                for job in self.state.jobs():
                    if jobs.is_stale(job, now, stale_after):
                        self.state.remove(job.id)
                        changed = True
            for job in self.state.active():
                if job.status == "ANALYSING" and job.analysis_done_at is not None and job.analysis_done_at <= now:
                    due.analyses.append(job)
                elif job.status == "PROCESSING" and not job.prepared:
                    due.preparations.append(job)
                elif job.status == "PROCESSING":
                    before = [(w.status, w.finishes_at) for w in job.analysed_tiles]
                    jobs.schedule_tiles(job, now, self.timing.workers, self.timing.tile)
                    if before != [(w.status, w.finishes_at) for w in job.analysed_tiles]:
                        self.state.save(job)
                        changed = True
                    due.tiles += [(job, w) for w in job.analysed_tiles
                                  if w.status == "PROCESSING" and w.finishes_at <= now]
        return due, changed

    def _prepare(self, job: jobs.Job) -> None:
        """Before the first tile, look at what already exists where the outputs go."""
        dest = delivery.destination(job.request)
        if dest.zarr is not None:
            root = delivery.zarr_root(dest, job.id)
            if self._existing(root.bucket, root.key):
                with self.state.lock:
                    job.status, job.error = "FAILED", f"The Zarr folder {root.url} is not empty"
                    self.state.save(job)
                return
            for obj, body in delivery.zarr_metadata(dest, job.id, [w.tile for w in job.analysed_tiles]).items():
                self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=body)
            existing, overwrite, skip = set(), True, False
        else:
            existing = self._existing(dest.prefix.bucket, dest.prefix.key)
            overwrite, skip = dest.overwrite, dest.skip_existing
        with self.state.lock:
            if job.status == "PROCESSING" and not job.prepared:
                jobs.begin_processing(job, existing, overwrite, skip, self.clock(),
                                      lambda tile: delivery.raster_objects(dest, job.id, tile))
                self.state.save(job)

    def _process(self, job: jobs.Job, work: jobs.TileWork) -> None:
        failed = tile_fails(self.faults, job.id, work.tile.id, job.attempt)
        if not failed:
            dest = delivery.destination(job.request)
            if dest.zarr is not None:
                origin = (min(w.tile.bounds[0] for w in job.analysed_tiles),
                          max(w.tile.bounds[3] for w in job.analysed_tiles))
                objects = delivery.zarr_chunk_objects(dest, job.id, work.tile, origin)
            else:
                objects = delivery.raster_objects(dest, job.id, work.tile)
            for obj in objects:
                self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=delivery.placeholder(job.id, work.tile, obj))
        with self.state.lock:
            if job.status == "PROCESSING" and work.status == "PROCESSING":
                jobs.finish_tile(job, work, failed, self.clock(), self.faults.v2_failure_threshold)
                self.state.save(job)

    def _existing(self, bucket: str, prefix: str) -> set[str]:
        found = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found |= {f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", [])}
        return found
