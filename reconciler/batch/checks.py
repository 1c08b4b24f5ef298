"""Rules of a create body that its schema alone cannot express (grid and resolution, which outputs
go with which format and with the evalscript's `setup()`, path templates); the rules a single model
can hold (a time range in order, a bbox with min < max) are validators of that model instead.

Pure functions, shared by manifest validation (to fail before anything is sent) and the sandbox (to
answer 400 the way the service does). Each rule reads only the parts of the body it needs, so
`check_parts` can run every rule whose parts are valid on their own in a body that is not: one
error never hides another of the same manifest.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.batch.models import common, v1, v2
from reconciler.geo.evalscript import OutputInfo, parse_evalscript
from reconciler.geo.grids import GRIDS, describe_grids
from reconciler.redaction import KeyPath

TILE_PLACEHOLDERS = {"requestId", "tileName", "tileId", "outputId", "format"}
_PLACEHOLDER = re.compile(r"<([^<>]*)>")
_RESPONSES = ("processRequest", "output", "responses")
USERDATA = "userdata"  # the identifier of the JSON metadata an evalscript may write
# Sample types each 8/16-bit image format can hold (image/tiff holds all of them).
_SAMPLE_TYPES = {"image/jpeg": {"AUTO", "UINT8"}, "image/png": {"AUTO", "UINT8", "UINT16"}}


@dataclass(frozen=True)
class Finding:
    path: KeyPath
    message: str
    hint: str | None = None


def check_v2(body: v2.CreateBody, evalscript: str | None = None) -> list[Finding]:
    """`evalscript`: the script when the body does not carry it (a manifest's evalscriptFile)."""
    process = body.processRequest
    return _v2(process.output.responses, evalscript or process.evalscript, body.input, body.output)


def check_v1(body: v1.CreateBody, evalscript: str | None = None) -> list[Finding]:
    process = body.processRequest
    responses = process.output.responses if process.output else []
    given = [name for name in ("output", "bucketName", "zarrOutput") if getattr(body, name) is not None]
    return _v1(responses, evalscript or process.evalscript, given, body.tilingGrid, body.output, body.zarrOutput,
               body.bucketName)


def check_parts(api: str, request: Any, evalscript: str | None = None,
                context: Mapping[str, Any] | None = None) -> list[Finding]:
    """The rules of a create body that failed validation, each run when the parts it reads are
    valid on their own, unknown fields aside (the validation errors say what is wrong with the rest)."""
    if not isinstance(request, dict):
        return []
    process = request.get("processRequest")
    process = process if isinstance(process, dict) else {}
    script = evalscript or (process.get("evalscript") if isinstance(process.get("evalscript"), str) else None)
    output = _part(_PROCESS_OUTPUT, process.get("output"), context)
    responses = output.responses if output is not None else None
    if api == "v1":
        if "output" not in process:
            responses = []  # one default output
        given = [name for name in ("output", "bucketName", "zarrOutput") if request.get(name) is not None]
        bucket = request.get("bucketName")
        return _v1(responses, script, given, _part(_V1_GRID, request.get("tilingGrid"), context),
                   _part(_V1_OUTPUT, request.get("output"), context), _part(_V1_ZARR, request.get("zarrOutput"), context),
                   bucket if isinstance(bucket, str) else None)
    return _v2(responses, script, _part(_V2_INPUT, request.get("input"), context),
               _part(_V2_OUTPUT, request.get("output"), context))


_PROCESS_OUTPUT = TypeAdapter(common.ProcessOutput)
_V1_GRID, _V1_OUTPUT, _V1_ZARR = TypeAdapter(v1.TilingGridSettings), TypeAdapter(v1.Output), TypeAdapter(v1.ZarrOutput)
_V2_INPUT, _V2_OUTPUT = TypeAdapter(v2.Input), TypeAdapter(v2.Output)


_T = TypeVar("_T")


def _part(adapter: TypeAdapter[_T], value: Any, context: Mapping[str, Any] | None) -> _T | None:
    if value is None:
        return None
    try:
        return adapter.validate_python(value, context=context, extra="ignore")  # reported already; hide nothing
    except ValidationError:
        return None


def _v2(responses: list[common.OutputResponse] | None, evalscript: str | None, grid: BaseModel | None,
        output: BaseModel | None) -> list[Finding]:
    out = _responses(responses, evalscript)
    if isinstance(grid, v2.TilingGridInput):
        out += _grid(grid.id, grid.resolution, ("input",), zarr=isinstance(output, v2.ZarrOutput))
    if isinstance(output, v2.ZarrOutput):
        out += _zarr(output.arrayParameters, output.arrayOverrides, responses, ("output",))
        out += _zarr_path(output.delivery.s3.url, ("output", "delivery", "s3", "url"))
    elif isinstance(output, v2.RasterOutput):
        out += _raster(output.cogOutput, responses)
        out += _tile_path(output.delivery.s3.url, responses, ("output", "delivery", "s3", "url"))
        if output.createCollection and not output.cogOutput:
            out.append(Finding(("output", "createCollection"), "`createCollection` needs `cogOutput: true`"))
    return out


def _v1(responses: list[common.OutputResponse] | None, evalscript: str | None, given: list[str],
        grid: v1.TilingGridSettings | None, output: v1.Output | None, zarr: v1.ZarrOutput | None,
        bucket: str | None) -> list[Finding]:
    out = _responses(responses, evalscript)
    if len(given) != 1:
        out.append(
            Finding(
                (),
                "a v1 request needs exactly one of `output`, `bucketName`, `zarrOutput`"
                + (f" (got {', '.join(given)})" if given else ""),
                "`bucketName: b` is short for `output: {defaultTilePath: s3://b}`; Zarr goes in `zarrOutput`",
            )
        )
    if grid is not None:
        out += _grid(grid.id, grid.resolution, ("tilingGrid",), zarr="zarrOutput" in given)
    if zarr is not None:
        out += _zarr(zarr.arrayParameters, zarr.arrayOverrides, responses, ("zarrOutput",))
        out += _zarr_path(zarr.path, ("zarrOutput", "path"))
    if output is not None:
        out += _v1_output(output, responses)
    if bucket is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*[a-z0-9]", bucket):
        out.append(Finding(("bucketName",), "expected a bucket name (no s3:// prefix, no path)"))
    return out


def _v1_output(o: v1.Output, responses: list[common.OutputResponse] | None) -> list[Finding]:
    out = _raster(o.cogOutput, responses)
    if o.defaultTilePath is not None:
        if not o.defaultTilePath.startswith("s3://"):
            out.append(Finding(("output", "defaultTilePath"), "expected an S3 URL such as s3://bucket/folder"))
        out += _tile_path(o.defaultTilePath, responses, ("output", "defaultTilePath"))
    if (o.createCollection or o.collectionId) and not o.cogOutput:
        out.append(Finding(("output", "cogOutput"), "`createCollection` and `collectionId` need `cogOutput: true`"))
    if o.createCollection and o.collectionId:
        out.append(Finding(("output", "collectionId"), "give only one of `createCollection` and `collectionId`"))
    return out


def _responses(responses: list[common.OutputResponse] | None, evalscript: str | None) -> list[Finding]:
    """Identifiers unique, and each one an output that `setup()` declares, in a format that holds it."""
    if responses is None:
        return []
    out: list[Finding] = []
    seen: set[str] = set()
    for i, response in enumerate(responses):
        if response.identifier in seen:
            out.append(Finding((*_RESPONSES, i, "identifier"), f"duplicate output identifier {response.identifier!r}"))
        seen.add(response.identifier)
    declared = _declared_outputs(evalscript) if evalscript is not None else None
    if declared is not None:
        for i, response in enumerate(responses):
            out += _against_setup(i, response, declared)
    return out


@functools.lru_cache(maxsize=64)  # pure; thousands of manifests share a handful of evalscripts
def _declared_outputs(evalscript: str) -> dict[str, OutputInfo] | None:
    """The outputs `setup()` declares, by id; None when it cannot be read."""
    info = parse_evalscript(evalscript)
    return {o.id: o for o in info.outputs} if info.parsed else None


def _against_setup(i: int, response: common.OutputResponse, declared: dict[str, OutputInfo]) -> list[Finding]:
    at, kind = (*_RESPONSES, i), response.format.type
    if response.identifier == USERDATA:
        if kind != "application/json":
            return [Finding((*at, "format", "type"), "`userdata` is the evalscript's JSON metadata: its format is application/json")]
        return []
    output = declared.get(response.identifier)
    if output is None:
        close = difflib.get_close_matches(response.identifier, sorted(declared), n=1, cutoff=0.6)
        listed = ", ".join(sorted(declared))
        hint = f"did you mean `{close[0]}`?" if close else f"setup() declares {listed} (and `userdata` is the JSON metadata)"
        return [Finding((*at, "identifier"), f"the evalscript's setup() declares no output {response.identifier!r}", hint)]
    if kind == "application/json":
        return [Finding((*at, "format", "type"), f"output {output.id!r} is a raster: application/json is only for `userdata`",
                        "use image/tiff")]
    if output.sample_type not in _SAMPLE_TYPES.get(kind, {output.sample_type}):
        return [Finding((*at, "format", "type"), f"{kind} cannot hold the {output.sample_type} values of output {output.id!r}",
                        "use image/tiff, or a sampleType the format holds (" + ", ".join(sorted(_SAMPLE_TYPES[kind])) + ")")]
    return []


def _grid(grid_id: int, resolution: float, at: KeyPath, zarr: bool) -> list[Finding]:
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
    responses: list[common.OutputResponse] | None,
    at: KeyPath,
) -> list[Finding]:
    if responses is None:
        return []
    out = []
    identifiers = [r.identifier for r in responses]
    for i, response in enumerate(responses):
        if response.format.type != "zarr/array":
            out.append(Finding((*_RESPONSES, i, "format", "type"), "Zarr output needs every response in format zarr/array"))
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


def _raster(cog: bool | None, responses: list[common.OutputResponse] | None) -> list[Finding]:
    out = []
    for i, response in enumerate(responses or ()):
        path = (*_RESPONSES, i, "format", "type")
        if response.format.type == "zarr/array":
            out.append(Finding(path, "zarr/array responses need Zarr output", "use a Zarr output or image/tiff"))
        elif cog and response.format.type != "image/tiff":
            out.append(Finding(path, "`cogOutput: true` needs every response in format image/tiff"))
    return out


def _tile_path(url: str, responses: list[common.OutputResponse] | None, at: KeyPath) -> list[Finding]:
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
    if responses is not None and len(responses) > 1 and "outputId" not in names:
        out.append(Finding(at, "with several outputs a path template must contain <outputId>"))
    return out


def _zarr_path(url: str, at: KeyPath) -> list[Finding]:
    unknown = sorted(set(_PLACEHOLDER.findall(url)) - {"requestId"})
    if unknown:
        return [Finding(at, f"unknown placeholder <{unknown[0]}>", "a Zarr path may only use <requestId>")]
    return []
