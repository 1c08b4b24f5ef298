"""View of `reconciler grids`: the tiling grids a deployment offers, as a table or a JSON array."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.batch.models import common
from reconciler.render import colour_enabled, out, paint

_UNITS = {"METRE": " m", "DEGREE": "°"}
_HEADERS = ("ID", "NAME", "TILE SIZE", "RESOLUTIONS")


def show_grids(grids: Sequence[common.TilingGrid], fmt: str) -> None:
    """Print the grids by id: `json` gives the API's objects as an array, anything else a table."""
    grids = sorted(grids, key=lambda g: g.id)
    if fmt == "json":
        out(json.dumps([g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in grids], indent=2))
        return
    rows = [_row(g) for g in grids]
    widths = [max(len(cells[i]) for cells in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    colour = colour_enabled()
    out(paint(_line(_HEADERS, widths), colour, bold=True))
    for cells in rows:
        out(_line(cells, widths))


def _row(grid: common.TilingGrid) -> tuple[str, str, str, str]:
    p = grid.properties
    unit = _UNITS.get(p.unit, f" {p.unit}")
    size = f"{p.tileWidth:g}{unit}" if p.tileWidth == p.tileHeight else f"{p.tileWidth:g} × {p.tileHeight:g}{unit}"
    resolutions = ", ".join(f"{r:g}" for r in p.resolutions)
    return (str(grid.id), grid.name, size, resolutions)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
