"""How many tiles one sandbox analysis may cover, checked before the tiles are listed.

Step: the sandbox's analysis (`worker.analyse_request`). Listing the tiles of an area costs time
in proportion to their number (a world bbox on the 20 km grid is 1.3 M tiles and tens of seconds
of blocking work), so an area is first measured: its area divided by a tile's is a floor under
its tile count, cheap to compute from the outline alone. An analysis above the bound fails the way
the service ends an analysis it cannot do: FAILED, with the reason in `error`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely

from reconciler.geo.grids import GRIDS, Grid
from reconciler.geo.tiles import aoi_lonlat

# The service publishes no limit; this is about Europe on the 10 km grid, the largest jobs the
# seeds' users run, and keeps an analysis under a few seconds of work.
MAX_TILES_PER_ANALYSIS = 100_000
AUTHALIC_RADIUS = 6_371_007.2  # metres: a sphere with the WGS84 ellipsoid's area
# UTM is conformal, not equal-area: its scale stays within 0.9996..1.001 inside a zone, so a
# cell count from true areas can only be low by well under 1 %; 0.99 keeps the floor a floor.
FLOOR_MARGIN = 0.99
DENSIFY_DEGREES = 1.0  # a diagonal lon/lat edge bends in the equal-area plane: follow it closely enough
UTM_LATITUDES = (-80.0, 84.0)
LAEA_EUROPE = 3035


def check_tile_count(bounds: dict, grid_id: int, counted: int | None = None) -> None:
    """Raise ValueError (the analysis's error) when the area of `bounds` needs more than
    MAX_TILES_PER_ANALYSIS tiles of the grid: `counted` when the tiles were listed, else a floor
    estimated from the area. An unknown grid or unreadable bounds are left to the tiling."""
    grid = GRIDS.get(grid_id) if isinstance(grid_id, int) else None
    if grid is None:
        return
    if counted is None:
        counted = math.floor(FLOOR_MARGIN * _area_in_cells(aoi_lonlat(bounds), grid))
        qualifier = "at least"
    else:
        qualifier = "exactly"
    if counted > MAX_TILES_PER_ANALYSIS:
        raise ValueError(f"The area of interest covers {qualifier} {counted:,} tiles of tiling grid {grid.id} "
                         f"({grid.name}), more than the {MAX_TILES_PER_ANALYSIS:,} a request may have; "
                         "split the area or use a grid with larger tiles")


def _area_in_cells(lonlat, grid: Grid) -> float:
    """The area of the part of `lonlat` the grid covers, in tiles of the grid."""
    window = {"UTM": (-180.0, UTM_LATITUDES[0], 180.0, UTM_LATITUDES[1]),
              "WGS84": (-180.0, -90.0, 180.0, 90.0),
              "LAEA": _laea_window()}[grid.projection]
    part = shapely.clip_by_rect(lonlat, *window)
    if part.is_empty:
        return 0.0
    if grid.unit == "DEGREE":
        return part.area / grid.tile_size ** 2  # its cells are squares in lon/lat itself
    return _square_metres(part) / grid.tile_size ** 2


def _square_metres(lonlat) -> float:
    """Area on the authalic sphere: in Lambert's cylindrical equal-area plane (x = R·λ,
    y = R·sin φ) a plane area is the true area, and parallels and meridians stay straight."""

    def to_plane(coords: np.ndarray) -> np.ndarray:
        radians = np.radians(coords)
        return np.column_stack([AUTHALIC_RADIUS * radians[:, 0], AUTHALIC_RADIUS * np.sin(radians[:, 1])])

    return shapely.transform(shapely.segmentize(lonlat, DENSIFY_DEGREES), to_plane).area


@lru_cache(maxsize=1)
def _laea_window() -> tuple[float, float, float, float]:
    import pyproj

    use = pyproj.CRS.from_epsg(LAEA_EUROPE).area_of_use
    assert use is not None  # EPSG:3035 is defined for Europe
    return use.bounds
