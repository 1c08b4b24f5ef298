"""The processing-unit (PU) model: what a batch job will cost, computed offline (pure, no I/O).

Step: planning (every plan shows a PU estimate per job before anything is created, README, "How plan decides") and
the sandbox's analysis (which reports the same figure as `costPU` / `valueEstimate`). Once the real
service has analysed a job, its own figure replaces this one.

docs/api-facts.md: 1 PU = 512×512 output pixels × 3 input bands × 1 data sample, with output of at most
16 bits; the factors multiply; batch processing costs a third of the Process API price. So a tile
(or any output raster) costs

    PU = area × bands × samples × depth × discount

- area = width_px × height_px / (512 × 512), the output pixels of the tile, buffers included.
- bands = input bands / 3, counting the bands `setup()` asks for except `dataMask` (a mask the
  service derives, not a band it reads); at least 1/3, so a script without bands is not free.
  When setup() cannot be read the count is unknowable and we price the PU baseline of 3 (bands = 1).
- samples = 1 with SIMPLE mosaicking (one mosaicked value per pixel). With ORBIT or TILE every
  acquisition in the first data source's `dataFilter.timeRange` is a sample: ceil(days / revisit),
  at least 1, with the revisit of the collection (REVISIT_DAYS; 1 day for any other). No time
  range, or one we cannot read, counts as 1 sample.
- depth = 2 when any output's sampleType is FLOAT32 (32-bit output), else 1.
- discount = 1/3, the batch price.
Unreadable evalscripts fall back to evalscript.UNPARSED (ORBIT, FLOAT32): the dearer guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reconciler.geo.evalscript import EvalscriptInfo, parse_evalscript

if TYPE_CHECKING:  # tiles.py needs pyproj and shapely; pricing must not import them
    from reconciler.geo.tiles import Tile

PU_PIXELS = 512 * 512
PU_BANDS = 3
BATCH_DISCOUNT = 1 / 3
DEFAULT_REVISIT_DAYS = 1
# Days between acquisitions of one area (S2: 2 satellites; S1: 6-day repeat; Landsat 8+9: 8 days).
REVISIT_DAYS = {
    "sentinel-2-l1c": 5,
    "sentinel-2-l2a": 5,
    "sentinel-1-grd": 6,
    "landsat-ot-l1": 8,
    "landsat-ot-l2": 8,
}
# The short names the older Process API also accepts for the same collections.
_ALIASES = {
    "s2l1c": "sentinel-2-l1c",
    "s2l2a": "sentinel-2-l2a",
    "s1grd": "sentinel-1-grd",
    "lotl1": "landsat-ot-l1",
    "lotl2": "landsat-ot-l2",
}


@dataclass(frozen=True)
class CostFactors:
    """Everything but the pixel count that decides a job's PU; see the module docstring."""

    bands_factor: float
    samples: int
    depth_factor: int
    discount: float
    evalscript: EvalscriptInfo

    @property
    def per_pu_pixels(self) -> float:
        """PU of one 512×512 block of output pixels."""
        return self.bands_factor * self.samples * self.depth_factor * self.discount


def cost_factors(process_request: dict) -> CostFactors:
    """The cost factors of a `processRequest` (evalscript already inlined); never raises."""
    request = process_request if isinstance(process_request, dict) else {}
    info = parse_evalscript(request.get("evalscript"))
    return CostFactors(
        bands_factor=_bands_factor(info),
        samples=_samples(info, _first_data_source(request)),
        depth_factor=2 if any(o.sample_type == "FLOAT32" for o in info.outputs) else 1,
        discount=BATCH_DISCOUNT,
        evalscript=info,
    )


def pixels_pu(width_px: int, height_px: int, factors: CostFactors) -> float:
    """PU of one output raster of the given size (a tile, or a GeoPackage feature)."""
    return width_px * height_px / PU_PIXELS * factors.per_pu_pixels


def tile_pu(tile: Tile, factors: CostFactors) -> float:
    """PU of one tile, buffers included."""
    return pixels_pu(tile.width_px, tile.height_px, factors)


def estimate_pu(process_request: dict, tiles: Sequence[Tile]) -> float:
    """PU of processing `process_request` over `tiles`: the sum of the tiles' PU."""
    factors = cost_factors(process_request)
    return sum(tile_pu(tile, factors) for tile in tiles)


def revisit_days(data_type: object) -> int:
    """Days between acquisitions of a collection, by its Process API `type`."""
    name = data_type.lower() if isinstance(data_type, str) else ""
    return REVISIT_DAYS.get(_ALIASES.get(name, name), DEFAULT_REVISIT_DAYS)


def _bands_factor(info: EvalscriptInfo) -> float:
    if not info.parsed:
        return 1.0
    counted = [band for band in info.input_bands if band != "dataMask"]
    return max(len(counted), 1) / PU_BANDS


def _first_data_source(request: dict) -> dict:
    request_input = request.get("input")
    data = request_input.get("data") if isinstance(request_input, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    return first if isinstance(first, dict) else {}


def _samples(info: EvalscriptInfo, source: dict) -> int:
    if info.mosaicking == "SIMPLE":
        return 1
    data_filter = source.get("dataFilter")
    time_range = data_filter.get("timeRange") if isinstance(data_filter, dict) else None
    if not isinstance(time_range, dict):
        return 1
    start, end = _instant(time_range.get("from")), _instant(time_range.get("to"))
    if start is None or end is None or end <= start:
        return 1
    days = (end - start).total_seconds() / 86400
    return max(1, math.ceil(days / revisit_days(source.get("type"))))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # A date without a zone is read as UTC, as the API does.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
