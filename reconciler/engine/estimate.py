"""The offline size of a manifest (README, "How plan decides": cost): the tiles of its area on its grid priced by
the PU model of `reconciler.geo`, so a pull request shows the cost before anything is created,
and the job card a reviewer reads beside it (grid, area, time range, collections, tiles,
delivery). Both come from one tiling per body. GeoPackage inputs have no offline tiles (their
features are in the bucket): no estimate, and the card says why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from reconciler.engine.actions import JobCard
from reconciler.engine.payload import Overrides, with_overrides
from reconciler.manifests.manifest import Manifest
from reconciler.redaction import SENSITIVE, KeyPath

if TYPE_CHECKING:
    from pyproj import Geod

NO_OFFLINE_TILES = "GeoPackage input: no offline tiles"


@dataclass(frozen=True)
class Sizing:
    """What the offline tiling of one body gives: its PU, tile count and area."""

    pu: float | None
    tiles: int | None
    area_km2: float | None
    note: str = ""  # why a figure is missing


class Estimator:
    """Estimates and job cards by body, each computed once per run."""

    def __init__(self) -> None:
        self._sizes: dict[str, Sizing] = {}
        self._cards: dict[tuple[str, frozenset[KeyPath], str], JobCard] = {}

    def __call__(self, manifest: Manifest) -> float | None:
        return self._sized(manifest).pu

    def card(self, manifest: Manifest, overrides: Overrides = ()) -> JobCard:
        """The card of what a create of `manifest` sends: its body with the action's `overrides`
        (a re-run's delivery URL, say)."""
        key = (manifest.desired[0], manifest.body_sensitive, repr(overrides))  # masked alike, sent alike
        if key not in self._cards:
            body = with_overrides(manifest.body, overrides) if overrides else manifest.body
            self._cards[key] = job_card(body, manifest.body_sensitive, self._sized(manifest))
        return self._cards[key]

    def _sized(self, manifest: Manifest) -> Sizing:
        key, _ = manifest.desired  # the request digest: equal requests, equal sizes
        if key not in self._sizes:
            self._sizes[key] = size(manifest.body)
        return self._sizes[key]


def offline_estimate(body: dict[str, Any]) -> float | None:
    return size(body).pu


def size(body: dict[str, Any]) -> Sizing:
    """The tiles, PU and area of a create body, offline; a figure that cannot be had is None.
    (geo — numpy, pyproj, shapely — is imported when a create is sized, not by every plan.)"""
    try:
        return _sized(body)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        # Only a body no model checked gets here: one the load cache kept (its entry is bound to the
        # file's bytes, not re-validated) and someone edited. The plan shows no figure, not a crash.
        return Sizing(None, None, None, "the request cannot be sized offline")


def _sized(body: dict[str, Any]) -> Sizing:
    from reconciler.geo.cost import estimate_pu
    from reconciler.geo.tiles import GeoError, body_tiles

    try:
        tiles = body_tiles(body)
    except GeoError as e:
        return Sizing(None, None, _area_km2(body), f"no offline tiles: {e.message}")
    if tiles is None:
        return Sizing(None, None, _area_km2(body), NO_OFFLINE_TILES if _is_geopackage(body) else "no tiling grid")
    return Sizing(round(estimate_pu(body["processRequest"], tiles), 1), len(tiles), _area_km2(body))


def _area_km2(body: dict[str, Any]) -> float | None:
    from reconciler.geo.tiles import GeoError, aoi_lonlat

    try:
        area = aoi_lonlat(_get(body, ("processRequest", "input", "bounds")))
    except GeoError:
        return None
    square_metres, _ = _ellipsoid().geometry_area_perimeter(area)
    return round(abs(square_metres) / 1e6, 1)


@lru_cache(maxsize=1)
def _ellipsoid() -> Geod:
    from pyproj import Geod

    return Geod(ellps="WGS84")


def _is_geopackage(body: dict[str, Any]) -> bool:
    return _text(_get(body, ("input", "type"))) == "geopackage"


# ---------------------------------------------------------------- the job card

def job_card(body: dict[str, Any], sensitive: frozenset[KeyPath], sizing: Sizing) -> JobCard:
    """The card of a create body (v1 or v2) whose `sensitive` paths are shown as "(sensitive)"."""
    def shown(path: KeyPath) -> Any:
        return SENSITIVE if _touches(path, sensitive) else _get(body, path)

    grid = body.get("tilingGrid") if "tilingGrid" in body else body.get("input")
    grid = grid if isinstance(grid, dict) and grid.get("type") != "geopackage" else {}
    where = ("tilingGrid",) if "tilingGrid" in body else ("input",)
    sources = _get(body, ("processRequest", "input", "data"))
    sources = sources if isinstance(sources, list) else []
    first = next((i for i, s in enumerate(sources) if isinstance(_get(s, ("dataFilter", "timeRange")), dict)), None)
    span: KeyPath = ("processRequest", "input", "data", first, "dataFilter", "timeRange") if first is not None else ()
    types = [shown(("processRequest", "input", "data", i, "type")) for i in range(len(sources))]
    bounds_path = ("processRequest", "input", "bounds")
    return JobCard(
        grid_id=_number(shown((*where, "id")), int) if grid else None,
        resolution=_number(shown((*where, "resolution")), float) if grid else None,
        area_km2=None if _touches(bounds_path, sensitive) else sizing.area_km2,
        time_from=_text(shown((*span, "from"))) if first is not None else None,
        time_to=_text(shown((*span, "to"))) if first is not None else None,
        collections=tuple(dict.fromkeys(t for t in (_text(t) for t in types) if t)),
        tiles=sizing.tiles,
        output_type=_output_type(body),
        delivery=_delivery(body, shown),
        note=sizing.note,
        bounds=None if _touches(bounds_path, sensitive) else _get(body, bounds_path),
    )


def _output_type(body: dict[str, Any]) -> str | None:
    if "tilingGrid" in body:  # v1: GeoTIFF tiles unless it asks for Zarr
        return "zarr" if body.get("zarrOutput") else "raster"
    return _text(_get(body, ("output", "type")))


def _delivery(body: dict[str, Any], shown: Callable[[KeyPath], Any]) -> str | None:
    """Where results go: v2 `output.delivery.s3.url`; v1 `output.defaultTilePath`,
    `zarrOutput.path` or `s3://<bucketName>/`; up to the first <placeholder>."""
    for path in (("output", "delivery", "s3", "url"), ("output", "defaultTilePath"), ("zarrOutput", "path")):
        if (value := _text(shown(path))) is not None:
            return value.split("<", 1)[0]
    bucket = _text(shown(("bucketName",)))
    return None if bucket is None else SENSITIVE if bucket == SENSITIVE else f"s3://{bucket}/"


def _touches(path: KeyPath, sensitive: frozenset[KeyPath]) -> bool:
    """Whether a sensitive value sits at `path`, above it or inside it."""
    return any(s[: len(path)] == path or path[: len(s)] == s for s in sensitive)


def _get(value: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)
