"""The offline PU estimate of a manifest (DESIGN §4 "Cost"): the tiles of its area on its grid
priced by the PU model of `reconciler.geo`, so a pull request shows the cost before anything is
created. GeoPackage inputs have no offline estimate (their features are in the bucket)."""

from __future__ import annotations

from reconciler.manifests.manifest import Manifest


class Estimator:
    """Estimates by body, each computed once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, float | None] = {}

    def __call__(self, manifest: Manifest) -> float | None:
        key, _ = manifest.desired  # the canonical body's digest: equal bodies, equal estimates
        if key not in self._cache:
            self._cache[key] = offline_estimate(manifest.body)
        return self._cache[key]


def offline_estimate(body: dict) -> float | None:
    # geo (numpy, pyproj, shapely) is imported when a create is priced, not by every plan
    from reconciler.geo.cost import estimate_pu
    from reconciler.geo.tiles import GeoError, tiles_for_bounds

    grid = body.get("tilingGrid") or body.get("input") or {}
    if grid.get("type") == "geopackage" or "id" not in grid:
        return None
    process = body["processRequest"]
    try:
        tiles = tiles_for_bounds(process["input"]["bounds"], grid["id"], grid["resolution"],
                                 grid.get("bufferX") or 0, grid.get("bufferY") or 0)
    except GeoError:
        return None
    return round(estimate_pu(process, tiles), 1)
