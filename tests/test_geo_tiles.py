"""Tiles of an area on the tiling grids (reconciler.geo.tiles), checked against an independent count.

The independent computation does not use shapely at all: it samples the area (a lon/lat lattice
plus its edges every ~2 m), projects every sample with pyproj and collects the cells that hold one.
For an axis-aligned lon/lat box that is exact up to slivers narrower than the edge spacing.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyproj
import pytest
from shapely.geometry import Point, Polygon

from reconciler.geo.tiles import GeoError, Tile, aoi_lonlat, tiles_for_bounds

CORSICA = (8.44, 41.31, 9.66, 43.1)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def bbox_bounds(bbox, crs=CRS84):
    return {"bbox": list(bbox), "properties": {"crs": crs}}


def sampled_cells(lonlat_box, epsg, size, step=0.005, edge_step=2e-5):
    """Cells (floor(x/size), floor(y/size)) in EPSG:`epsg` that hold a sample of the lon/lat box."""
    minx, miny, maxx, maxy = lonlat_box
    lon, lat = np.meshgrid(
        np.linspace(minx, maxx, round((maxx - minx) / step) + 1),
        np.linspace(miny, maxy, round((maxy - miny) / step) + 1),
    )
    along_x = np.linspace(minx, maxx, round((maxx - minx) / edge_step) + 1)
    along_y = np.linspace(miny, maxy, round((maxy - miny) / edge_step) + 1)
    lons = np.concatenate([lon.ravel(), along_x, along_x, np.full_like(along_y, minx), np.full_like(along_y, maxx)])
    lats = np.concatenate([lat.ravel(), np.full_like(along_x, miny), np.full_like(along_x, maxy), along_y, along_y])
    x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lons, lats)
    return set(zip(np.floor(x / size).astype(int).tolist(), np.floor(y / size).astype(int).tolist(), strict=True))


def cells_of(tiles, size):
    return {(round(t.bounds[0] / size), round(t.bounds[1] / size)) for t in tiles}


# Counts found for the Corsica bbox (and confirmed by the sampling below): the island spans
# ~101 km × 199 km, so on 20 km cells 6 columns × 11 rows = 66; 10 km: 11 × 21 = 231;
# 100.08 km: 2 × 3 = 6; LAEA 100 km: 2 × 3 = 6; LAEA 20 km: 6 × 11 = 66.
@pytest.mark.parametrize(
    "grid_id, resolution, epsg, size, expected",
    [
        (0, 60.0, 32632, 20040.0, 66),
        (1, 10.0, 32632, 10000.0, 231),
        (2, 60.0, 32632, 100080.0, 6),
        (6, 100.0, 3035, 100000.0, 6),
        (7, 20.0, 3035, 20000.0, 66),
    ],
)
def test_corsica_cells_match_an_independent_sampling(grid_id, resolution, epsg, size, expected):
    tiles = tiles_for_bounds(bbox_bounds(CORSICA), grid_id, resolution)
    assert {t.crs for t in tiles} == {f"EPSG:{epsg}"}
    assert cells_of(tiles, size) == sampled_cells(CORSICA, epsg, size)
    assert len(tiles) == expected


def test_corsica_on_the_wgs84_grid_is_the_integer_degrees_it_covers():
    # lon 8.44..9.66 covers degrees 8 and 9; lat 41.31..43.1 covers 41, 42 and 43: 2 × 3 = 6 cells.
    tiles = tiles_for_bounds(bbox_bounds(CORSICA), 3, 0.001)
    expected = {
        (lon, lat)
        for lon in range(math.floor(CORSICA[0]), math.floor(CORSICA[2]) + 1)
        for lat in range(math.floor(CORSICA[1]), math.floor(CORSICA[3]) + 1)
    }
    assert {(int(t.bounds[0]), int(t.bounds[1])) for t in tiles} == expected
    assert [t.name for t in tiles] == ["N41E008", "N41E009", "N42E008", "N42E009", "N43E008", "N43E009"]
    assert {t.crs for t in tiles} == {"EPSG:4326"}
    assert len(tiles) == 6


def test_names_and_ids_follow_the_documented_scheme():
    utm = tiles_for_bounds(bbox_bounds(CORSICA), 0, 60.0)
    for tile in utm:
        zone, col, row = re.fullmatch(r"(\d\d)N_(\d+)_(\d+)", tile.name).groups()
        assert (int(zone), int(col) * 20040.0, int(row) * 20040.0) == (32, tile.bounds[0], tile.bounds[1])
        assert tile.id == 32 * 10**7 + int(col) * 10**4 + int(row)
    laea = tiles_for_bounds(bbox_bounds(CORSICA), 6, 100.0)
    assert {t.name for t in laea} == {f"100kmE{e}N{n}" for e in (41, 42) for n in (20, 21, 22)}
    assert {t.id for t in laea} == {e * 1000 + n for e in (41, 42) for n in (20, 21, 22)}
    laea20 = tiles_for_bounds(bbox_bounds(CORSICA), 7, 20.0)
    for tile in laea20:
        east, north = re.fullmatch(r"20kmE(\d+)N(\d+)", tile.name).groups()
        assert (int(east) * 10_000, int(north) * 10_000) == tile.bounds[:2]
    assert tiles_for_bounds(bbox_bounds(CORSICA), 3, 0.001)[0].id == 131188


def test_tiles_are_sorted_unique_and_stable_across_calls():
    first = tiles_for_bounds(bbox_bounds(CORSICA), 1, 10.0)
    second = tiles_for_bounds(bbox_bounds(CORSICA), 1, 10.0)
    assert first == second
    assert [t.id for t in first] == sorted(t.id for t in first)
    assert len({t.id for t in first}) == len({t.name for t in first}) == len(first)


def test_an_area_across_a_zone_boundary_has_tiles_in_both_zones():
    # 12°E separates zones 32 and 33; each side is checked against the sampling in its own zone.
    area = (11.5, 45.0, 12.5, 45.5)
    tiles = tiles_for_bounds(bbox_bounds(area), 0, 60.0)
    by_crs = {crs: [t for t in tiles if t.crs == crs] for crs in ("EPSG:32632", "EPSG:32633")}
    assert {t.crs for t in tiles} == set(by_crs)
    assert cells_of(by_crs["EPSG:32632"], 20040.0) == sampled_cells((11.5, 45.0, 12.0, 45.5), 32632, 20040.0)
    assert cells_of(by_crs["EPSG:32633"], 20040.0) == sampled_cells((12.0, 45.0, 12.5, 45.5), 32633, 20040.0)
    assert all(t.name.startswith("33N_") for t in by_crs["EPSG:32633"])


def test_an_area_across_the_equator_has_tiles_in_both_hemispheres():
    tiles = tiles_for_bounds(bbox_bounds((10.0, -0.5, 10.5, 0.5)), 1, 10.0)
    north = [t for t in tiles if t.crs == "EPSG:32632"]
    south = [t for t in tiles if t.crs == "EPSG:32732"]
    assert len(north) + len(south) == len(tiles) and north and south
    assert all(t.name.startswith("32N_") for t in north) and all(t.name.startswith("32S_") for t in south)
    # South tiles sit just below the 10,000 km false northing of EPSG:32732; the sampling stops 1 cm
    # short of the equator, whose samples would fall on the line between two rows.
    assert max(t.bounds[3] for t in south) == 10_000_000.0
    assert cells_of(south, 10000.0) == sampled_cells((10.0, -0.5, 10.5, -1e-7), 32732, 10000.0)
    wgs84 = tiles_for_bounds(bbox_bounds((-0.5, -0.5, 0.5, 0.5)), 3, 0.001)
    assert [t.name for t in wgs84] == ["S01W001", "S01E000", "N00W001", "N00E000"]


def test_a_polygon_with_a_hole_needs_fewer_tiles_than_its_bbox():
    minx, miny, maxx, maxy = CORSICA
    outer = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    hole = [[8.8, 41.8], [9.3, 41.8], [9.3, 42.6], [8.8, 42.6], [8.8, 41.8]]
    with_hole = tiles_for_bounds({"geometry": {"type": "Polygon", "coordinates": [outer, hole]}}, 1, 10.0)
    full = tiles_for_bounds(bbox_bounds(CORSICA), 1, 10.0)
    assert {t.id for t in with_hole} < {t.id for t in full}
    # No remaining tile lies wholly inside the hole.
    hole_polygon = Polygon(hole)
    assert not any(hole_polygon.contains(Polygon(t.wgs84)) for t in with_hole)


def test_a_thin_diagonal_polygon_needs_fewer_tiles_than_its_bbox():
    ring = [[8.44, 41.31], [8.46, 41.31], [9.66, 43.1], [9.64, 43.1], [8.44, 41.31]]
    thin = tiles_for_bounds({"geometry": {"type": "Polygon", "coordinates": [ring]}}, 1, 10.0)
    assert 0 < len(thin) < len(tiles_for_bounds(bbox_bounds(CORSICA), 1, 10.0)) / 3


def test_bbox_and_geometry_together_mean_their_intersection():
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [[[[9.0, 40.0], [11.0, 40.0], [11.0, 42.0], [9.0, 42.0], [9.0, 40.0]]]],
    }
    both = tiles_for_bounds({"bbox": list(CORSICA), "geometry": geometry}, 0, 60.0)
    assert both == tiles_for_bounds(bbox_bounds((9.0, 41.31, 9.66, 42.0)), 0, 60.0)


@pytest.mark.parametrize("crs", ["http://www.opengis.net/def/crs/EPSG/0/3857", "EPSG:3857"])
def test_an_area_in_web_mercator_matches_the_same_area_in_crs84(crs):
    # Mercator keeps meridians and parallels straight, so the projected corners bound the same area.
    x, y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(CORSICA[::2], CORSICA[1::2])
    mercator = tiles_for_bounds(bbox_bounds((x[0], y[0], x[1], y[1]), crs), 0, 60.0)
    assert mercator == tiles_for_bounds(bbox_bounds(CORSICA), 0, 60.0)


def test_an_area_in_a_utm_crs_matches_the_same_area_in_crs84():
    # The lon/lat box's outline, densified, carried into EPSG:32632 as a polygon.
    minx, miny, maxx, maxy = CORSICA
    up, down = np.linspace(0.0, 1.0, 201), np.linspace(1.0, 0.0, 201)
    width, height = maxx - minx, maxy - miny
    lons = np.concatenate([minx + up * width, np.full(201, maxx), minx + down * width, np.full(201, minx)])
    lats = np.concatenate([np.full(201, miny), miny + up * height, np.full(201, maxy), miny + down * height])
    x, y = pyproj.Transformer.from_crs(4326, 32632, always_xy=True).transform(lons, lats)
    ring = [[a, b] for a, b in zip(x.tolist(), y.tolist(), strict=True)] + [[x[0], y[0]]]
    utm = {
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/32632"},
    }
    in_utm = [t.name for t in tiles_for_bounds(utm, 1, 10.0)]
    assert in_utm == [t.name for t in tiles_for_bounds(bbox_bounds(CORSICA), 1, 10.0)]


@pytest.mark.parametrize(
    "bounds, grid_id, resolution, names",
    [
        (bbox_bounds((440880.0, 4569120.0, 460920.0, 4589160.0), "EPSG:32632"), 0, 60.0, ["32N_22_228"]),
        (bbox_bounds((4.1e6, 2.0e6, 4.2e6, 2.1e6), "http://www.opengis.net/def/crs/EPSG/0/3035"), 6, 100.0,
         ["100kmE41N20"]),
        (bbox_bounds((8.0, 41.0, 10.0, 42.0)), 3, 0.001, ["N41E008", "N41E009"]),
    ],
)
def test_an_area_on_cell_lines_of_the_grids_own_crs_touches_no_neighbour(bounds, grid_id, resolution, names):
    # A tile's exact bounds must give that tile alone, not slivers of its neighbours from a round trip.
    assert [t.name for t in tiles_for_bounds(bounds, grid_id, resolution)] == names


def test_the_aoi_in_lonlat_is_the_bbox_itself_for_crs84():
    assert aoi_lonlat(bbox_bounds(CORSICA)).bounds == pytest.approx(CORSICA)
    assert aoi_lonlat({"bbox": list(CORSICA)}).equals(aoi_lonlat(bbox_bounds(CORSICA, "EPSG:4326")))


@pytest.mark.parametrize(
    "grid_id, resolution, size_px",
    [
        (0, 60.0, 334), (0, 10.0, 2004), (1, 10.0, 1000), (1, 1.4999, 6668),
        (2, 360.0, 278), (3, 0.0001, 10000), (6, 40.0, 2500), (7, 10.0, 2000),
    ],
)
def test_pixel_size_is_tile_size_over_resolution(grid_id, resolution, size_px):
    tile = tiles_for_bounds(bbox_bounds(CORSICA), grid_id, resolution)[0]
    assert (tile.width_px, tile.height_px) == (size_px, size_px)


def test_buffers_add_pixels_on_both_sides_but_leave_bounds_alone():
    plain = tiles_for_bounds(bbox_bounds(CORSICA), 0, 60.0)
    buffered = tiles_for_bounds(bbox_bounds(CORSICA), 0, 60.0, buffer_x=10, buffer_y=5)
    assert [(t.width_px, t.height_px) for t in buffered] == [(354, 344)] * len(plain)
    assert [t.bounds for t in buffered] == [t.bounds for t in plain]


@pytest.mark.parametrize("grid_id, resolution", [(0, 60.0), (2, 60.0), (3, 0.001), (6, 100.0)])
def test_wgs84_outline_is_a_closed_ring_around_the_tile_centre(grid_id, resolution):
    for tile in tiles_for_bounds(bbox_bounds(CORSICA), grid_id, resolution):
        assert isinstance(tile, Tile) and tile.wgs84[0] == tile.wgs84[-1] and len(tile.wgs84) >= 5
        outline = Polygon(tile.wgs84)
        assert outline.is_valid and outline.exterior.is_ccw
        minx, miny, maxx, maxy = tile.bounds
        to_lonlat = pyproj.Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True)
        assert outline.contains(Point(to_lonlat.transform((minx + maxx) / 2, (miny + maxy) / 2)))


def test_a_whole_europe_bbox_is_tiled_in_every_zone_it_touches():
    # No timing assertion; it exists so that a slow algorithm shows in the suite's duration.
    tiles = tiles_for_bounds(bbox_bounds((-25.0, 34.0, 45.0, 72.0)), 0, 60.0)
    assert {t.crs for t in tiles} == {f"EPSG:326{zone:02d}" for zone in range(26, 39)}
    assert len({t.id for t in tiles}) == len(tiles) > 40_000


def test_an_area_outside_the_grid_coverage_has_no_tiles():
    assert tiles_for_bounds(bbox_bounds((-120.0, 30.0, -110.0, 35.0)), 6, 100.0) == []
    apart = {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 5]]]}
    assert tiles_for_bounds({"bbox": [0.0, 0.0, 1.0, 1.0], "geometry": apart}, 0, 60.0) == []


@pytest.mark.parametrize(
    "bounds, grid_id, resolution, message",
    [
        (bbox_bounds(CORSICA), 5, 60.0, "unknown tiling grid 5"),
        (bbox_bounds(CORSICA), 0, 15.0, "resolution 15.0 is not offered by grid 0"),
        (bbox_bounds(CORSICA), 3, 0.01, "resolution 0.01 is not offered by grid 3"),
        (bbox_bounds(CORSICA, "EPSG:999999"), 0, 60.0, "unknown CRS EPSG:999999"),
        (bbox_bounds(CORSICA, "urn:made:up"), 0, 60.0, "unknown CRS 'urn:made:up'"),
        ({"properties": {"crs": CRS84}}, 0, 60.0, "bounds need a `bbox` or a `geometry`"),
        (bbox_bounds((9.0, 41.0, 8.0, 42.0)), 0, 60.0, "is empty"),
        ({"bbox": [1, 2, 3]}, 0, 60.0, "four finite numbers"),
        ({"geometry": {"type": "Point", "coordinates": [9, 42]}}, 0, 60.0, "Polygon or MultiPolygon"),
    ],
)
def test_what_cannot_be_tiled_raises_geo_error(bounds, grid_id, resolution, message):
    with pytest.raises(GeoError, match=re.escape(message)) as raised:
        tiles_for_bounds(bounds, grid_id, resolution)
    assert isinstance(raised.value, ValueError)


def test_negative_buffers_are_refused():
    with pytest.raises(GeoError, match="buffers"):
        tiles_for_bounds(bbox_bounds(CORSICA), 0, 60.0, buffer_x=-1)
