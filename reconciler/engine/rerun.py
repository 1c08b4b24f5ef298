"""Re-runs that pay only for what is missing (DESIGN §4), for the planner. Pure.

A FAILED v2 job is re-run as a new request with `output.skipExisting: true`. The service skips a
tile only when its outputs exist where *the new request* writes them, and the default delivery
layout is `<url>/<requestId>/<tileName>/<outputId>.<format>`: under a new request id nothing
exists, so the re-run writes where the failed run wrote, with that run's id spelled out in the
path. These settings are the reconciler's own: they are recorded with the request (JobState
`overrides`) and applied to the manifest's body before it is compared, so they never read as a
change of the manifest. Zarr output has no `skipExisting`: a Zarr job is not re-run automatically.

What a re-run or a resumed job will cost is the share of the job not done yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine.payload import with_overrides

SKIP = "output.skipExisting"
URL = "output.delivery.s3.url"


def rerun_overrides(body: dict, failed_id: str, recorded: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...] | str:
    """The overrides of a re-run of the request `failed_id` (whose own overrides were `recorded`),
    or why the job cannot be re-run that way."""
    output = body.get("output") or {}
    if output.get("type") != "raster":
        return "a Zarr output cannot skip existing tiles (the API has no skipExisting for it): a re-run pays in full"
    if recorded and URL in recorded:
        url = recorded[URL]  # a re-run of a re-run writes where the first run wrote
    else:
        url = output["delivery"]["s3"]["url"]
        if "<requestId>" in url:
            url = url.replace("<requestId>", failed_id)
        elif "<" not in url:  # the default layout, spelled out with the failed run's id
            url = f"{url.rstrip('/')}/{failed_id}/<tileName>/<outputId>.<format>"
        # else: a template without <requestId> writes the same paths whatever the request
    overrides = [(SKIP, True)]
    if url != output["delivery"]["s3"]["url"]:
        overrides.append((URL, url))
    return tuple(overrides)


def desired_body(body: dict, recorded: Mapping[str, Any] | None) -> dict:
    """The manifest's body as the live request should echo it: with the reconciler's own settings
    of that request applied."""
    return with_overrides(body, tuple(recorded.items())) if recorded else body


def remaining(full: float | None, completion: float | None) -> float | None:
    """The PU of the part of a job not done yet: `full` PU, `completion` percent done."""
    if full is None or completion is None:
        return full
    return round(full * max(0.0, 100.0 - completion) / 100.0, 1)
