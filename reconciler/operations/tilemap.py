"""The tile map of one job (`status NAME --map`; the seeds' tutorial plots tiles coloured by
status): its tiles as GeoJSON features, each with its grid name, and its area of interest. A tile
carries a status only where the service keeps one; `render/tilemap.py` writes the file.

- v1 lists its tiles with their own statuses (the tiles endpoint). Before its analysis it lists
  none: the map then holds the grid's tiles, without status.
- v2 has no per-tile status (and no tiles endpoint): its tiles come from the grid (reconciler.geo)
  and carry none. The job's status, completion and error stay on the collection and never colour
  a tile: a FAILED job with 9 failed tiles of 66 must not show 66 failed tiles.
- A v2 GeoPackage job's tiles are the features of its GeoPackage (the service makes one tile per
  feature), read from S3 through boto3's standard chain (AWS_ENDPOINT_URL_S3 for the sandbox) with
  the user's own credentials, at most MAX_GEOPACKAGE_BYTES and MAX_FEATURES. A GeoPackage that
  cannot be read or used is a GeoPackageError naming the file and why, never an empty map.
"""

from __future__ import annotations

from typing import Any

from reconciler.api.jobs import JobsApi
from reconciler.batch.live import LiveJob
from reconciler.geo.geopackage import GeoPackageError

PER_TILE = "each tile's own, from the v1 tiles endpoint"
NOT_IN_V2 = "per-tile status not available in Batch v2"
NOT_LISTED_YET = "no tiles listed before the analysis: the grid's tiles, without status"
# Bounds on what a map reads: a GeoPackage of field polygons takes well under 1 kB a feature.
MAX_GEOPACKAGE_BYTES = 64 * 1024 * 1024
MAX_FEATURES = 100_000  # as many tiles as one analysis may have (the sandbox's bound)


