"""Batch API v2 routes (`/api/v2/batch`): create, list, get, PUT description, analyse/start/stop,
tiling grids."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import ValidationError

from reconciler.api.checks import check_v2
from reconciler.api.models import v2
from reconciler.sandbox import jobs
from reconciler.sandbox.delivery import buckets_of
from reconciler.sandbox.app import Context, error, grid_by_id, grids_page, json_body, page, sorted_jobs


def validation_error(e: ValidationError) -> Response:
    violations = [{"parameter": ".".join(str(p) for p in err["loc"]), "violation": err["msg"]}
                  for err in e.errors(include_url=False)]
    return error(400, f"Invalid request: {violations[0]['parameter']}: {violations[0]['violation']}", _errors(violations))


def findings_error(findings) -> Response:
    violations = [{"parameter": ".".join(str(p) for p in f.path), "violation": f.message} for f in findings]
    return error(400, f"Invalid request: {findings[0].message}", _errors(violations))


def _errors(violations: list[dict]) -> dict:
    """The document's `errors` is an object: the first violation, and all of them."""
    return {**violations[0], "violations": violations}


def v2_blueprint(context: Context) -> Blueprint:
    bp = Blueprint("v2", __name__)
    state = context.state

    @bp.post("/process")
    def create():
        body = json_body()
        try:
            findings = check_v2(v2.CreateBody.model_validate(body))
        except ValidationError as e:
            return validation_error(e)
        if findings:
            return findings_error(findings)
        for bucket in buckets_of(body):
            context.ensure_bucket(bucket)
        with state.lock:
            job = jobs.new_job("v2", body, context.clock(), state.next_sequence(), context.faults.seed)
            state.add(job)
            return jsonify(jobs.as_task(job)), 201

    @bp.get("/process")
    def list_tasks():
        with state.lock:
            found = sorted_jobs(state.jobs("v2"))
            return page(found, jobs.as_task)

    @bp.get("/process/<task_id>")
    def get_task(task_id: str):
        with state.lock:
            return jsonify(jobs.as_task(context.job_or_404(task_id, "v2")))

    @bp.put("/process/<task_id>")
    def put_task(task_id: str):
        body = json_body()
        if not isinstance(body.get("description", ""), str):
            return error(400, "`description` must be a string")
        with state.lock:
            job = context.job_or_404(task_id, "v2")
            if "description" in body:
                jobs.update_description(job, body["description"], context.clock())
                state.save(job)
            return jsonify(job.request)

    def action(name: str, apply):
        def handler(task_id: str):
            with state.lock:
                job = context.job_or_404(task_id, "v2")
                apply(job)
                state.save(job)
            return Response(status=204)

        bp.add_url_rule(f"/process/<task_id>/{name}", f"v2_{name}", handler, methods=["POST"])

    action("analyse", lambda job: jobs.analyse(job, context.clock(), context.analysis_seconds()))
    action("start", lambda job: jobs.start(job, context.clock(), context.analysis_seconds()))
    action("stop", lambda job: jobs.stop(job, context.clock()))
    bp.add_url_rule("/tilinggrids", "v2_grids", grids_page)
    bp.add_url_rule("/tilinggrids/<int:grid_id>", "v2_grid", grid_by_id)
    return bp


