"""Re-runs that pay only for what is missing (README, "How plan decides"), for the planner. Pure.

A FAILED v2 job is re-run as a new request with `output.skipExisting: true`. The service skips a
tile only when its outputs exist where *the new request* writes them, and the default delivery
layout is `<url>/<requestId>/<tileName>/<outputId>.<format>`: under a new request id nothing
exists, so the re-run writes where the failed run wrote, with that run's id spelled out in the
path. These settings are the reconciler's own: the request they were made for is recorded (JobState
`rerunOf`, an id: the delivery URL may hold a secret) and they are made again from the manifest's
body and applied to it before it is compared, so they never read as a
change of the manifest. Zarr output has no `skipExisting`: a Zarr job is not re-run automatically.

What a re-run or a resumed job will cost is the share of the job not done yet.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.payload import Overrides, with_overrides
from reconciler.redaction import SENSITIVE, KeyPath

SKIP = "output.skipExisting"
URL = "output.delivery.s3.url"


def rerun_overrides(body: dict[str, Any], written_by: str) -> Overrides | str:
    """The overrides of a re-run whose tiles done are where the request `written_by` wrote them
    (the first run of a chain of re-runs), or why the job cannot be re-run that way."""
    output = body.get("output") or {}
    if output.get("type") != "raster":
        return "a Zarr output cannot skip existing tiles (the API has no skipExisting for it): a re-run pays in full"
    url = output["delivery"]["s3"]["url"]
    if "<requestId>" in url:
        url = url.replace("<requestId>", written_by)
    elif "<" not in url:  # the default layout, spelled out with that run's id
        url = f"{url.rstrip('/')}/{written_by}/<tileName>/<outputId>.<format>"
    # else: a template without <requestId> writes the same paths whatever the request
    overrides: list[tuple[str, Any]] = [(SKIP, True)]
    if url != output["delivery"]["s3"]["url"]:
        overrides.append((URL, url))
    return tuple(overrides)


def sent_overrides(body: dict[str, Any], rerun_of: str | None) -> Overrides:
    """What a create sends on top of the manifest's body: nothing, or a re-run's settings."""
    overrides = rerun_overrides(body, rerun_of) if rerun_of else ()
    return overrides if isinstance(overrides, tuple) else ()


def shown(overrides: Overrides, sensitive: frozenset[KeyPath]) -> Overrides:
    """Overrides as a plan shows and saves them: a value at a sensitive path (a delivery URL from
    `${env:…}`) masked."""
    return tuple((path, SENSITIVE if tuple(path.split(".")) in sensitive else value) for path, value in overrides)


def desired_body(body: dict[str, Any], rerun_of: str | None) -> dict[str, Any]:
    """The manifest's body as the live request should echo it: with the reconciler's own settings
    of that request (a re-run of `rerun_of`'s tiles) applied."""
    overrides = sent_overrides(body, rerun_of)
    return with_overrides(body, overrides) if overrides else body


def remaining(full: float | None, completion: float | None) -> float | None:
    """The PU of the part of a job not done yet: `full` PU, `completion` percent done."""
    if full is None or completion is None:
        return full
    return round(full * max(0.0, 100.0 - completion) / 100.0, 1)
