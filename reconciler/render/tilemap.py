"""Writes a tile map (`status NAME --map FILE`, built by operations/tilemap.py): GeoJSON as is, or
a picture (`.png`, `.svg`; matplotlib, the optional `map` extra) that claims only what the map
knows. Tiles with their own status (v1) are coloured by it; tiles without one (v2, a v1 job before
its analysis) share one neutral colour, and the legend gives the job's status, completion and why
(e.g. "per-tile status not available in Batch v2"). The area of interest is outlined, and a
graticule (lon/lat lines labelled in degrees, at the area's mean-latitude aspect) gives the
geographic context that can be drawn without the network. There is no coastline: no small,
maintained package ships one for offline use.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections import Counter
from pathlib import Path

from reconciler.batch.models.v1 import TileStatus
from reconciler.errors import UsageError
from reconciler.render import out, plain

COLOURS: dict[str, str] = {TileStatus.PENDING: "#d9d9d9", TileStatus.SCHEDULED: "#bdd7ee", TileStatus.QUEUED: "#9dc3e6",
           TileStatus.PROCESSING: "#5b9bd5", TileStatus.PROCESSED: "#70ad47", TileStatus.FAILED: "#e0443e"}
UNKNOWN_STATUS = "#ffc000"  # a tile status this version does not know
NEUTRAL = "#c3cfdc"  # a tile whose status is not known: in the job's area, nothing more
EDGE = "#404040"
# What a tile without status is, by where the tiles come from (the collection's `tiles`).
TILE_LABELS = {"grid": "tile in the job's area", "geopackage": "GeoPackage feature, one tile each"}
MAX_ERROR = 160  # characters of the job's error shown in the legend


def write_map(collection: dict, path: str, title: str) -> None:
    """Write `collection` to `path` (.geojson/.json, .png, .svg) and say in one line what it holds."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".geojson", ".json"):
        target.write_text(json.dumps(collection, indent=1) + "\n")
    elif suffix in (".png", ".svg"):
        _picture(collection, target, title)
    else:
        raise UsageError(f"--map {path}: unknown format", "use .geojson, .json, .png or .svg")
    out(f"Wrote {path}: {_summary(collection)}")


def _summary(collection: dict) -> str:
    properties, tiles = collection["properties"], _tiles(collection)
    statuses = Counter(f["properties"]["status"] for f in tiles if f["properties"].get("status"))
    if statuses:
        return f"{len(tiles)} tile(s) (" + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")"
    what = "GeoPackage feature(s)" if properties.get("tiles") == "geopackage" else "tile(s)"
    return f"{len(tiles)} {what}, job {_job_state(properties)} ({properties.get('tileStatus')})"


def _job_state(properties: dict) -> str:
    """`DONE`, or `FAILED at 86 % complete: 9 of 66 tiles failed`, from the collection's properties."""
    state = str(properties.get("status"))
    if properties.get("completion"):  # None in v1; 0 says nothing the status does not
        state += f" at {properties['completion']:g} % complete"
    if properties.get("error"):
        error = plain(properties["error"])
        state += f": {error[:MAX_ERROR]}{'…' if len(error) > MAX_ERROR else ''}"
    return state


def _tiles(collection: dict) -> list[dict]:
    return [f for f in collection["features"] if f["properties"]["kind"] == "tile"]


def _picture(collection: dict, target: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("pictures need matplotlib", "pip install 'reconciler[map]', or write .geojson") from None
    figure, axes = plt.subplots(figsize=(8, 8))
    try:
        handles = _draw(axes, collection)
        _graticule(axes, collection)
        axes.set_title(title)
        legend_title = "\n".join(textwrap.wrap(f"job {_job_state(collection['properties'])}", 48))
        axes.legend(handles=handles, title=legend_title, loc="upper left", bbox_to_anchor=(1.02, 1),
                    borderaxespad=0, alignment="left")
        figure.savefig(target, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)


def _draw(axes, collection: dict) -> list:
    """Tiles and the area of interest on `axes`; the legend's entries, counts included."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Polygon

    counts: Counter = Counter()
    for feature in collection["features"]:
        props = feature["properties"]
        for ring in _outer_rings(feature["geometry"]):
            if props["kind"] == "tile":
                axes.add_patch(Polygon(ring, closed=True, facecolor=_colour(props.get("status")), edgecolor=EDGE,
                                       linewidth=0.4, zorder=2))
            else:
                axes.add_patch(Polygon(ring, closed=True, fill=False, edgecolor="black", linewidth=1.6, zorder=3))
        if props["kind"] == "tile":
            counts[props.get("status") or ""] += 1
    handles: list[Artist] = [Patch(facecolor=_colour(s), edgecolor=EDGE, label=f"{s} ({n})")
                             for s, n in sorted(counts.items()) if s]
    if counts[""]:
        label = TILE_LABELS.get(collection["properties"].get("tiles"), "tile")
        handles.append(Patch(facecolor=NEUTRAL, edgecolor=EDGE, label=f"{label} ({counts['']})"))
    handles.append(Patch(fill=False, edgecolor="black", linewidth=1.6, label="area of interest"))
    note = collection["properties"].get("tileStatus")
    if note:
        handles.append(Line2D([], [], linestyle="none", label="\n".join(textwrap.wrap(note, 48))))
    return handles


def _colour(status: str | None) -> str:
    return COLOURS.get(status, UNKNOWN_STATUS) if status else NEUTRAL


def _graticule(axes, collection: dict) -> None:
    """Frame the features with a margin, at the aspect of their mean latitude (a degree of
    longitude is shorter than one of latitude away from the equator), with labelled lon/lat lines."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    minx, miny, maxx, maxy = _extent(collection)
    pad = max(maxx - minx, maxy - miny) * 0.06 or 0.01
    axes.set_xlim(minx - pad, maxx + pad)
    axes.set_ylim(max(miny - pad, -90.0), min(maxy + pad, 90.0))
    axes.set_aspect(1 / max(math.cos(math.radians((miny + maxy) / 2)), 0.1))
    for axis, hemispheres in ((axes.xaxis, "EW"), (axes.yaxis, "NS")):
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        axis.set_major_formatter(FuncFormatter(lambda value, _, h=hemispheres: degrees(value, h)))
    axes.grid(True, color="#5c5c5c", linewidth=0.5, linestyle=(0, (2, 3)))
    axes.set_axisbelow(False)  # the lines over the tiles (zorder 2.5), under the area's outline (3)
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")


def degrees(value: float, hemispheres: str) -> str:
    """A graticule label: 8.5 → `8.5°E` with "EW", -12 → `12°S` with "NS", 0 → `0°`."""
    text = f"{abs(value):.6f}".rstrip("0").rstrip(".")
    if text == "0":
        return "0°"
    return f"{text}°{hemispheres[0] if value > 0 else hemispheres[1]}"


def _extent(collection: dict) -> tuple[float, float, float, float]:
    points = [p for f in collection["features"] for ring in _outer_rings(f["geometry"]) for p in ring]
    if not points:
        return -180.0, -90.0, 180.0, 90.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _outer_rings(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry["type"] == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    return []
