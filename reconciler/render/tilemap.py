"""Writes a tile map: GeoJSON as is, or a picture (`.png`, `.svg`) with tiles coloured by status,
the area of interest outlined and a legend (matplotlib, the optional `map` extra)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.render import out

COLOURS = {"PENDING": "#d9d9d9", "SCHEDULED": "#bdd7ee", "QUEUED": "#9dc3e6", "PROCESSING": "#5b9bd5",
           "PROCESSED": "#70ad47", "FAILED": "#e0443e"}


def write_map(collection: dict, path: str, title: str) -> None:
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".geojson", ".json"):
        target.write_text(json.dumps(collection, indent=1) + "\n")
    elif suffix in (".png", ".svg"):
        _picture(collection, target, title)
    else:
        raise UsageError(f"--map {path}: unknown format", "use .geojson, .json, .png or .svg")
    tiles = [f for f in collection["features"] if f["properties"]["kind"] == "tile"]
    counts = Counter(f["properties"]["status"] for f in tiles)
    out(f"Wrote {path}: {len(tiles)} tile(s) (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")")


def _picture(collection: dict, target: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch, Polygon
    except ImportError:
        raise UsageError("pictures need matplotlib", "pip install 'reconciler[map]', or write .geojson") from None
    figure, axes = plt.subplots(figsize=(8, 8))
    seen = set()
    for feature in collection["features"]:
        props, geometry = feature["properties"], feature["geometry"]
        for ring in _outer_rings(geometry):
            if props["kind"] == "tile":
                colour = COLOURS.get(props["status"], "#ffc000")
                axes.add_patch(Polygon(ring, closed=True, facecolor=colour, edgecolor="#404040", linewidth=0.4))
                seen.add(props["status"])
            else:
                axes.add_patch(Polygon(ring, closed=True, fill=False, edgecolor="black", linewidth=1.6))
    axes.autoscale_view()
    axes.set_aspect("equal")
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.set_title(title)
    handles = [Patch(facecolor=COLOURS.get(s, "#ffc000"), edgecolor="#404040", label=s) for s in sorted(seen)]
    handles.append(Patch(fill=False, edgecolor="black", linewidth=1.6, label="area of interest"))
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    figure.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(figure)


def _outer_rings(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry["type"] == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    return []
