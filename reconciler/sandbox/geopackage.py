"""GeoPackage input (v2): the sandbox reads the GeoPackage from its S3 and makes one tile per
feature, as the service does. A GeoPackage is an SQLite file; geometries are WKB behind a small
`GP` header. Missing or unreadable files end the analysis with the service-like error, and so do
more features than an analysis may have tiles (counted before any is read)."""

from __future__ import annotations

import math
import sqlite3
import struct
import tempfile
from typing import Any

from reconciler.geo.tiles import Tile
from reconciler.sandbox.delivery import split_s3_url
from reconciler.sandbox.limits import MAX_TILES_PER_ANALYSIS

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


class TooManyFeatures(ValueError):
    """More features than one analysis may have tiles: the file is fine, the request too big."""


def feature_tiles(geopackage_input: dict, s3: Any) -> list[Tile]:
    """One tile per feature; raises ValueError with the reason the analysis fails."""
    url = geopackage_input["features"]["s3"]["url"]
    bucket, key = split_s3_url(url)
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # botocore's NoSuchKey, NoSuchBucket, ...
        raise ValueError(f"Cannot read the GeoPackage at {url}: {getattr(e, 'response', {}).get('Error', {}).get('Code', e)}") from None
    defaults = geopackage_input.get("defaults") or {}
    with tempfile.NamedTemporaryFile(suffix=".gpkg") as f:
        f.write(data)
        f.flush()
        try:
            features = _read_features(f.name)
        except TooManyFeatures:
            raise
        except (sqlite3.Error, struct.error, ValueError) as e:
            raise ValueError(f"The file at {url} is not a usable GeoPackage: {e}") from None
    if not features:
        raise ValueError(f"The GeoPackage at {url} holds no features")
    return [_tile(fid, name, geometry, srs, defaults) for fid, name, geometry, srs in features]


def _read_features(path: str) -> list[tuple[int, str, Any, int]]:
    import shapely

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features' LIMIT 1").fetchone()
        if row is None:
            raise ValueError("no feature table")
        table = row[0]
        column, srs = db.execute(
            "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
        (count,) = db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
        if count > MAX_TILES_PER_ANALYSIS:
            raise TooManyFeatures(f"The GeoPackage holds {count:,} features, more than the "
                                  f"{MAX_TILES_PER_ANALYSIS:,} tiles a request may have")
        columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
        name_column = next((c for c in ("identifier", "id", "name") if c in columns), None)
        select = f'SELECT fid, {f"{name_column}," if name_column else ""} "{column}" FROM "{table}" ORDER BY fid'
        out = []
        for row in db.execute(select):
            fid, blob = row[0], row[-1]
            name = str(row[1]) if name_column else f"feature-{fid}"
            out.append((fid, name, shapely.from_wkb(_wkb(blob)), srs))
        return out


def _wkb(blob: bytes) -> bytes:
    if blob[:2] != b"GP":
        raise ValueError("geometry without the GeoPackage header")
    flags = blob[3]
    envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0b111)
    if envelope is None:
        raise ValueError("bad envelope flag")
    return blob[8 + envelope:]


def _tile(fid: int, name: str, geometry: Any, srs: int, defaults: dict) -> Tile:
    from pyproj import Transformer

    minx, miny, maxx, maxy = geometry.bounds
    if defaults.get("width") and defaults.get("height"):
        width, height = int(defaults["width"]), int(defaults["height"])
    else:
        resolution = defaults.get("resolution") or max(maxx - minx, maxy - miny) / 512 or 1
        width, height = max(1, math.ceil((maxx - minx) / resolution)), max(1, math.ceil((maxy - miny) / resolution))
    to_wgs84 = Transformer.from_crs(f"EPSG:{srs}", "EPSG:4326", always_xy=True)
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    return Tile(id=fid, name=name, crs=f"EPSG:{srs}", bounds=(minx, miny, maxx, maxy), width_px=width,
                height_px=height, wgs84=tuple(to_wgs84.transform(x, y) for x, y in ring))
