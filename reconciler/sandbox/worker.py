"""The sandbox's clock-driven worker: finishes analyses (real tiles and PU estimates from
`reconciler.geo`), checks existing outputs before processing, processes tiles a few at a time and
writes each tile's outputs to the delivery bucket on the sandbox S3.

It runs in its own thread. Decisions are taken under the state lock; slow work (tiling, S3 I/O)
happens outside it and is applied afterwards only if the job still expects it (a STOP may have
come in between).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from reconciler.geo.cost import cost_factors, tile_pu
from reconciler.geo.tiles import GeoError, tiles_for_bounds
from reconciler.sandbox import delivery, jobs
from reconciler.sandbox.store import SandboxState


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
    try:
        factors = cost_factors(process)
        if request["input"]["type"] == "geopackage":
            from reconciler.sandbox.geopackage import feature_tiles

            tiles = feature_tiles(request["input"], s3)
        else:
            grid = request["input"]
            tiles = tiles_for_bounds(process["input"]["bounds"], grid["id"], grid["resolution"],
                                     grid.get("bufferX") or 0, grid.get("bufferY") or 0)
    except (GeoError, ValueError) as e:
        return None, str(e)
    return [jobs.TileWork(tile, round(tile_pu(tile, factors), 4)) for tile in tiles], None


class Worker(threading.Thread):
    def __init__(self, state: SandboxState, s3: Any, timing: Timing):
        super().__init__(name="sandbox-worker", daemon=True)
        self.state, self.s3, self.timing = state, s3, timing
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stop_event.wait(self.timing.tick_seconds):
            self.step()

    def step(self) -> None:
        analyses, preparations, tiles = self._due()
        for job in analyses:
            result = analyse_request(job.request, self.s3)
            with self.state.lock:
                jobs.finish_analysis(job, *result, _now())
        for job in preparations:
            self._prepare(job)
        for job, work in tiles:
            self._process(job, work)

    def _due(self):
        clock = time.monotonic()
        analyses, preparations, tiles = [], [], []
        with self.state.lock:
            for job in self.state.jobs():
                if job.status == "ANALYSING" and job.analysis_done_at is not None and job.analysis_done_at <= clock:
                    analyses.append(job)
                elif job.status == "PROCESSING" and not job.prepared:
                    preparations.append(job)
                elif job.status == "PROCESSING":
                    jobs.schedule_tiles(job, clock, self.timing.workers, self.timing.tile)
                    tiles += [(job, w) for w in job.tiles if w.status == "PROCESSING" and w.finishes_at <= clock]
        return analyses, preparations, tiles

    def _prepare(self, job: jobs.Job) -> None:
        """Before the first tile, look at what already exists where the outputs go."""
        request = job.request
        output = request["output"]
        if output["type"] == "zarr":
            root = delivery.zarr_root(request, job.id)
            if self._existing(root.bucket, root.key):
                with self.state.lock:
                    job.status, job.error = "FAILED", f"The Zarr folder {root.url} is not empty"
                return
            tiles = [w.tile for w in job.tiles]
            for obj, body in delivery.zarr_metadata(request, job.id, tiles, request["input"]["resolution"]).items():
                self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=body)
            existing, overwrite, skip = set(), True, False
        else:
            bucket, prefix = delivery.split_s3_url(delivery.delivery_url(request).split("<", 1)[0])
            existing = self._existing(bucket, prefix)
            overwrite, skip = bool(output.get("overwrite")), bool(output.get("skipExisting"))
        with self.state.lock:
            if job.status == "PROCESSING" and not job.prepared:
                jobs.begin_processing(job, existing, overwrite, skip, _now(),
                                      lambda tile: delivery.raster_objects(request, job.id, tile))

    def _process(self, job: jobs.Job, work: jobs.TileWork) -> None:
        request = job.request
        if request["output"]["type"] == "zarr":
            origin = self._zarr_origin(job)
            objects = delivery.zarr_chunk_objects(request, job.id, work.tile, origin, request["input"]["resolution"])
        else:
            objects = delivery.raster_objects(request, job.id, work.tile)
        for obj in objects:
            self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=delivery.placeholder(job.id, work.tile, obj))
        with self.state.lock:
            if job.status == "PROCESSING" and work.status == "PROCESSING":
                jobs.finish_tile(job, work, _now())

    @staticmethod
    def _zarr_origin(job: jobs.Job) -> tuple[float, float]:
        return min(w.tile.bounds[0] for w in job.tiles), max(w.tile.bounds[3] for w in job.tiles)

    def _existing(self, bucket: str, prefix: str) -> set[str]:
        found = set()
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found |= {f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", [])}
        return found


def _now() -> datetime:
    return datetime.now(timezone.utc)
