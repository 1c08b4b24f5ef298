"""The tiles of an area of interest on a Batch API tiling grid (pure: no network, disk or clock).

Step: planning (the offline cost estimate) and the sandbox's analysis. A batch job is processed
and charged per tile, and only tiles that intersect `processRequest.input.bounds` count
(docs/api-facts.md), so both need the same answer to "which tiles of grid G does this area touch".

Reading the area
- `bounds.bbox` and/or `bounds.geometry` (GeoJSON Polygon or MultiPolygon) in `bounds.properties.crs`:
  CRS84 by default, or `http://www.opengis.net/def/crs/EPSG/0/<code>`, `EPSG:<code>`. Coordinates are
  always x/y (easting or longitude first), as Sentinel Hub reads them. Both given: their intersection.
- The area is carried to lon/lat to find the zones, hemispheres or coverage it meets. Each part is
  cut in the area's own CRS (so an area given in the grid's CRS, say a tile's exact bounds, keeps
  its exact edges) and projected into the grid CRS densified: an edge straight in one CRS is a
  curve in another, and the curve decides the tiles along it.
- A tile counts when its intersection with the area has positive area; touching is not enough.

The grids (ids as in grids.GRIDS), their tile names and numeric ids (unique within a grid)
- UTM, grids 0 (20040 m), 1 (10000 m), 2 (100080 m): every UTM zone (6° of longitude; north
  EPSG:326zz, south EPSG:327zz; latitudes 80°S..84°N; no Norway/Svalbard exceptions) has square
  cells aligned to multiples of the tile size from its CRS origin. An area spanning zones or the
  equator gets tiles in each zone/hemisphere, each in that zone's CRS, as the service delivers them.
  Name `32N_25_230`: zone 32, north, column 25 (easting 25×size), row 230 (northing 230×size).
  id = (zone, plus 100 in the south) × 10^7 + column × 10^4 + row: 32N_25_230 is 320250230,
  32S_25_230 is 1320250230.
- WGS84, grid 3: 1° cells on integer degrees in EPSG:4326. Name `N41E008` (SRTM style: lower-left
  corner at 41°N 8°E). id = (lat + 90) × 1000 + (lon + 180), e.g. 131188.
- LAEA, grids 6 (100 km) and 7 (20 km), in EPSG:3035 within its area of use (E, N ≥ 0), cells aligned to
  multiples of the size, named like the EEA reference grid: the size, then the lower-left corner
  divided by 10^n, n the number of zeros of the size in metres: `100kmE42N20` is the cell at
  E 4,200,000 m N 2,000,000 m; `20kmE428N212` the cell at E 4,280,000 m N 2,120,000 m.
  id = column × 1000 + row (corner / size), e.g. 42020.
Pixels: width = ceil(size / resolution) + 2 × bufferX (height likewise with bufferY). The ceiling
matters only for the live grid 1's 1.4999 m, where it covers the whole 10 km.
Outline (`Tile.wgs84`): the cell's edges with EDGE_POINTS points each, counter-clockwise, closed,
rounded to 1e-7° (about 1 cm).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyproj
import shapely
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from reconciler.errors import ReconcilerError
from reconciler.geo.grids import GRIDS, Grid, describe_grids

WGS84 = 4326
LAEA_EUROPE = 3035
UTM_SOUTH, UTM_NORTH = -80.0, 84.0
DEGREE_STEP = 0.01  # densify lon/lat edges to ~1 km: the bend of a parallel in UTM stays < 2 cm
METRE_STEP = 1000.0  # the same for edges given in a projected CRS
EDGE_POINTS = 4  # points per tile edge in `Tile.wgs84`: enough for a map, cheap for 50k tiles
WORLD = (-180.0, -90.0, 180.0, 90.0)
# Where LAEA cells exist: EPSG:3035's area of use reaches E < 0 only in open Atlantic south-west of
# the Azores; leaving that out keeps every column and row in 0..999 (E ≤ 7.9e6 m), so ids stay simple.
LAEA_QUADRANT = (0.0, 0.0, 1e7, 1e7)
TOUCH = 1e-12  # intersections smaller than this share of a cell are rounding, not area

_CRS84 = re.compile(
    r"^(https?://www\.opengis\.net/def/crs/OGC/1\.3/CRS84|(OGC:)?CRS84|urn:ogc:def:crs:OGC:1\.3:CRS84)$", re.I
)
_EPSG = re.compile(r"^(?:https?://www\.opengis\.net/def/crs/EPSG/0/|EPSG:|urn:ogc:def:crs:EPSG::)(\d+)$", re.I)


class GeoError(ReconcilerError, ValueError):
    """Bounds, grid or resolution that cannot be tiled; the message says which and why."""


@dataclass(frozen=True)
class Tile:
    id: int
    name: str
    crs: str  # e.g. "EPSG:32632", "EPSG:4326", "EPSG:3035"
    bounds: tuple[float, float, float, float]  # minx, miny, maxx, maxy in crs units, without buffer
    width_px: int  # tile size / resolution, plus 2*buffer
    height_px: int
    wgs84: tuple[tuple[float, float], ...]  # the tile outline as a closed lon/lat ring, for GeoJSON


def tiles_for_bounds(
    bounds: dict, grid_id: int, resolution: float | None, buffer_x: int = 0, buffer_y: int = 0
) -> list[Tile]:
    """The tiles of grid `grid_id` whose intersection with `bounds` has positive area, sorted by id."""
    grid = _grid(grid_id, resolution)
    assert resolution is not None  # _grid refuses a missing one
    if buffer_x < 0 or buffer_y < 0:
        raise GeoError(f"buffers must not be negative (got bufferX={buffer_x}, bufferY={buffer_y})")
    pixels = _pixels(grid.tile_size, resolution)
    area = _read_area(bounds)
    if grid.projection == "UTM":
        cells = _utm_cells(area, grid.tile_size)
    elif grid.projection == "WGS84":
        cells = [(WGS84, *_cells_of(_part_in(area, WORLD, WGS84), grid.tile_size))]
    else:
        use = _crs(LAEA_EUROPE).area_of_use
        assert use is not None  # EPSG:3035 is defined for Europe
        part = _part_in(area, use.bounds, LAEA_EUROPE)
        cells = [(LAEA_EUROPE, *_cells_of(_clip(part, LAEA_QUADRANT), grid.tile_size))]
    tiles = [
        tile
        for epsg, cols, rows in cells
        for tile in _tiles(grid, epsg, cols, rows, pixels[0] + 2 * buffer_x, pixels[1] + 2 * buffer_y)
    ]
    return sorted(tiles, key=lambda t: t.id)


def body_tiles(body: Mapping[str, Any]) -> list[Tile] | None:
    """The tiles of a create body's area on its grid (v1 `tilingGrid`, v2 `input`): None for a
    GeoPackage input or a body that names no grid; GeoError when it cannot be tiled."""
    grid = body.get("tilingGrid") or body.get("input") or {}
    if not isinstance(grid, dict) or grid.get("type") == "geopackage" or "id" not in grid:
        return None
    return tiles_for_bounds(body["processRequest"]["input"]["bounds"], grid["id"], grid.get("resolution"),
                            grid.get("bufferX") or 0, grid.get("bufferY") or 0)


def aoi_lonlat(bounds: dict) -> BaseGeometry:
    """The area of `bounds` (bbox ∩ geometry) as a polygonal shapely geometry in lon/lat."""
    return _read_area(bounds).lonlat


@dataclass(frozen=True)
class _Area:
    """The area of interest as given (in EPSG:`epsg`) and carried to lon/lat."""

    epsg: int
    source: BaseGeometry
    lonlat: BaseGeometry
    step: float  # densification step in the source CRS's units


def _read_area(bounds: dict) -> _Area:
    if not isinstance(bounds, dict):
        raise GeoError("bounds must be an object with `bbox` and/or `geometry`")
    epsg = _epsg_of(bounds.get("properties"))
    source = _polygonal(_area_in_source(bounds))
    if epsg == WGS84:
        return _Area(epsg, source, source, DEGREE_STEP)
    step = DEGREE_STEP if _crs(epsg).is_geographic else METRE_STEP
    return _Area(epsg, source, _project(source.segmentize(step), epsg, WGS84), step)


# --- reading bounds ----------------------------------------------------------------------------


def _grid(grid_id: int, resolution: float | None) -> Grid:
    grid = GRIDS.get(grid_id) if isinstance(grid_id, int) and not isinstance(grid_id, bool) else None
    if grid is None:
        raise GeoError(f"unknown tiling grid {grid_id!r}", f"known grids: {describe_grids()}")
    if not isinstance(resolution, (int, float)) or not grid.has_resolution(resolution):
        raise GeoError(
            f"resolution {resolution!r} is not offered by grid {grid.id} ({grid.name})",
            f"choose one of: {grid.describe_resolutions()}",
        )
    return grid


def _pixels(size: float, resolution: float) -> tuple[int, int]:
    # A tolerance so that 1 / 0.0001 (10000.000000000002 in floating point) is 10000, not 10001.
    count = math.ceil(size / resolution - 1e-6)
    return count, count


def _epsg_of(properties: object) -> int:
    if not isinstance(properties, (dict, type(None))):
        raise GeoError("bounds.properties must be an object")
    name = (properties or {}).get("crs")
    if name is None or (isinstance(name, str) and _CRS84.match(name.strip())):
        return WGS84  # CRS84 is EPSG:4326 with lon/lat order, which always_xy gives us anyway
    match = _EPSG.match(name.strip()) if isinstance(name, str) else None
    if match is None:
        raise GeoError(
            f"unknown CRS {name!r}",
            "use http://www.opengis.net/def/crs/OGC/1.3/CRS84 or http://www.opengis.net/def/crs/EPSG/0/<code>",
        )
    epsg = int(match.group(1))
    _crs(epsg)
    return epsg


def _area_in_source(bounds: dict) -> BaseGeometry:
    bbox, geometry = bounds.get("bbox"), bounds.get("geometry")
    if bbox is None and geometry is None:
        raise GeoError("bounds need a `bbox` or a `geometry` (or both)")
    area = _bbox_polygon(bbox) if bbox is not None else None
    if geometry is not None:
        shaped = _geometry_polygon(geometry)
        area = shaped if area is None else area.intersection(shaped)
    return area


def _bbox_polygon(bbox: object) -> Polygon:
    numbers = bbox if isinstance(bbox, (list, tuple)) else ()
    if len(numbers) != 4 or not all(_finite(v) for v in numbers):
        raise GeoError(f"bbox must be four finite numbers [minx, miny, maxx, maxy], got {bbox!r}")
    minx, miny, maxx, maxy = (float(v) for v in numbers)
    if minx >= maxx or miny >= maxy:
        raise GeoError(f"bbox {list(numbers)} is empty: min must be below max on both axes")
    return box(minx, miny, maxx, maxy)


def _geometry_polygon(geometry: object) -> BaseGeometry:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeoError("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        shaped = shape(geometry)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise GeoError(f"geometry is not valid GeoJSON: {exc}") from None
    if not np.isfinite(shapely.get_coordinates(shaped)).all():
        raise GeoError("geometry has coordinates that are not finite numbers")
    # A self-touching ring drawn by hand is common and harmless; repair rather than refuse it.
    return shaped if shaped.is_valid else _polygonal(shapely.make_valid(shaped))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- geometry helpers --------------------------------------------------------------------------


@cache
def _crs(epsg: int) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_epsg(epsg)
    except CRSError:
        raise GeoError(f"unknown CRS EPSG:{epsg}") from None


@lru_cache(maxsize=256)
def _transformer(source: int, target: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_crs(source), _crs(target), always_xy=True)


def _project(geometry: BaseGeometry, source: int, target: int) -> BaseGeometry:
    transformer = _transformer(source, target)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    moved = shapely.transform(geometry, move)
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        raise GeoError(f"the area cannot be transformed from EPSG:{source} to EPSG:{target}")
    return moved if moved.is_valid else _polygonal(shapely.make_valid(moved))


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Only the polygons of a geometry: intersections may add lines and points of zero area."""
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, (Polygon, MultiPolygon))]
    polygons = [p for part in parts for p in getattr(part, "geoms", [part]) if not p.is_empty]
    return MultiPolygon(polygons) if len(polygons) != 1 else polygons[0]


