"""The map of a job card in a pull request comment: the job's area and its tiles as GeoJSON, for a
```geojson block that GitHub draws (render/markdown.py). Made here, and only for the cards a
comment shows: a plan holds each card's area, never tile outlines (engine.estimate), so a first
plan of 10,000 creates tiles each area once to size it and again only for the few it draws.

A card may come from a saved plan file, which is not trusted (docs/security.md): its area is tiled only
when it can meet no more than a few times MAP_TILES cells of its grid, so no file can make
`reconciler show` tile a continent. Coordinates are rounded to DECIMALS (about 1 m) and tile
outlines reduced to their corners, to keep the comment small.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from reconciler.engine.actions import JobCard
from reconciler.geo.grids import GRIDS, Grid

MAP_TILES = 150  # more tiles than this and the map shows the area only (about 15,000 characters)
AREA_POINTS = 500  # an area outline with more points is simplified to about this many
DECIMALS = 5
CORNERS = 1e-4  # degrees: tile edges bend less than this between corners, on a map of a pull request
METRES_PER_DEGREE = 111_320.0  # along the equator: no degree of longitude or latitude is longer
_AREA_STYLE = {"kind": "area", "stroke": "#d73a49", "fill-opacity": 0.05}


@dataclass(frozen=True)
class CardMap:
    geojson: str | None  # a FeatureCollection on one line; None when there is nothing to draw
    note: str = ""  # what the map leaves out, or why there is none


def card_map(card: JobCard) -> CardMap:
    """The area of `card` and, when it has few enough, its tiles (one MultiPolygon feature)."""
    from reconciler.geo.tiles import GeoError, aoi_lonlat

    if card.bounds is None:
        return CardMap(None, "no map: the area is not shown")
    try:
        area = aoi_lonlat(card.bounds)
    except (GeoError, ValueError, TypeError):  # a saved plan's area need not be valid
        return CardMap(None, "no map: the area cannot be read")
    if area.is_empty:
        return CardMap(None, "no map: the area is empty")
    features = [_feature(_outline(area), _AREA_STYLE)]
    tiles, note = _tiles(card, area.bounds)
    if tiles:
        features.append(_feature({"type": "MultiPolygon", "coordinates": tiles}, {"kind": "tiles", "tiles": len(tiles)}))
    return CardMap(json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")), note)


def _tiles(card: JobCard, extent: tuple[float, float, float, float]) -> tuple[list, str]:
    """The tile outlines to draw (GeoJSON polygon coordinates), or none and why."""
    import numpy as np
    import shapely

    from reconciler.geo.tiles import GeoError, tiles_for_bounds

    if card.grid_id is None or card.resolution is None or card.bounds is None:  # bounds: card_map checked them
        return [], ""
    grid = GRIDS.get(card.grid_id)
    if grid is None:
        return [], ""
    too_many = "the map shows the area only: {} tiles are too many to draw here"
    if card.tiles is not None and card.tiles > MAP_TILES:
        return [], too_many.format(f"{card.tiles:,}")
    if _cells_at_most(extent, grid) > 4 * MAP_TILES:
        return [], too_many.format("its")
    try:
        tiles = tiles_for_bounds(card.bounds, card.grid_id, card.resolution)
    except (GeoError, ValueError, TypeError):
        return [], "the map shows the area only: it cannot be tiled here"
    if len(tiles) > MAP_TILES:
        return [], too_many.format(f"{len(tiles):,}")
    outlines = shapely.simplify(np.array([shapely.Polygon(t.wgs84) for t in tiles]), CORNERS)
    return [_rounded(shapely.geometry.mapping(o)["coordinates"]) for o in outlines], ""


def _cells_at_most(extent: tuple[float, float, float, float], grid: Grid) -> float:
    """More cells of `grid` than a lon/lat `extent` can meet (a bound, not a count): a degree is
    never longer than at the equator, and projections stretch a length by well under 1.5."""
    minx, miny, maxx, maxy = extent
    if grid.unit == "DEGREE":
        size = grid.tile_size
        return (math.floor(maxx / size) - math.floor(minx / size) + 2) * (math.floor(maxy / size) - math.floor(miny / size) + 2)
    per_degree = 1.5 * METRES_PER_DEGREE / grid.tile_size
    rows = (maxy - miny) * per_degree + 2
    if grid.projection != "UTM":
        return ((maxx - minx) * per_degree + 2) * rows
    zones = range(int((minx + 180) // 6), int((maxx + 180) // 6) + 1)  # each zone has its own cells
    columns = sum((min(maxx, 6.0 * (z + 1) - 180) - max(minx, 6.0 * z - 180)) * per_degree + 2 for z in zones)
    return columns * rows * (2 if miny < 0 < maxy else 1)


def _outline(area: Any) -> dict:
    """The area as GeoJSON geometry, simplified to about AREA_POINTS points, rounded."""
    import shapely

    simple, tolerance = area, 0.0
    minx, miny, maxx, maxy = area.bounds
    for _ in range(30):  # the tolerance doubles up to the area's size: the loop always ends
        if shapely.get_num_coordinates(simple) <= AREA_POINTS:
            break
        tolerance = tolerance * 2 or max(maxx - minx, maxy - miny) / 2000
        simple = area.simplify(tolerance)
    geometry = shapely.geometry.mapping(simple)
    return {"type": geometry["type"], "coordinates": _rounded(geometry["coordinates"])}


def _rounded(coordinates: Any) -> Any:
    if isinstance(coordinates, (int, float)):
        return round(float(coordinates), DECIMALS)
    return [_rounded(c) for c in coordinates]


def _feature(geometry: dict, properties: dict) -> dict:
    return {"type": "Feature", "properties": properties, "geometry": geometry}
