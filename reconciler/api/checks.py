"""Rules of a create body that its schema alone cannot express (grid and resolution, which
outputs go with which format, path templates, time ranges).

Pure functions over validated models, shared by manifest validation (to fail before anything is
sent) and the sandbox (to answer 400 the way the service does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from reconciler.api.models import common, v1, v2
from reconciler.geo.grids import GRIDS, describe_grids

TILE_PLACEHOLDERS = {"requestId", "tileName", "tileId", "outputId", "format"}
_PLACEHOLDER = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True)
class Finding:
    path: tuple
    message: str
    hint: str | None = None


def check_v2(body: v2.CreateBody) -> list[Finding]:
    out = _process_request(body.processRequest)
    responses = body.processRequest.output.responses
    if isinstance(body.input, v2.TilingGridInput):
        out += _grid(body.input.id, body.input.resolution, ("input",), zarr=isinstance(body.output, v2.ZarrOutput))
    if isinstance(body.output, v2.ZarrOutput):
        out += _zarr(body.output.arrayParameters, body.output.arrayOverrides, responses, ("output",))
        out += _zarr_path(body.output.delivery.s3.url, ("output", "delivery", "s3", "url"))
    else:
        out += _raster(body.output.cogOutput, responses, ("output",))
        out += _tile_path(body.output.delivery.s3.url, responses, ("output", "delivery", "s3", "url"))
        if body.output.createCollection and not body.output.cogOutput:
            out.append(Finding(("output", "createCollection"), "`createCollection` needs `cogOutput: true`"))
    return out


def check_v1(body: v1.CreateBody) -> list[Finding]:
    out = _process_request(body.processRequest)
    responses = body.processRequest.output.responses if body.processRequest.output else []
    given = [name for name in ("output", "bucketName", "zarrOutput") if getattr(body, name) is not None]
    if len(given) != 1:
        out.append(
            Finding(
                (),
                "a v1 request needs exactly one of `output`, `bucketName`, `zarrOutput`"
                + (f" (got {', '.join(given)})" if given else ""),
                "`bucketName: b` is short for `output: {defaultTilePath: s3://b}`; Zarr goes in `zarrOutput`",
            )
        )
    out += _grid(body.tilingGrid.id, body.tilingGrid.resolution, ("tilingGrid",), zarr=body.zarrOutput is not None)
    if body.zarrOutput is not None:
        out += _zarr(body.zarrOutput.arrayParameters, body.zarrOutput.arrayOverrides, responses, ("zarrOutput",))
        out += _zarr_path(body.zarrOutput.path, ("zarrOutput", "path"))
    if body.output is not None:
        o = body.output
        out += _raster(o.cogOutput, responses, ("output",))
        if o.defaultTilePath is not None:
            if not o.defaultTilePath.startswith("s3://"):
                out.append(Finding(("output", "defaultTilePath"), "expected an S3 URL such as s3://bucket/folder"))
            out += _tile_path(o.defaultTilePath, responses, ("output", "defaultTilePath"))
        if (o.createCollection or o.collectionId) and not o.cogOutput:
            out.append(Finding(("output", "cogOutput"), "`createCollection` and `collectionId` need `cogOutput: true`"))
        if o.createCollection and o.collectionId:
            out.append(Finding(("output", "collectionId"), "give only one of `createCollection` and `collectionId`"))
    if body.bucketName is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*[a-z0-9]", body.bucketName):
        out.append(Finding(("bucketName",), "expected a bucket name (no s3:// prefix, no path)"))
    return out


def _process_request(pr: common.ProcessRequest) -> list[Finding]:
    out: list[Finding] = []
    bounds = pr.input.bounds
    if bounds.bbox is not None:
        minx, miny, maxx, maxy = bounds.bbox
        if not (minx < maxx and miny < maxy):
            out.append(
                Finding(("processRequest", "input", "bounds", "bbox"), "expected [minX, minY, maxX, maxY] with min < max")
            )
    for i, source in enumerate(pr.input.data):
        tr = source.dataFilter.timeRange if source.dataFilter else None
        if tr is not None and _instant(tr.from_) > _instant(tr.to):
            path = ("processRequest", "input", "data", i, "dataFilter", "timeRange")
            out.append(Finding(path, f"`from` ({tr.from_}) is after `to` ({tr.to})"))
    if pr.output is not None:
        seen: set[str] = set()
        for i, response in enumerate(pr.output.responses):
            if response.identifier in seen:
                path = ("processRequest", "output", "responses", i, "identifier")
                out.append(Finding(path, f"duplicate output identifier {response.identifier!r}"))
            seen.add(response.identifier)
    return out


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _grid(grid_id: int, resolution: float, at: tuple, zarr: bool) -> list[Finding]:
    grid = GRIDS.get(grid_id)
    if grid is None:
        return [Finding((*at, "id"), f"unknown tiling grid {grid_id}", f"known grids: {describe_grids()}")]
    out = []
    if not grid.has_resolution(resolution):
        unit = "m" if grid.unit == "METRE" else "°"
        out.append(
            Finding(
                (*at, "resolution"),
                f"{resolution:g} is not a resolution of tiling grid {grid.id} ({grid.name})",
                f"use one of {grid.describe_resolutions()} ({unit})",
            )
        )
    if zarr and not grid.supports_zarr:
        out.append(
            Finding((*at, "id"), f"Zarr output needs a WGS84 or LAEA grid; grid {grid.id} ({grid.name}) is UTM", "use grid 3, 6 or 7")
        )
    return out


def _zarr(
    params: common.ArrayParameters | None,
    overrides: dict[str, common.ArrayOverride] | None,
    responses: list[common.OutputResponse],
    at: tuple,
) -> list[Finding]:
    out = []
    identifiers = [r.identifier for r in responses]
    for i, response in enumerate(responses):
        if response.format.type != "zarr/array":
            path = ("processRequest", "output", "responses", i, "format", "type")
            out.append(Finding(path, "Zarr output needs every response in format zarr/array"))
    for name in overrides or {}:
        if name not in identifiers:
            out.append(Finding((*at, "arrayOverrides", name), f"no output response is named {name!r}"))
    if params is None:
        for name in identifiers:
            o = (overrides or {}).get(name)
            if o is None or o.dtype is None or o.chunks is None or o.fill_value is None:
                out.append(
                    Finding(
                        (*at, "arrayParameters"),
                        f"array {name!r} has no dtype/chunks/fill_value",
                        "give `arrayParameters`, or all three in `arrayOverrides` for every array",
                    )
                )
                break
    return out


def _raster(cog: bool | None, responses: list[common.OutputResponse], at: tuple) -> list[Finding]:
    out = []
    for i, response in enumerate(responses):
        path = ("processRequest", "output", "responses", i, "format", "type")
        if response.format.type == "zarr/array":
            out.append(Finding(path, "zarr/array responses need Zarr output", "use a Zarr output or image/tiff"))
        elif cog and response.format.type != "image/tiff":
            out.append(Finding(path, "`cogOutput: true` needs every response in format image/tiff"))
    return out


def _tile_path(url: str, responses: list[common.OutputResponse], at: tuple) -> list[Finding]:
    names = _PLACEHOLDER.findall(url)
    if not names:
        return []
    unknown = sorted(set(names) - TILE_PLACEHOLDERS)
    if unknown:
        allowed = ", ".join(f"<{p}>" for p in sorted(TILE_PLACEHOLDERS))
        return [Finding(at, f"unknown placeholder <{unknown[0]}>", f"templates may use {allowed}")]
    out = []
    if "tileName" not in names and "tileId" not in names:
        out.append(Finding(at, "a path template must contain <tileName> or <tileId>", "so every tile gets its own files"))
    if len(responses) > 1 and "outputId" not in names:
        out.append(Finding(at, "with several outputs a path template must contain <outputId>"))
    return out


def _zarr_path(url: str, at: tuple) -> list[Finding]:
    unknown = sorted(set(_PLACEHOLDER.findall(url)) - {"requestId"})
    if unknown:
        return [Finding(at, f"unknown placeholder <{unknown[0]}>", "a Zarr path may only use <requestId>")]
    return []
