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
    from reconciler.geo.tiles import GeoError, body_tiles

    try:
        tiles = body_tiles(body)
    except GeoError:
        return None
    return None if tiles is None else round(estimate_pu(body["processRequest"], tiles), 1)
