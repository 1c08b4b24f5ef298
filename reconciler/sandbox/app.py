"""The sandbox's HTTP API (Flask): the OAuth token endpoint, Batch API v1 and v2 (`routes`), every
failure in the service's error body (`context.error`, docs/api-facts.md), request faults, and the
sandbox's own endpoints: `GET /sandbox/stats`, `PUT /sandbox/faults`, `GET|POST /sandbox/clock`
(manual clock)."""

from __future__ import annotations

import dataclasses
import math
import time

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from reconciler.sandbox import jobs
from reconciler.sandbox.auth import TokenIssuer
from reconciler.sandbox.context import Context, NotFoundError, error, json_body
from reconciler.sandbox.faults import Faults, RequestFaults
from reconciler.sandbox.routes import V1, V2, blueprint

__all__ = ["TOKEN_PATH", "Context", "create_app"]  # what the server (and tests) take from here

TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"


def create_app(context: Context, issuer: TokenIssuer) -> Flask:
    app = Flask("reconciler-sandbox")
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own, which sorts keys unless told not to
    app.json.sort_keys = False  # the service's key order
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
