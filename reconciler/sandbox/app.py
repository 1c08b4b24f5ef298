"""The sandbox's HTTP API (Flask): the OAuth token endpoint, Batch API v1 and v2 with tiling
grids, the service's codes and error bodies (BATCH_API.md), request faults, and the sandbox's own
endpoints: `GET /sandbox/stats`, `PUT /sandbox/faults`, `GET|POST /sandbox/clock` (manual clock)."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from reconciler.geo.grids import GRIDS
from reconciler.sandbox import jobs
from reconciler.sandbox.auth import TokenIssuer
from reconciler.sandbox.bodies import json_object
from reconciler.sandbox.faults import Faults, RequestFaults
from reconciler.sandbox.store import SandboxState

TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"
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
    pass


def error(status: int, message: str, errors: Any = None) -> Response:
    body: dict[str, Any] = {"status": status, "reason": _REASONS.get(status, "Error"), "message": message,
                            "code": _CODES.get(status, "COMMON_EXCEPTION")}
    if errors is not None:
        body["errors"] = errors
    response = jsonify({"error": body})
    response.status_code = status
    return response


def create_app(context: Context, issuer: TokenIssuer) -> Flask:
    from reconciler.sandbox.routes import V1, V2, blueprint

    app = Flask("reconciler-sandbox")
    app.json.sort_keys = False
    app.config["MAX_FORM_MEMORY_SIZE"] = None  # a multipart `request` part may be as large as a JSON body
    # A manual clock also drives the rate-limit window and Retry-After; real time keeps the monotonic clock
    request_faults = RequestFaults(context.faults, clock=context.clock if context.advance else time.monotonic)
    _guards(app, context, issuer, request_faults)
    _error_handlers(app)
    _token_endpoint(app, issuer)
    _sandbox_endpoints(app, context, request_faults)
    app.register_blueprint(blueprint(context, V2), url_prefix="/api/v2/batch")
    app.register_blueprint(blueprint(context, V1), url_prefix="/api/v1/batch")
    return app


def _guards(app: Flask, context: Context, issuer: TokenIssuer, request_faults: RequestFaults) -> None:
    """Before a request: counted, then faults, then the token; after: a lost answer, if injected."""

    @app.before_request
    def _before():
        rule = request.url_rule.rule if request.url_rule else "(unknown)"
        with context.state.lock:
            context.state.stats[f"{request.method} {rule}"] += 1
        if request.path.startswith("/sandbox/"):
            return None
        refused = request_faults.before()
        if refused is not None:
            status, retry_after = refused
            with context.state.lock:
                context.state.stats[f"refused {status}"] += 1
            response = error(status, "Rate limit exceeded" if status == 429 else "Injected server error")
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        if request.path.startswith("/api/"):
            problem = issuer.check(request.headers.get("Authorization"))
            if problem:
                return error(401, f"Unauthorized: {problem}")
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        mutating = request.method in ("POST", "PUT", "DELETE") and request.path.startswith("/api/")
        if mutating and response.status_code < 400 and request_faults.lose_answer():
            return error(502, "Injected loss of the answer (the request took effect)")
        return response


def _error_handlers(app: Flask) -> None:
    """Every error answers in the service's error body."""

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        response = error(e.code or 500, e.description or e.name)
        for name, value in e.get_headers():  # a 405's `Allow` (RFC 9110: the methods the path has)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(NotFoundError)
    def _not_found(e: NotFoundError):
        return error(404, str(e))

    @app.errorhandler(jobs.Refused)
    def _refused(e: jobs.Refused):
        return error(e.status, e.message)


def _token_endpoint(app: Flask, issuer: TokenIssuer) -> None:
    @app.post(TOKEN_PATH)
    @app.post("/oauth/token")
    def token():
        form = request.form
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id, client_secret = request.authorization.username, request.authorization.password
        if form.get("grant_type") != "client_credentials":
            return jsonify({"error": "unsupported_grant_type", "error_description": "Only client_credentials"}), 400
        if not issuer.credentials_match(client_id, client_secret):
            return jsonify({"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}), 401
        return jsonify(issuer.issue())


def _sandbox_endpoints(app: Flask, context: Context, request_faults: RequestFaults) -> None:
    """The sandbox's own endpoints: no token, no injected faults (tests steer the sandbox with them)."""

    @app.put("/sandbox/faults")
    def set_faults():
        """Change faults while running (tests: a service that starts refusing creates, say)."""
        changes = json_body()
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Faults)})
        if unknown:
            raise jobs.Refused(400, f"unknown fault {unknown[0]!r}")
        context.faults = request_faults.faults = dataclasses.replace(context.faults, **changes)
        context.faults_changed(context.faults)
        return jsonify(dataclasses.asdict(context.faults))

    @app.get("/sandbox/clock")
    @app.post("/sandbox/clock")
    def clock():
        """The sandbox time; with a manual clock, POST `{"advance": SECONDS}` moves it and every job with it."""
        if request.method == "POST":
            if context.advance is None:
                raise jobs.Refused(409, "The sandbox clock is the real time; start the sandbox with --manual-clock")
            seconds = json_body().get("advance")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                    or seconds < 0:
                raise jobs.Refused(400, "`advance` must be a number of seconds, 0 or more")
            context.advance(float(seconds))
        now = context.clock()
        return jsonify({"now": now, "time": jobs.iso(now), "manual": context.advance is not None})

    @app.get("/sandbox/stats")
    def stats():
        with context.state.lock:
            return jsonify({"requests": dict(sorted(context.state.stats.items())), "jobs": len(context.state.jobs())})


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


def page(items: list, render: Callable[[Any], dict]) -> Response:
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


def sorted_jobs(found: list[jobs.Job]) -> list[jobs.Job]:
    """`search` (`a|b&c`: any `|` group whose `&` words all occur in id or description) and `sort`."""
    sort, search = request.args.get("sort"), request.args.get("search")
    if sort not in (None, "created", "created:desc", "status", "status:desc"):
        raise jobs.Refused(400, f"Invalid sort {sort!r}")
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
