"""The tiling grids the Batch API offers, as the live service lists them (docs/api-facts.md).

One table used by manifest validation now, and by the planner's offline cost estimate and the
sandbox's analysis later, so the three can never disagree about a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Grid:
    id: int
    name: str
    tile_size: float  # tiles are square; in `unit`
    resolutions: tuple[float, ...]
    unit: Literal["METRE", "DEGREE"]
    projection: Literal["UTM", "WGS84", "LAEA"]

    @property
    def supports_zarr(self) -> bool:
        """Zarr output works only with the WGS84 and LAEA grids."""
        return self.projection != "UTM"

    def has_resolution(self, resolution: float) -> bool:
        return any(math.isclose(resolution, r, rel_tol=1e-9) for r in self.resolutions)

    def describe_resolutions(self) -> str:
        return ", ".join(f"{r:g}" for r in self.resolutions)


GRIDS: dict[int, Grid] = {
    g.id: g
    for g in (
        Grid(0, "20km grid", 20040.0, (10.0, 20.0, 30.0, 60.0), "METRE", "UTM"),
        Grid(1, "10km grid", 10000.0, (1.0, 1.4999, 10.0, 20.0), "METRE", "UTM"),
        Grid(2, "100km grid", 100080.0, (30.0, 60.0, 120.0, 240.0, 360.0), "METRE", "UTM"),
        Grid(
            3,
            "WGS84 1 degree grid",
            1.0,
            (0.0001, 0.0002, 0.0005, 0.0008, 0.001, 0.002, 0.005, 0.008),
            "DEGREE",
            "WGS84",
        ),
        Grid(6, "LAEA 100km grid", 100000.0, (40.0, 50.0, 100.0), "METRE", "LAEA"),
        Grid(7, "LAEA 20km grid", 20000.0, (10.0, 20.0), "METRE", "LAEA"),
    )
}


def describe_grids() -> str:
    return ", ".join(f"{g.id} ({g.name})" for g in GRIDS.values())
