"""The sandbox's HTTP API (Flask): the OAuth token endpoint, Batch API v2 and tiling grids,
answering with the service's codes and bodies (BATCH_API.md), plus `GET /sandbox/stats`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from reconciler.api.checks import check_v2
from reconciler.api.models import v2
from reconciler.geo.grids import GRIDS
from reconciler.sandbox import jobs
from reconciler.sandbox.auth import TokenIssuer
from reconciler.sandbox.store import SandboxState

TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"
MAX_PAGE = 100
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
_CODES = {400: "COMMON_BAD_PAYLOAD", 401: "COMMON_UNAUTHORIZED", 403: "COMMON_INSUFFICIENT_PERMISSIONS",
          404: "COMMON_NOT_FOUND", 405: "COMMON_METHOD_NOT_ALLOWED", 409: "COMMON_BAD_PAYLOAD",
          429: "RATE_LIMIT_EXCEEDED", 500: "COMMON_EXCEPTION", 503: "COMMON_EXCEPTION"}


def error(status: int, message: str, errors: Any = None, code: str | None = None) -> Response:
    body: dict[str, Any] = {"status": status, "reason": _REASONS.get(status, "Error"), "message": message,
                            "code": code or _CODES.get(status, "COMMON_EXCEPTION")}
    if errors is not None:
        body["errors"] = errors
    response = jsonify({"error": body})
    response.status_code = status
    return response


def create_app(state: SandboxState, issuer: TokenIssuer, settings: dict[str, Any]) -> Flask:
    """`settings`: `analysis_seconds()` → float, `ensure_bucket(name)`, the clock `monotonic()`."""
    app = Flask("reconciler-sandbox")
    app.json.sort_keys = False

    @app.before_request
    def _count_and_authenticate():
        rule = request.url_rule.rule if request.url_rule else "(unknown)"
        with state.lock:
            state.stats[f"{request.method} {rule}"] += 1
        if request.path.startswith("/api/"):
            problem = issuer.check(request.headers.get("Authorization"))
            if problem:
                return error(401, f"Unauthorized: {problem}")
        return None

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return error(e.code or 500, e.description or e.name)

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

    @app.get("/sandbox/stats")
    def stats():
        with state.lock:
            return jsonify({"requests": dict(sorted(state.stats.items())), "jobs": len(state.jobs())})

    app.register_blueprint(_v2_blueprint(state, settings), url_prefix="/api/v2/batch")
    app.register_blueprint(_grids_blueprint(), url_prefix="/api/v2/batch")
    return app


def _v2_blueprint(state: SandboxState, settings: dict[str, Any]) -> Blueprint:
    bp = Blueprint("v2", __name__)

    @bp.post("/process")
    def create():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "The request body must be a JSON object")
        try:
            model = v2.CreateBody.model_validate(body)
        except ValidationError as e:
            return error(400, "Invalid request", [_violation(err) for err in e.errors(include_url=False)])
        findings = check_v2(model)
        if findings:
            violations = [{"parameter": _dotted(f.path), "violation": f.message} for f in findings]
            return error(400, f"Invalid request: {findings[0].message}", violations)
        for bucket in _buckets(body):
            settings["ensure_bucket"](bucket)
        with state.lock:
            job = jobs.new_job("v2", body, _now(), state.next_sequence())
            state.add(job)
            return jsonify(jobs.as_task(job)), 201

    @bp.get("/process")
    def list_tasks():
        try:
            count = min(max(int(request.args.get("count", MAX_PAGE)), 1), MAX_PAGE)
            offset = _read_token(request.args.get("viewtoken"))
        except ValueError:
            return error(400, "Invalid count or viewtoken")
        sort = request.args.get("sort")
        if sort not in (None, "created", "created:desc", "status", "status:desc"):
            return error(400, f"Invalid sort {sort!r}")
        with state.lock:
            found = [j for j in state.jobs("v2") if _matches(j, request.args.get("search"))]
            found.sort(key=_sort_key(sort), reverse=bool(sort and sort.endswith(":desc")))
            page = [jobs.as_task(j) for j in found[offset:offset + count]]
        return jsonify({"data": page, "links": _links(offset, count, len(found))})

    def with_job(action: Callable[[jobs.Job], Response | tuple]):
        def handler(task_id: str):
            with state.lock:
                job = state.get(task_id)
                if job is None or job.api != "v2":
                    return error(404, f"Batch request {task_id} not found")
                try:
                    return action(job)
                except jobs.Refused as e:
                    return error(e.status, e.message)
        handler.__name__ = action.__name__
        return handler

    def get_task(job):
        return jsonify(jobs.as_task(job))

    def put_task(job):
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("description", ""), str):
            return error(400, "The body must be {\"description\": string}")
        if "description" in body:
            jobs.update_description(job, body["description"], _now())
        return jsonify(job.request)

    def analyse(job):
        jobs.analyse(job, _now(), settings["monotonic"](), settings["analysis_seconds"]())
        return Response(status=204)

    def start(job):
        jobs.start(job, _now(), settings["monotonic"](), settings["analysis_seconds"]())
        return Response(status=204)

    def stop(job):
        jobs.stop(job, _now())
        return Response(status=204)

    bp.add_url_rule("/process/<task_id>", view_func=with_job(get_task), methods=["GET"])
    bp.add_url_rule("/process/<task_id>", view_func=with_job(put_task), methods=["PUT"])
    for action in (analyse, start, stop):
        bp.add_url_rule(f"/process/<task_id>/{action.__name__}", view_func=with_job(action), methods=["POST"])
    return bp


def _grids_blueprint() -> Blueprint:
    bp = Blueprint("v2grids", __name__)

    @bp.get("/tilinggrids")
    def grids():
        return jsonify({"data": [grid_descriptor(g) for g in GRIDS.values()], "links": {}})

    @bp.get("/tilinggrids/<int:grid_id>")
    def grid(grid_id: int):
        if grid_id not in GRIDS:
            return error(404, f"Tiling grid {grid_id} not found")
        return jsonify(grid_descriptor(GRIDS[grid_id]))

    return bp


def grid_descriptor(grid) -> dict:
    return {"id": grid.id, "name": grid.name, "properties": {
        "tileWidth": grid.tile_size, "tileHeight": grid.tile_size,
        "resolutions": list(grid.resolutions), "unit": grid.unit}}


def _violation(err: dict) -> dict:
    return {"parameter": _dotted(err["loc"]), "violation": err["msg"]}


def _dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _buckets(body: dict) -> set[str]:
    urls = [body["output"]["delivery"]["s3"]["url"]]
    if body["input"].get("type") == "geopackage":
        urls.append(body["input"]["features"]["s3"]["url"])
    return {u.removeprefix("s3://").split("/", 1)[0] for u in urls}


def _matches(job: jobs.Job, search: str | None) -> bool:
    """`a|b&c`: any `|` group whose `&` words all occur in the id or description."""
    if not search:
        return True
    text = f"{job.id} {job.description}".lower()
    return any(all(w.strip().lower() in text for w in group.split("&")) for group in search.split("|"))


def _sort_key(sort: str | None):
    if sort and sort.startswith("status"):
        return lambda j: (j.status, j.sequence)
    return lambda j: j.sequence


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
        args["viewtoken"] = token
        return f"{request.base_url}?{urlencode(args)}"

    links = {"currentToken": _token(offset), "@id": url(_token(offset))}
    if offset + count < total:
        links["nextToken"] = _token(offset + count)
        links["next"] = url(links["nextToken"])
    if offset > 0:
        links["previousToken"] = _token(max(0, offset - count))
        links["previous"] = url(links["previousToken"])
    return links


def _now() -> datetime:
    return datetime.now(timezone.utc)