def _clip(aoi: BaseGeometry, limits: tuple[float, float, float, float]) -> BaseGeometry:
    return _polygonal(aoi.intersection(box(*limits)))


# --- cells per grid family ---------------------------------------------------------------------


def _utm_cells(area: _Area, size: float) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Cells of every UTM zone and hemisphere the area covers, each found in that zone's CRS."""
    if area.lonlat.is_empty:
        return []
    minlon, _, maxlon, _ = area.lonlat.bounds
    first = max(1, int((minlon + 180.0) // 6) + 1)
    last = min(60, int((maxlon + 180.0) // 6) + 1)
    found = []
    for zone in range(first, last + 1):
        west = -180.0 + 6.0 * (zone - 1)
        for epsg, south, north in ((32600 + zone, 0.0, UTM_NORTH), (32700 + zone, UTM_SOUTH, 0.0)):
            part = _part_in(area, (west, south, west + 6.0, north), epsg)
            if part.area > 0:
                found.append((epsg, *_cells_of(part, size)))
    return found


def _part_in(area: _Area, window: tuple[float, float, float, float], target: int) -> BaseGeometry:
    """The part of the area inside a lon/lat window, in EPSG:`target`.

    The cut is made in the CRS the area was given in, so an area given in the grid's own CRS
    (say a tile's exact bounds) keeps its exact edges instead of picking up centimetre-wide
    slivers from a round trip through lon/lat.
    """
    inside = _clip(area.lonlat, window)
    if inside.area <= 0:
        return Polygon()
    if area.epsg == WGS84:
        part = inside
    else:
        minx, miny, maxx, maxy = area.lonlat.bounds
        margin = 10 * DEGREE_STEP  # keeps the window's other edges clear of the area
        near = _clip(box(*window), (minx - margin, max(miny - margin, -90.0), maxx + margin, min(maxy + margin, 90.0)))
        cut = _project(near.segmentize(DEGREE_STEP), WGS84, area.epsg)
        part = _polygonal(area.source.intersection(cut))
    if area.epsg == target or part.is_empty:
        return part
    return _project(part.segmentize(area.step), area.epsg, target)


def _cells_of(area: BaseGeometry, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Column and row indices of the cells (multiples of `size`) that share positive area with `area`."""
    if area.is_empty or area.area <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    minx, miny, maxx, maxy = area.bounds
    col_grid, row_grid = np.meshgrid(
        np.arange(math.floor(minx / size), math.floor(maxx / size) + 1, dtype=np.int64),
        np.arange(math.floor(miny / size), math.floor(maxy / size) + 1, dtype=np.int64),
    )
    cols, rows = col_grid.ravel(), row_grid.ravel()
    cells = shapely.box(cols * size, rows * size, (cols + 1) * size, (rows + 1) * size)
    shapely.prepare(area)
    # Cells well inside need no overlay; only those the boundary crosses get their area measured,
    # and with a rectangle clip, ten times faster than a general intersection.
    inside = shapely.contains_properly(area, cells)
    crossed = np.flatnonzero(~inside & shapely.intersects(area, cells))
    keep = inside.copy()
    for index in crossed.tolist():
        x, y = cols[index] * size, rows[index] * size
        keep[index] = shapely.clip_by_rect(area, x, y, x + size, y + size).area > TOUCH * size * size
    return cols[keep], rows[keep]


# --- naming and building tiles -----------------------------------------------------------------


def _labels(grid: Grid, epsg: int, col: int, row: int) -> tuple[int, str]:
    if grid.projection == "UTM":
        zone, south = epsg % 100, epsg // 100 == 327
        return (zone + 100 * south) * 10**7 + col * 10**4 + row, f"{zone:02d}{'S' if south else 'N'}_{col}_{row}"
    if grid.projection == "WGS84":
        lat, lon = row, col
        name = f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"
        return (lat + 90) * 1000 + (lon + 180), name
    size = int(grid.tile_size)
    scale = 10 ** (len(str(size)) - len(str(size).rstrip("0")))
    return col * 1000 + row, f"{size // 1000}kmE{col * size // scale}N{row * size // scale}"


def _tiles(grid: Grid, epsg: int, cols: np.ndarray, rows: np.ndarray, width: int, height: int) -> list[Tile]:
    size, crs = grid.tile_size, f"EPSG:{epsg}"
    rings = _rings(epsg, cols * size, rows * size, size)
    tiles = []
    for col, row, ring in zip(cols.tolist(), rows.tolist(), rings, strict=True):
        tile_id, name = _labels(grid, epsg, col, row)
        bounds = (col * size, row * size, (col + 1) * size, (row + 1) * size)
        tiles.append(Tile(tile_id, name, crs, bounds, width, height, ring))
    return tiles


def _rings(epsg: int, xs: np.ndarray, ys: np.ndarray, size: float) -> list[tuple[tuple[float, float], ...]]:
    """Closed, counter-clockwise lon/lat outlines of the cells with lower-left corners (xs, ys)."""
    points = 1 if epsg == WGS84 else EDGE_POINTS
    t = np.arange(points) / points
    zeros, ones = np.zeros(points), np.ones(points)
    # Unit-square outline: bottom, right, top, left edges, then back to the start.
    unit_x = np.concatenate([t, ones, 1 - t, zeros, [0.0]])
    unit_y = np.concatenate([zeros, t, ones, 1 - t, [0.0]])
    x = (xs[:, None] + unit_x[None, :] * size).ravel()
    y = (ys[:, None] + unit_y[None, :] * size).ravel()
    if epsg != WGS84:
        x, y = _transformer(epsg, WGS84).transform(x, y)
    # Rounded to ~1 cm so rings are short in GeoJSON and do not wobble between PROJ versions.
    vertices = list(zip(np.round(x, 7).tolist(), np.round(y, 7).tolist(), strict=True))
    length = len(unit_x)
    return [tuple(vertices[start : start + length]) for start in range(0, len(vertices), length)]
