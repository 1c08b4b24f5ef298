"""Batch API routes (`/api/v2/batch`, `/api/v1/batch`). Both versions share create (JSON or
multipart, see `bodies`), list, get, PUT (v2: description; v1: also the linked collection),
analyse/start and stop (v1: cancel) and the tiling grids; v1 adds DELETE, restartpartial and the
tiles endpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ValidationError

from reconciler.batch.checks import check_v1, check_v2
from reconciler.batch.models import v1, v2
from reconciler.sandbox import jobs
from reconciler.sandbox.bodies import create_body, edited_request
from reconciler.sandbox.context import Context, error, grid_by_id, grids_page, json_body, page, sorted_jobs
from reconciler.sandbox.delivery import buckets_of

TILE_STATUSES = ("PENDING", "SCHEDULED", "QUEUED", "PROCESSING", "PROCESSED", "FAILED")


@dataclass(frozen=True)
class Version:
    api: str
    model: type[BaseModel]  # the create body
    check: Callable  # the body's rules (reconciler.batch.checks)
    render: Callable[[jobs.Job], dict]  # the job as the API shows it
    updated: Callable[[jobs.Job], dict]  # what PUT answers
    stop: tuple[str, Callable]  # v2 "stop", v1 "cancel"


V2 = Version("v2", v2.CreateBody, check_v2, jobs.as_task, lambda job: job.request, ("stop", jobs.stop))
V1 = Version("v1", v1.CreateBody, check_v1, jobs.as_v1_request, jobs.as_v1_request, ("cancel", jobs.cancel))


def blueprint(context: Context, version: Version) -> Blueprint:
    bp = Blueprint(version.api, __name__)
    _job_routes(bp, context, version)
    _action_routes(bp, context, version)
    if version.api == "v1":
        _v1_routes(bp, context)
    bp.add_url_rule("/tilinggrids", f"{version.api}_grids", grids_page)
    bp.add_url_rule("/tilinggrids/<int:grid_id>", f"{version.api}_grid", grid_by_id)
    return bp


def _job_routes(bp: Blueprint, context: Context, version: Version) -> None:
    """Create, list, get and update the version's jobs."""
    state = context.state

    @bp.post("/process")
    def create():
        if context.faults.refuse_creates:
            raise jobs.Refused(400, context.faults.refuse_creates)
        body = create_body(version.api)
        try:
            findings = version.check(version.model.model_validate(body))
        except ValidationError as e:
            return _error_400([(".".join(str(p) for p in err["loc"]), err["msg"]) for err in e.errors(include_url=False)])
        if findings:
            return _error_400([(".".join(str(p) for p in f.path), f.message) for f in findings])
        for bucket in buckets_of(body):
            context.ensure_bucket(bucket)
        with state.lock:
            job = jobs.new_job(version.api, body, context.clock(), state.next_sequence(), context.faults.seed)
            state.add(job)
            return jsonify(version.render(job)), 201

    @bp.get("/process")
    def list_jobs():
        with state.lock:
            return page(sorted_jobs(state.jobs(version.api)), version.render)

    @bp.get("/process/<job_id>")
    def get_job(job_id: str):
        with state.lock:
            return jsonify(version.render(context.job_or_404(job_id, version.api)))

    @bp.put("/process/<job_id>")
    def put_job(job_id: str):
        body = json_body()
        with state.lock:
            job = context.job_or_404(job_id, version.api)
            edited = edited_request(version.api, job.request, body)
            if edited is not None:
                jobs.update_request(job, edited, context.clock())
                state.save(job)
            return jsonify(version.updated(job))


def _action_routes(bp: Blueprint, context: Context, version: Version) -> None:
    """POST /process/<id>/<action>: 204, or the service's 400 when it does not fit the status."""
    state = context.state

    def action(name: str, apply: Callable[[jobs.Job], None]) -> None:
        def handler(job_id: str):
            with state.lock:
                job = context.job_or_404(job_id, version.api)
                apply(job)
                state.save(job)
            return Response(status=204)

        bp.add_url_rule(f"/process/<job_id>/{name}", f"{version.api}_{name}", handler, methods=["POST"])

    action("analyse", lambda job: jobs.analyse(job, context.clock(), context.analysis_seconds()))
    action("start", lambda job: jobs.start(job, context.clock(), context.analysis_seconds()))
    stop_name, stop = version.stop
    action(stop_name, lambda job: stop(job, context.clock()))
    if version.api == "v1":
        action("restartpartial", lambda job: jobs.restart_partial(job, context.clock()))


def _v1_routes(bp: Blueprint, context: Context) -> None:
    state = context.state

    @bp.delete("/process/<job_id>")
    def delete_request(job_id: str):
        with state.lock:
            job = context.job_or_404(job_id, "v1")
            jobs.check_deletable(job)
            state.remove(job.id)
        return Response(status=204)

    @bp.get("/process/<job_id>/tiles")
    def list_tiles(job_id: str):
        status = request.args.get("status")
        if status is not None and status not in TILE_STATUSES:
            return error(400, f"Invalid tile status {status!r}")
        with state.lock:
            job = context.job_or_404(job_id, "v1")
            found = [w for w in job.tiles or [] if status is None or w.status == status]
            return page(found, lambda work: jobs.as_v1_tile(job, work))

    @bp.get("/process/<job_id>/tiles/<int:tile_id>")
    def get_tile(job_id: str, tile_id: int):
        with state.lock:
            job = context.job_or_404(job_id, "v1")
            work = next((w for w in job.tiles or [] if w.tile.id == tile_id), None)
            if work is None:
                return error(404, f"Tile {tile_id} not found")
            return jsonify(jobs.as_v1_tile(job, work))


def _error_400(violations: list[tuple[str, str]]) -> Response:
    """The document's `errors` is an object: the first violation, and all of them."""
    listed = [{"parameter": p, "violation": v} for p, v in violations]
    where, what = violations[0]
    return error(400, f"Invalid request: {where + ': ' if where else ''}{what}", {**listed[0], "violations": listed})
