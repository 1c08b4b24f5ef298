"""Batch API v1 routes (`/api/v1/batch`, deprecated but in use): create, list, get, PUT, DELETE,
analyse/start/cancel/restartpartial, tiles (with `status`) and one tile, tiling grids."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from reconciler.api.checks import check_v1
from reconciler.api.models import v1
from reconciler.sandbox import jobs
from reconciler.sandbox.delivery import buckets_of
from reconciler.sandbox.app import Context, error, grid_by_id, grids_page, json_body, page, sorted_jobs
from reconciler.sandbox.routes_v2 import findings_error, validation_error

TILE_STATUSES = ("PENDING", "SCHEDULED", "QUEUED", "PROCESSING", "PROCESSED", "FAILED")


def v1_blueprint(context: Context) -> Blueprint:
    bp = Blueprint("v1", __name__)
    state = context.state

    @bp.post("/process")
    def create():
        body = json_body()
        try:
            findings = check_v1(v1.CreateBody.model_validate(body))
        except ValidationError as e:
            return validation_error(e)
        if findings:
            return findings_error(findings)
        for bucket in buckets_of(body):
            context.ensure_bucket(bucket)
        with state.lock:
            job = jobs.new_job("v1", body, context.clock(), state.next_sequence(), context.faults.seed)
            state.add(job)
            return jsonify(jobs.as_v1_request(job)), 201

    @bp.get("/process")
    def list_requests():
        with state.lock:
            return page(sorted_jobs(state.jobs("v1")), jobs.as_v1_request)

    @bp.get("/process/<request_id>")
    def get_request(request_id: str):
        with state.lock:
            return jsonify(jobs.as_v1_request(context.job_or_404(request_id, "v1")))

    @bp.put("/process/<request_id>")
    def put_request(request_id: str):
        body = json_body()
        if not isinstance(body.get("description", ""), str):
            return error(400, "`description` must be a string")
        with state.lock:
            job = context.job_or_404(request_id, "v1")
            if "description" in body:
                jobs.update_description(job, body["description"], context.clock())
                state.save(job)
            return jsonify(jobs.as_v1_request(job))

    @bp.delete("/process/<request_id>")
    def delete_request(request_id: str):
        with state.lock:
            job = context.job_or_404(request_id, "v1")
            jobs.check_deletable(job)
            state.remove(job.id)
        return Response(status=204)

    @bp.get("/process/<request_id>/tiles")
    def list_tiles(request_id: str):
        status = request.args.get("status")
        if status is not None and status not in TILE_STATUSES:
            return error(400, f"Invalid tile status {status!r}")
        with state.lock:
            job = context.job_or_404(request_id, "v1")
            found = [w for w in job.tiles or [] if status is None or w.status == status]
            return page(found, lambda work: jobs.as_v1_tile(job, work))

    @bp.get("/process/<request_id>/tiles/<int:tile_id>")
    def get_tile(request_id: str, tile_id: int):
        with state.lock:
            job = context.job_or_404(request_id, "v1")
            work = next((w for w in job.tiles or [] if w.tile.id == tile_id), None)
            if work is None:
                return error(404, f"Tile {tile_id} not found")
            return jsonify(jobs.as_v1_tile(job, work))

    def action(name: str, apply):
        def handler(request_id: str):
            with state.lock:
                job = context.job_or_404(request_id, "v1")
                apply(job)
                state.save(job)
            return Response(status=204)

        bp.add_url_rule(f"/process/<request_id>/{name}", f"v1_{name}", handler, methods=["POST"])

    action("analyse", lambda job: jobs.analyse(job, context.clock(), context.analysis_seconds()))
    action("start", lambda job: jobs.start(job, context.clock(), context.analysis_seconds()))
    action("cancel", lambda job: jobs.cancel(job, context.clock()))
    action("restartpartial", lambda job: jobs.restart_partial(job, context.clock()))
    bp.add_url_rule("/tilinggrids", "v1_grids", grids_page)
    bp.add_url_rule("/tilinggrids/<int:grid_id>", "v1_grid", grid_by_id)
    return bp

