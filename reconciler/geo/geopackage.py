"""The features of a GeoPackage (v2 `input.type: geopackage`), read from the file's bytes (pure:
the caller fetches them, from S3). The sandbox's analysis makes one tile per feature from them, as
the service does; `status NAME --map` draws them.

A GeoPackage is an SQLite database: the first table that `gpkg_contents` lists as `features`, its
geometry column from `gpkg_geometry_columns`, each geometry WKB behind a small `GP` header (magic,
version, flags, srs id, an optional envelope). The features are counted before any is read, so a
file with too many costs one COUNT. The bytes are opened in memory (no temporary file); a file
saved in WAL mode is read as a rollback-journal one, since a memory database cannot be WAL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from reconciler.geo.tiles import GeoError

_MAGIC = b"SQLite format 3\x00"
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_NAME_COLUMNS = ("identifier", "id", "name")  # the first one a feature table has names its features
WGS84 = 4326


class GeoPackageError(GeoError):
    """The bytes are not a usable GeoPackage; the message is the cause (not SQLite, no feature
    table, a broken geometry), for the caller to say which file."""


class TooManyFeatures(GeoPackageError):
    """More features than the caller takes: the file may be fine, the job too big for it."""

    def __init__(self, count: int, limit: int):
        super().__init__(f"{count:,} features, more than {limit:,}")
        self.count, self.limit = count, limit


@dataclass(frozen=True)
class Feature:
    fid: int
    name: str  # its identifier (or id, name) column, else `feature-<fid>`
    geometry: BaseGeometry  # in `epsg`, x/y (easting or longitude first), as GeoPackages store it
    epsg: int

    def lonlat(self) -> BaseGeometry:
        """The geometry in WGS84 lon/lat."""
        if self.epsg == WGS84:
            return self.geometry
        transformer = _to_lonlat(self.epsg)
        return shapely.transform(self.geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def read_features(data: bytes, max_features: int) -> list[Feature]:
    """The features of the GeoPackage `data`, in fid order; GeoPackageError (TooManyFeatures when
    more than `max_features`) says why it cannot be used."""
    if not data.startswith(_MAGIC) or len(data) < 100:
        raise GeoPackageError("not an SQLite file")
    if data[18:20] == b"\x02\x02":  # WAL mode in the header: a memory database cannot open it so
        data = data[:18] + b"\x01\x01" + data[20:]
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        db.execute("PRAGMA query_only = ON")
        return _features(db, max_features)
    except (sqlite3.Error, shapely.errors.ShapelyError) as e:
        raise GeoPackageError(str(e)) from None
    finally:
        db.close()


def _features(db: sqlite3.Connection, max_features: int) -> list[Feature]:
    row = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features' LIMIT 1").fetchone()
    if row is None:
        raise GeoPackageError("no feature table")
    table = row[0]
    found = db.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
    if found is None:
        raise GeoPackageError(f"no geometry column for the feature table {table!r}")
    column, srs_id = found
    (count,) = db.execute(f'SELECT COUNT(*) FROM "{_quoted(table)}"').fetchone()
    if count > max_features:
        raise TooManyFeatures(count, max_features)
    epsg = _epsg(db, srs_id)
    columns = [r[1] for r in db.execute(f'PRAGMA table_info("{_quoted(table)}")')]
    name_column = next((c for c in _NAME_COLUMNS if c in columns), None)
    named = f'"{_quoted(name_column)}", ' if name_column else ""
    features = []
    for fid, *name, blob in db.execute(f'SELECT fid, {named}"{_quoted(column)}" FROM "{_quoted(table)}" ORDER BY fid'):
        if blob is None:
            continue  # a feature without a geometry covers nothing
        label = str(name[0]) if name and name[0] is not None else f"feature-{fid}"
        features.append(Feature(fid, label, shapely.from_wkb(_wkb(blob)), epsg))
    return features


def _epsg(db: sqlite3.Connection, srs_id: int) -> int:
    """The EPSG code of a GeoPackage srs id: its `gpkg_spatial_ref_sys` row when it names one
    (srs ids are the file's own numbers, often but not always the EPSG code)."""
    row = db.execute("SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
                     (srs_id,)).fetchone()
    if row and str(row[0]).upper() == "EPSG" and row[1]:
        return int(row[1])
    return WGS84 if srs_id in (0, -1) else int(srs_id)  # 0/-1: "undefined", read as lon/lat


def _wkb(blob: bytes) -> bytes:
    if blob[:2] != b"GP" or len(blob) < 8:
        raise GeoPackageError("a geometry without the GeoPackage header")
    envelope = _ENVELOPE_BYTES.get((blob[3] >> 1) & 0b111)
    if envelope is None:
        raise GeoPackageError("a geometry with a bad envelope flag")
    return blob[8 + envelope:]


def _quoted(identifier: str) -> str:
    return identifier.replace('"', '""')


@lru_cache(maxsize=16)
def _to_lonlat(epsg: int) -> Transformer:
    try:
        return Transformer.from_crs(CRS.from_epsg(epsg), CRS.from_epsg(WGS84), always_xy=True)
    except CRSError:
        raise GeoPackageError(f"features in an unknown CRS, EPSG:{epsg}") from None