def tile_map(api: JobsApi, job: LiveJob, s3: Any = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one feature per tile (`id`, `name`, `status` or null) and one
    for the area of interest; the collection's properties say where tiles and statuses come from.
    `s3`: a boto3 S3 client for a GeoPackage job (default: one from the standard chain)."""
    from shapely.geometry import mapping

    from reconciler.geo.tiles import aoi_lonlat, body_tiles

    source = job.body.get("input") or {}
    if job.api == "v1":
        tiles, origin, note = _v1_tiles(api, job)
    elif source.get("type") == "geopackage":
        tiles, origin, note = _geopackage_tiles(source, s3), "geopackage", NOT_IN_V2
    else:
        tiles, origin, note = [_tile_feature(t) for t in body_tiles(job.body) or []], "grid", NOT_IN_V2
    area = _feature(mapping(aoi_lonlat(job.body["processRequest"]["input"]["bounds"])), {"kind": "aoi"})
    properties = {"requestId": job.id, "api": job.api, "status": job.status, "completion": job.completion,
                  "error": job.error, "tiles": origin, "tileStatus": note}
    return {"type": "FeatureCollection", "properties": properties, "features": [*tiles, area]}


def _v1_tiles(api: JobsApi, job: LiveJob) -> tuple[list[dict], str, str]:
    from reconciler.geo.tiles import GeoError, body_tiles

    try:
        grid = body_tiles(job.body) or []
    except GeoError:
        grid = []  # a grid this version does not know: the tiles keep their statuses, without names
    listed = list(api.tiles(job.id))
    if not listed:
        return [_tile_feature(t) for t in grid], "grid", NOT_LISTED_YET
    names = _grid_names(listed, grid)
    return [_feature(t.geometry, {"kind": "tile", "id": t.id, "name": names.get(t.id), "status": str(t.status),
                                  "statusOf": "tile"}) for t in listed], "tiles endpoint", PER_TILE


def _grid_names(listed: list, grid: list) -> dict[int, str]:
    """Each listed tile's grid name: by id, else (ids the grid module does not share) the grid
    tile it overlaps most; listed geometries are the grid tiles' outlines in lon/lat."""
    from shapely import STRtree
    from shapely.geometry import Polygon, shape

    by_id = {t.id: t.name for t in grid}
    names = {t.id: by_id[t.id] for t in listed if t.id in by_id}
    rest = [t for t in listed if t.id not in names and t.geometry]
    if rest and grid:
        outlines = [Polygon(t.wgs84) for t in grid]
        tree = STRtree(outlines)
        for tile in rest:
            where = shape(tile.geometry)
            hits = tree.query(where, predicate="intersects")
            if len(hits):
                names[tile.id] = grid[max(hits, key=lambda i: outlines[i].intersection(where).area)].name
    return names


def _geopackage_tiles(source: dict, s3: Any) -> list[dict]:
    from shapely.geometry import mapping

    from reconciler.geo.geopackage import read_features

    s3_input = (source.get("features") or {}).get("s3") or {}
    url = s3_input.get("url") or ""
    data = read_s3_object(url, MAX_GEOPACKAGE_BYTES, s3 or _s3_client(url, s3_input.get("region")))
    try:
        features = read_features(data, MAX_FEATURES)
        return [_feature(mapping(f.lonlat()), {"kind": "tile", "id": f.fid, "name": f.name, "status": None})
                for f in features]
    except GeoPackageError as e:
        raise GeoPackageError(f"the GeoPackage at {url} cannot be drawn: {e.message}",
                              "check the file in a GIS (it needs one feature table)") from None


def read_s3_object(url: str, max_bytes: int, s3: Any) -> bytes:
    """The bytes of `s3://bucket/key`, at most `max_bytes`; GeoPackageError when it is not there,
    not readable with these credentials, larger, or S3 cannot be reached."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split(url)
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
        body = answer["Body"]
        try:
            size = answer.get("ContentLength") or 0
            data = b"" if size > max_bytes else body.read(max_bytes + 1)
        finally:
            body.close()
    except ClientError as e:
        raise _refused(url, e.response) from None
    except BotoCoreError as e:
        raise GeoPackageError(f"cannot read the GeoPackage at {url}: {e}",
                              "check the network, the AWS credentials and AWS_ENDPOINT_URL_S3") from None
    if size > max_bytes or len(data) > max_bytes:
        raise GeoPackageError(f"the GeoPackage at {url} is larger than the {max_bytes:,} bytes a map reads",
                              "open it in a GIS, or draw a smaller extract of it")
    return data


def _refused(url: str, response: dict) -> GeoPackageError:
    code = response.get("Error", {}).get("Code", "") or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    if code in ("NoSuchKey", "404", "NoSuchBucket"):
        return GeoPackageError(f"the GeoPackage at {url} is not there ({code})",
                               "upload it, or correct input.features.s3.url")
    if code in ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return GeoPackageError(f"no access to the GeoPackage at {url} ({code})",
                               "the map reads it with your AWS credentials (variables, profile or role), "
                               "not with the job's iamRoleARN")
    return GeoPackageError(f"S3 refused the GeoPackage at {url}: {code} {response.get('Error', {}).get('Message', '')}",
                           "check the bucket, the AWS credentials and AWS_ENDPOINT_URL_S3")


def _s3_client(url: str, region: str | None) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.client("s3", region_name=region) if region else boto3.client("s3")
    except BotoCoreError as e:  # a missing profile, a region it cannot use, ...
        raise GeoPackageError(f"cannot read the GeoPackage at {url}: {e}", "check the AWS configuration") from None


def _split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise GeoPackageError(f"the GeoPackage location {url!r} is not an s3://bucket/key URL",
                              "see input.features.s3.url in the manifest")
    return bucket, key


def _tile_feature(tile: Any) -> dict:
    """A grid tile, without status: nothing says which of its states it is in."""
    return _feature({"type": "Polygon", "coordinates": [[list(p) for p in tile.wgs84]]},
                    {"kind": "tile", "id": tile.id, "name": tile.name, "status": None})


def _feature(geometry: Any, properties: dict) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}
