"""What the sandbox's routes share besides the request: the `Context` (state, faults, clock) and
the service's ways of answering (its error body, pages with view tokens, search and sort, the
tiling grids). A module of its own so that `app`, which assembles the server, and `routes`, which
serve the Batch API, both import it instead of each other."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request

from reconciler.geo.grids import GRIDS
from reconciler.sandbox import jobs
from reconciler.sandbox.bodies import json_object
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.store import SandboxState

MAX_PAGE = 100
INT32 = range(-(2 ** 31), 2 ** 31)  # `count` is an int32 (OpenAPI SearchBeanCount)
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}
_CODES = {400: "COMMON_BAD_PAYLOAD", 401: "COMMON_UNAUTHORIZED", 403: "COMMON_INSUFFICIENT_PERMISSIONS",
          404: "COMMON_NOT_FOUND", 405: "COMMON_METHOD_NOT_ALLOWED", 409: "COMMON_BAD_PAYLOAD",
          429: "RATE_LIMIT_EXCEEDED"}


@dataclass
class Context:
    """What the routes need besides the request: state, clock, timing and S3 buckets. `advance`
    steps a manual clock (seconds → the new time); None when sandbox time is the real time."""

    state: SandboxState
    faults: Faults
    analysis_seconds: Callable[[], float]
    ensure_bucket: Callable[[str], None]
    clock: Callable[[], float] = time.time
    advance: Callable[[float], float] | None = None
    faults_changed: Callable[[Faults], None] = lambda faults: None  # the worker's copy follows PUT /sandbox/faults

    def job_or_404(self, job_id: str, api: str) -> jobs.Job:
        """The job, or a 404 for an unknown id, another version's id, or a job too new for the replica read."""
        job = self.state.get(job_id)
        lagging = job is not None and self.clock() - job.created < self.faults.replica_lag
        if job is None or job.api != api or lagging:
            raise NotFoundError(f"Batch request {job_id} not found")
        return job


class NotFoundError(Exception):
    """Answered 404 in the service's error body (the app's handler)."""


def error(status: int, message: str, errors: Any = None) -> Response:
    """The service's error document (`{"error": {status, reason, message, code[, errors]}}`)."""
    body: dict[str, Any] = {"status": status, "reason": _REASONS.get(status, "Error"), "message": message,
                            "code": _CODES.get(status, "COMMON_EXCEPTION")}
    if errors is not None:
        body["errors"] = errors
    response = jsonify({"error": body})
    response.status_code = status
    return response


def grid_descriptor(grid) -> dict:
    return {"id": grid.id, "name": grid.name, "properties": {
        "tileWidth": grid.tile_size, "tileHeight": grid.tile_size,
        "resolutions": list(grid.resolutions), "unit": grid.unit}}


def grids_page() -> Response:
    return page(list(GRIDS.values()), grid_descriptor)


def grid_by_id(grid_id: int) -> Response:
    if grid_id not in GRIDS:
        return error(404, f"Tiling grid {grid_id} not found")
    return jsonify(grid_descriptor(GRIDS[grid_id]))


def json_body() -> dict:
    return json_object(request.get_json(silent=True))


def page(items: Sequence[Any], render: Callable[[Any], dict]) -> Response:
    """One page of `items` by `count` and `viewtoken`, with the service's `links`. A `count`
    above the page size gets a full page; one that is not an int32 is refused."""
    try:
        count = int(request.args.get("count", MAX_PAGE))
        offset = _read_token(request.args.get("viewtoken"))
    except ValueError:
        raise jobs.Refused(400, "Invalid count or viewtoken") from None
    if count not in INT32:
        raise jobs.Refused(400, "Invalid count: it must be a 32-bit integer")
    count = min(max(count, 1), MAX_PAGE)
    return jsonify({"data": [render(i) for i in items[offset:offset + count]], "links": _links(offset, count, len(items))})


def sorted_jobs(found: Sequence[jobs.Job]) -> Sequence[jobs.Job]:
    """`search` (`a|b&c`: any `|` group whose `&` words all occur in id or description) and `sort`.
    `found` is in creation order, the default: without a search or another order it is paged as it
    is, so a page costs the same however many jobs there are."""
    sort, search = request.args.get("sort"), request.args.get("search")
    if sort not in (None, "created", "created:desc", "status", "status:desc"):
        raise jobs.Refused(400, f"Invalid sort {sort!r}")
    if not search and sort in (None, "created"):
        return found
    if search:
        def matches(job: jobs.Job) -> bool:
            text = f"{job.id} {job.description}".lower()
            return any(all(w.strip().lower() in text for w in group.split("&")) for group in search.split("|"))
        found = [j for j in found if matches(j)]
    key = (lambda j: (j.status, j.sequence)) if sort and sort.startswith("status") else (lambda j: j.sequence)
    return sorted(found, key=key, reverse=bool(sort and sort.endswith(":desc")))


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _read_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("bad viewtoken") from None
    if not isinstance(offset, int) or offset < 0:
        raise ValueError("bad viewtoken")
    return offset


def _links(offset: int, count: int, total: int) -> dict:
    def url(token: str) -> str:
        args = {k: v for k, v in request.args.items() if k != "viewtoken"}
        return f"{request.base_url}?{urlencode({**args, 'viewtoken': token})}"

    links = {"currentToken": _token(offset), "@id": url(_token(offset))}
    if offset + count < total:
        links["nextToken"] = _token(offset + count)
        links["next"] = url(links["nextToken"])
    if offset > 0:
        links["previousToken"] = _token(max(0, offset - count))
        links["previous"] = url(links["previousToken"])
    return links
