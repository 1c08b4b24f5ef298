"""Where a job's outputs go: the S3 objects of each tile and output (raster path templates, Zarr
group/array metadata and chunks), computed from the create body. Pure; the writing is in `worker`."""

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


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` → ("bucket", "some/prefix")."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def delivery_url(request: dict) -> str:
    return request["output"]["delivery"]["s3"]["url"]


def responses(request: dict) -> list[dict]:
    return request["processRequest"].get("output", {}).get("responses") or [
        {"identifier": "default", "format": {"type": "image/tiff"}}
    ]


def raster_objects(request: dict, request_id: str, tile: Tile) -> list[S3Object]:
    """One object per output of `tile`, by the path template or the default layout
    `<url>/<requestId>/<tileName>/<outputId>.<format>`."""
    url = delivery_url(request)
    objects = []
    for response in responses(request):
        ext = _EXTENSIONS.get(response["format"]["type"], "bin")
        if "<" in url:
            path = (url.replace("<requestId>", request_id).replace("<tileName>", tile.name)
                    .replace("<tileId>", str(tile.id)).replace("<outputId>", response["identifier"])
                    .replace("<format>", ext))
        else:
            path = f"{url.rstrip('/')}/{request_id}/{tile.name}/{response['identifier']}.{ext}"
        objects.append(S3Object(*split_s3_url(path)))
    return objects


def zarr_root(request: dict, request_id: str) -> S3Object:
    return S3Object(*split_s3_url(delivery_url(request).replace("<requestId>", request_id)))


def zarr_chunk_objects(request: dict, request_id: str, tile: Tile, origin: tuple[float, float], resolution: float) -> list[S3Object]:
    """The chunk objects of `tile` in every array: chunk indices counted from the Zarr's top-left
    corner (`origin`, in grid units), with the chunk size of each array's parameters."""
    root = zarr_root(request, request_id)
    out = []
    for response in responses(request):
        chunk_y, chunk_x = array_chunks(request, response["identifier"])[1:]
        col0 = round((tile.bounds[0] - origin[0]) / resolution) // chunk_x
        row0 = round((origin[1] - tile.bounds[3]) / resolution) // chunk_y
        for row in range(row0, row0 + max(1, -(-tile.height_px // chunk_y))):
            for col in range(col0, col0 + max(1, -(-tile.width_px // chunk_x))):
                out.append(S3Object(root.bucket, _join(root.key, response["identifier"], f"0.{row}.{col}")))
    return out


def array_parameters(request: dict, name: str) -> dict:
    output = request["output"]
    params = dict(output.get("arrayParameters") or {})
    params.update({k: v for k, v in ((output.get("arrayOverrides") or {}).get(name) or {}).items() if v is not None})
    return params


def array_chunks(request: dict, name: str) -> list[int]:
    return list(array_parameters(request, name).get("chunks") or [1, 1000, 1000])


def zarr_metadata(request: dict, request_id: str, tiles: list[Tile], resolution: float) -> dict[S3Object, bytes]:
    """`.zgroup`, `.zattrs` and each array's `.zarray`/`.zattrs` for a Zarr covering `tiles`."""
    root = zarr_root(request, request_id)
    minx = min(t.bounds[0] for t in tiles)
    maxy = max(t.bounds[3] for t in tiles)
    width = round((max(t.bounds[2] for t in tiles) - minx) / resolution)
    height = round((maxy - min(t.bounds[1] for t in tiles)) / resolution)
    group = request["output"].get("group") or {}
    objects = {
        S3Object(root.bucket, _join(root.key, ".zgroup")): _json({"zarr_format": 2}),
        S3Object(root.bucket, _join(root.key, ".zattrs")): _json(
            {"crs": tiles[0].crs, "origin": [minx, maxy], "resolution": resolution, **(group.get("customAttributes") or {})}
        ),
    }
    for response in responses(request):
        name = response["identifier"]
        params = array_parameters(request, name)
        zarray = {
            "zarr_format": 2,
            "shape": [1, height, width],
            "chunks": array_chunks(request, name),
            "dtype": params.get("dtype", "<f4"),
            "fill_value": params.get("fill_value", 0),
            "order": params.get("order", "C"),
            "compressor": params.get("compressor"),
            "filters": None,
        }
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
