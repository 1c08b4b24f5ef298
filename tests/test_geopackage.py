"""Reading a GeoPackage's features from its bytes (reconciler.geo.geopackage), as the sandbox's
analysis and the tile map do: names, CRS through `gpkg_spatial_ref_sys`, files saved in WAL mode,
the feature bound checked before reading, and a GeoPackageError (ours) for every broken file."""

from __future__ import annotations

import sqlite3
import struct

import pytest
import shapely

from reconciler.errors import ReconcilerError
from reconciler.geo.geopackage import GeoPackageError, TooManyFeatures, read_features
from tests.test_sandbox_v2 import write_geopackage

SQUARE = [(9.0, 42.0), (9.01, 42.0), (9.01, 42.01), (9.0, 42.01), (9.0, 42.0)]


def _geometry(polygon: shapely.Polygon, srs_id: int, envelope: bool = False) -> bytes:
    flags = 0b00000011 if envelope else 0b00000001  # little endian, with or without an xy envelope
    extra = struct.pack("<4d", *polygon.bounds) if envelope else b""
    return b"GP" + bytes([0, flags]) + struct.pack("<i", srs_id) + extra + shapely.to_wkb(polygon)


def test_features_in_another_crs_come_back_in_lon_lat_from_a_wal_mode_file(tmp_path):
    from pyproj import Transformer

    path = tmp_path / "lambert.gpkg"
    to_lambert = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    square = shapely.Polygon([to_lambert.transform(x, y) for x, y in SQUARE])
    write_geopackage(path, [])
    with sqlite3.connect(path) as db:  # the file's own srs id 100 stands for EPSG:2154 (Lambert-93)
        db.execute("INSERT INTO gpkg_spatial_ref_sys VALUES ('Lambert-93', 100, 'EPSG', 2154, '', '')")
        db.execute("UPDATE gpkg_geometry_columns SET srs_id = 100")
        db.execute("CREATE TABLE plain (fid INTEGER PRIMARY KEY, geom BLOB)")
        db.execute("UPDATE gpkg_contents SET table_name = 'plain'")
        db.execute("UPDATE gpkg_geometry_columns SET table_name = 'plain'")
        db.execute("INSERT INTO plain VALUES (7, ?)", (_geometry(square, 100, envelope=True),))
        db.execute("INSERT INTO plain VALUES (8, NULL)")  # no geometry: covers nothing, not a feature
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()  # the last connection checkpoints: the file has every row, and WAL mode in its header
    data = path.read_bytes()
    assert data[18:20] == b"\x02\x02"

    [feature] = read_features(data, 10)
    assert (feature.fid, feature.name, feature.epsg) == (7, "feature-7", 2154)
    assert feature.lonlat().equals_exact(shapely.Polygon(SQUARE), tolerance=1e-7)


def test_the_feature_bound_is_checked_before_any_geometry_is_read(tmp_path):
    path = tmp_path / "two.gpkg"
    write_geopackage(path, [SQUARE, SQUARE])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE fields SET geom = x'00' WHERE fid = 2")  # broken, but never read
    with pytest.raises(TooManyFeatures, match="2 features, more than 1") as raised:
        read_features(path.read_bytes(), 1)
    assert (raised.value.count, raised.value.limit) == (2, 1)
    with pytest.raises(GeoPackageError, match="without the GeoPackage header"):
        read_features(path.read_bytes(), 2)
    assert [f.name for f in read_features(_first_only(path), 2)] == ["field-1"]


def _first_only(path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM fields WHERE fid = 2")
    return path.read_bytes()


@pytest.mark.parametrize("data, reason", [
    (b"", "not an SQLite file"),
    (b"PK\x03\x04 a zip, say" * 20, "not an SQLite file"),
    (b"SQLite format 3\x00" + b"\xff" * 200, "not a database"),
])
def test_what_is_not_a_geopackage_says_why_in_our_error(data, reason):
    with pytest.raises(GeoPackageError, match=reason) as raised:
        read_features(data, 10)
    assert isinstance(raised.value, ReconcilerError) and raised.value.__cause__ is None


def test_an_sqlite_file_without_a_feature_table_is_refused(tmp_path):
    path = tmp_path / "empty.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE gpkg_contents (table_name TEXT, data_type TEXT)")
        db.execute("INSERT INTO gpkg_contents VALUES ('tiles', 'tiles')")
    with pytest.raises(GeoPackageError, match="no feature table"):
        read_features(path.read_bytes(), 10)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE gpkg_contents")
    with pytest.raises(GeoPackageError, match="no such table: gpkg_contents"):
        read_features(path.read_bytes(), 10)
