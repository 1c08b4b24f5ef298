"""The tile map of one job (the seeds' tutorial plots tiles coloured by status): its tiles as
GeoJSON features with their status, and its area of interest. v1 lists its tiles with their own
statuses; v2 does not, so its tiles come from the grid (reconciler.geo) and carry the job's."""

from __future__ import annotations

from typing import Any

from reconciler.api.jobs import JobsApi, LiveJob

# a v2 job's status as the status of each of its tiles
_TILE_STATUS_OF_JOB = {"CREATED": "PENDING", "ANALYSING": "PENDING", "ANALYSIS_DONE": "PENDING",
                       "PROCESSING": "PROCESSING", "DONE": "PROCESSED", "FAILED": "FAILED", "STOPPED": "PENDING"}


def tile_map(api: JobsApi, job: LiveJob) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one feature per tile (name, status, where the status comes
    from) and one for the area of interest."""
    from shapely.geometry import mapping

    from reconciler.geo.tiles import aoi_lonlat

    if job.api == "v1":
        features = [_feature(t.geometry, {"kind": "tile", "id": t.id, "status": str(t.status), "statusOf": "tile"})
                    for t in api.tiles(job.id)]
    else:
        features = [_feature({"type": "Polygon", "coordinates": [[list(p) for p in tile.wgs84]]},
                             {"kind": "tile", "id": tile.id, "name": tile.name,
                              "status": _TILE_STATUS_OF_JOB.get(job.status, job.status), "statusOf": "job"})
                    for tile in _grid_tiles(job.request)]
    bounds = job.request["processRequest"]["input"]["bounds"]
    area = _feature(mapping(aoi_lonlat(bounds)), {"kind": "aoi"})
    return {"type": "FeatureCollection", "properties": {"requestId": job.id, "api": job.api, "status": job.status},
            "features": [*features, area]}


def _grid_tiles(request: dict):
    from reconciler.geo.tiles import tiles_for_bounds

    grid = request.get("input") or {}
    if grid.get("type") != "tiling-grid":
        return []  # a GeoPackage's features are in the bucket, not on a grid
    return tiles_for_bounds(request["processRequest"]["input"]["bounds"], grid["id"], grid["resolution"],
                            grid.get("bufferX") or 0, grid.get("bufferY") or 0)


def _feature(geometry: Any, properties: dict) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}
