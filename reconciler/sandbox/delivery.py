"""Where a job's outputs go: the S3 objects of each tile and output (raster path templates, Zarr
group/array metadata and chunks), from the create body of either API version. Pure; the writing
happens in `worker`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from reconciler.geo.tiles import Tile

_EXTENSIONS = {"image/tiff": "tif", "image/png": "png", "image/jpeg": "jpg", "application/json": "json"}


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Destination:
    """A body's delivery settings, whichever version wrote them."""

    url: str  # v2 delivery.s3.url, v1 defaultTilePath, s3://bucketName or zarrOutput.path
    zarr: dict | None  # the Zarr settings (group, arrayParameters, arrayOverrides), if Zarr
    overwrite: bool
    skip_existing: bool
    resolution: float
    responses: tuple[tuple[str, str], ...]  # (identifier, format type)

    @property
    def prefix(self) -> S3Object:
        """The part of the URL before any placeholder: everything the job writes is below it."""
        return S3Object(*split_s3_url(self.url.split("<", 1)[0]))


def destination(request: dict) -> Destination:
    process_output = request["processRequest"].get("output") or {}
    responses = tuple((r["identifier"], r["format"]["type"]) for r in process_output.get("responses") or []) or (
        ("default", "image/tiff"),)
    if "tilingGrid" in request or "bucketName" in request or "zarrOutput" in request:  # v1
        output, zarr = request.get("output") or {}, request.get("zarrOutput")
        url = zarr["path"] if zarr else output.get("defaultTilePath") or f"s3://{request.get('bucketName')}"
        resolution = request["tilingGrid"]["resolution"]
    else:
        output = request["output"]
        zarr = output if output["type"] == "zarr" else None
        url, resolution = output["delivery"]["s3"]["url"], request["input"].get("resolution") or 0
    return Destination(url, zarr, bool(output.get("overwrite")), bool(output.get("skipExisting")), resolution, responses)


def buckets_of(request: dict) -> set[str]:
    """Every bucket a body names: where outputs go, and where a GeoPackage input is read."""
    urls = [destination(request).url]
    features = (request.get("input") or {}).get("features")
    if features:
        urls.append(features["s3"]["url"])
    return {split_s3_url(url)[0] for url in urls}


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` → ("bucket", "some/prefix")."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def raster_objects(dest: Destination, request_id: str, tile: Tile) -> list[S3Object]:
    """One object per output of `tile`, by the path template or the default layout
    `<url>/<requestId>/<tileName>/<outputId>.<format>`."""
    objects = []
    for identifier, kind in dest.responses:
        ext = _EXTENSIONS.get(kind, "bin")
        if "<" in dest.url:
            path = (dest.url.replace("<requestId>", request_id).replace("<tileName>", tile.name)
                    .replace("<tileId>", str(tile.id)).replace("<outputId>", identifier).replace("<format>", ext))
        else:
            path = f"{dest.url.rstrip('/')}/{request_id}/{tile.name}/{identifier}.{ext}"
        objects.append(S3Object(*split_s3_url(path)))
    return objects


def zarr_root(dest: Destination, request_id: str) -> S3Object:
    return S3Object(*split_s3_url(dest.url.replace("<requestId>", request_id)))


def array_parameters(dest: Destination, name: str) -> dict:
    assert dest.zarr is not None  # only a Zarr output has arrays
    params = dict(dest.zarr.get("arrayParameters") or {})
    override = (dest.zarr.get("arrayOverrides") or {}).get(name) or {}
    params.update({k: v for k, v in override.items() if v is not None})
    return params


def zarr_chunk_objects(dest: Destination, request_id: str, tile: Tile, origin: tuple[float, float]) -> list[S3Object]:
    """The chunk objects of `tile` in every array: chunk indices counted from the Zarr's top-left
    corner (`origin`, in grid units), with the chunk size of each array's parameters."""
    root = zarr_root(dest, request_id)
    out = []
    for name, _ in dest.responses:
        chunk_y, chunk_x = (array_parameters(dest, name).get("chunks") or [1, 1000, 1000])[1:]
        col0 = round((tile.bounds[0] - origin[0]) / dest.resolution) // chunk_x
        row0 = round((origin[1] - tile.bounds[3]) / dest.resolution) // chunk_y
        for row in range(row0, row0 + max(1, -(-tile.height_px // chunk_y))):
            for col in range(col0, col0 + max(1, -(-tile.width_px // chunk_x))):
                out.append(S3Object(root.bucket, _join(root.key, name, f"0.{row}.{col}")))
    return out


def zarr_metadata(dest: Destination, request_id: str, tiles: list[Tile]) -> dict[S3Object, bytes]:
    """`.zgroup`, `.zattrs` and each array's `.zarray`/`.zattrs` for a Zarr covering `tiles`."""
    root = zarr_root(dest, request_id)
    minx, maxy = min(t.bounds[0] for t in tiles), max(t.bounds[3] for t in tiles)
    width = round((max(t.bounds[2] for t in tiles) - minx) / dest.resolution)
    height = round((maxy - min(t.bounds[1] for t in tiles)) / dest.resolution)
    assert dest.zarr is not None  # only a Zarr output has its metadata
    group = dest.zarr.get("group") or {}
    objects = {
        S3Object(root.bucket, _join(root.key, ".zgroup")): _json({"zarr_format": 2}),
        S3Object(root.bucket, _join(root.key, ".zattrs")): _json(
            {"crs": tiles[0].crs, "origin": [minx, maxy], "resolution": dest.resolution,
             **(group.get("customAttributes") or {})}),
    }
    for name, _ in dest.responses:
        params = array_parameters(dest, name)
        zarray = {"zarr_format": 2, "shape": [1, height, width], "chunks": params.get("chunks") or [1, 1000, 1000],
                  "dtype": params.get("dtype", "<f4"), "fill_value": params.get("fill_value", 0),
                  "order": params.get("order", "C"), "compressor": params.get("compressor"), "filters": None}
        objects[S3Object(root.bucket, _join(root.key, name, ".zarray"))] = _json(zarray)
        attrs = {"_ARRAY_DIMENSIONS": ["time", "y", "x"], **(params.get("customAttributes") or {})}
        objects[S3Object(root.bucket, _join(root.key, name, ".zattrs"))] = _json(attrs)
    return objects


def placeholder(request_id: str, tile: Tile, obj: S3Object) -> bytes:
    """The bytes written for an output: a small JSON description, not imagery."""
    return _json({"sandbox": True, "requestId": request_id, "tile": tile.name, "tileId": tile.id,
                  "crs": tile.crs, "bounds": list(tile.bounds), "size": [tile.width_px, tile.height_px],
                  "object": obj.url})


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


def _json(data: dict) -> bytes:
    return json.dumps(data, indent=1).encode()
