"""GeoPackage input (v2): the sandbox reads the GeoPackage from its S3 and makes one tile per
feature, as the service does. Reading the file is `reconciler.geo.geopackage` (the tile map reads
it too). Missing or unreadable files end the analysis with the service-like error, and so do
more features than an analysis may have tiles (counted before any is read)."""

from __future__ import annotations

import math
from typing import Any

from reconciler.geo.geopackage import Feature, GeoPackageError, TooManyFeatures, read_features
from reconciler.geo.tiles import Tile
from reconciler.sandbox.delivery import split_s3_url
from reconciler.sandbox.limits import MAX_TILES_PER_ANALYSIS


def feature_tiles(geopackage_input: dict, s3: Any) -> list[Tile]:
    """One tile per feature; raises ValueError with the reason the analysis fails."""
    url = geopackage_input["features"]["s3"]["url"]
    bucket, key = split_s3_url(url)
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # botocore's NoSuchKey, NoSuchBucket, ...
        raise ValueError(f"Cannot read the GeoPackage at {url}: {getattr(e, 'response', {}).get('Error', {}).get('Code', e)}") from None
    try:
        features = read_features(data, MAX_TILES_PER_ANALYSIS)
    except TooManyFeatures as e:
        raise ValueError(f"The GeoPackage holds {e.count:,} features, more than the "
                         f"{MAX_TILES_PER_ANALYSIS:,} tiles a request may have") from None
    except GeoPackageError as e:
        raise ValueError(f"The file at {url} is not a usable GeoPackage: {e.message}") from None
    if not features:
        raise ValueError(f"The GeoPackage at {url} holds no features")
    defaults = geopackage_input.get("defaults") or {}
    return [_tile(feature, defaults) for feature in features]


def _tile(feature: Feature, defaults: dict) -> Tile:
    from pyproj import Transformer

    minx, miny, maxx, maxy = feature.geometry.bounds
    if defaults.get("width") and defaults.get("height"):
        width, height = int(defaults["width"]), int(defaults["height"])
    else:
        resolution = defaults.get("resolution") or max(maxx - minx, maxy - miny) / 512 or 1
        width, height = max(1, math.ceil((maxx - minx) / resolution)), max(1, math.ceil((maxy - miny) / resolution))
    to_wgs84 = Transformer.from_crs(f"EPSG:{feature.epsg}", "EPSG:4326", always_xy=True)
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    return Tile(id=feature.fid, name=feature.name, crs=f"EPSG:{feature.epsg}", bounds=(minx, miny, maxx, maxy),
                width_px=width, height_px=height, wgs84=tuple(to_wgs84.transform(x, y) for x, y in ring))
