"""The planner, table-driven: every (API, live status, spec.state) cell with the expected action,
then the policies (maxRestarts, maxCostPU, onSpecChange, onRemove), missing and stale-deleted
jobs, adoption by marker, and the unmanaged listing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from reconciler.batch.live import LiveJob
from reconciler.canonical import spec_hash
from reconciler.engine.actions import Kind
from reconciler.engine.identity import with_marker
from reconciler.engine.plan import PlanOptions, plan
from reconciler.manifests.loader import load
from reconciler.state.model import JobState, Lockfile
from tests.conftest import copy_evalscripts

PROCESS = {
    "input": {"bounds": {"bbox": [8.44, 41.31, 9.66, 43.1]},
              "data": [{"type": "sentinel-2-l2a", "dataFilter": {"timeRange": {
                  "from": "2019-04-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"}}}]},
    "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
    "evalscript": "//VERSION=3\nfunction setup() { return {input: ['B04'], output: {bands: 1}}; }",
}
V2_REQUEST = {"processRequest": PROCESS, "input": {"type": "tiling-grid", "id": 0, "resolution": 60},
              "output": {"type": "raster", "delivery": {"s3": {"url": "s3://bucket/prefix"}}}}
V1_REQUEST = {"processRequest": PROCESS, "tilingGrid": {"id": 0, "resolution": 60}, "bucketName": "bucket"}


def manifest(tmp_path, name="job", api="v2", state="started", policy=None, description="a job", request=None):
    request = request or (V1_REQUEST if api == "v1" else V2_REQUEST)
    spec = {"api": api, "state": state, "description": description, "request": request, "policy": policy or {}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"apiVersion": "reconciler/v1", "kind": "BatchJob", "metadata": {"name": name},
                                "spec": spec}))
    result = load([path])
    assert not result.errors, result.errors
    return result.manifests[0]


def live(name="job", api="v2", status="CREATED", job_id="id-1", description="a job", request=None, cost=None,
         user_action=None):
    request = request or (V1_REQUEST if api == "v1" else V2_REQUEST)
    return LiveJob(id=job_id, api=api, status=status, description=with_marker(description, name) if name else description,
                   request=request, created=datetime(2026, 11, 1, tzinfo=UTC), cost_pu=cost,
                   user_action=user_action)


def record(m=None, api="v2", job_id="id-1", status="CREATED", restarts=0, on_remove="forget", spec="any"):
    hash_ = spec_hash(m.api, m.body) if m is not None else spec
    return JobState(id=job_id, api=api, specHash=hash_, status=status, restarts=restarts, onRemove=on_remove)


def kinds(manifests, lives, records=None, options=PlanOptions(), estimate=lambda m: None):
    made = plan(manifests, lives, Lockfile(lineage="lineage", jobs=records or {}), options, estimate)
    return [(a.name, a.kind) for a in made.actions], made


N, A, S, W, B, X, R = Kind.NOOP, Kind.ANALYSE, Kind.START, Kind.WAIT, Kind.BLOCKED, Kind.STOP, Kind.RESTART
STATES = ("created", "analysed", "started", "stopped")
# live status → expected kind for spec.state created, analysed, started, stopped (default policy)
COMMON = {
    "CREATED": (N, A, S, N),
    "ANALYSING": (N, W, W, X),
    "ANALYSIS_DONE": (N, N, S, N),
    "PROCESSING": (N, N, W, X),
    "DONE": (N, N, N, N),
    "FAILED": (N, N, B, N),  # maxRestarts 0: a v2 re-run is not allowed, v1 has none
}
TABLE = {
    "v2": {**COMMON, "STOPPED": (N, N, S, N)},
    "v1": {**COMMON, "PARTIAL": (N, N, B, N), "CANCELED": (N, N, B, N)},
}
CELLS = [(api, status, state, expected[i]) for api, rows in TABLE.items()
         for status, expected in rows.items() for i, state in enumerate(STATES)]


@pytest.mark.parametrize("api, status, state, expected", CELLS, ids=[f"{a}-{s}-{d}" for a, s, d, _ in CELLS])
def test_every_cell(tmp_path, api, status, state, expected):
    m = manifest(tmp_path, api=api, state=state)
    actions, _ = kinds([m], [live(api=api, status=status)], {"job": record(m, api=api, status=status)})
    assert actions == [("job", expected)]


def test_restart_of_partial_v1_within_max_restarts(tmp_path):
    m = manifest(tmp_path, api="v1", policy={"maxRestarts": 2})
    for restarts, expected in ((0, Kind.RESTART), (1, Kind.RESTART), (2, Kind.BLOCKED)):
        actions, made = kinds([m], [live(api="v1", status="PARTIAL")], {"job": record(m, api="v1", restarts=restarts)})
        assert actions == [("job", expected)]
    assert "maxRestarts is 2" in made.actions[0].reasons[0]


def with_url(url: str) -> dict:
    request = json.loads(json.dumps(V2_REQUEST))
    request["output"]["delivery"]["s3"]["url"] = url
    return request


SKIP = ("output.skipExisting", True)
# delivery URL of the manifest → overrides of a re-run of the FAILED request "id-1": the re-run
# writes where the failed run wrote, so skipExisting finds its tiles
RERUN_PATHS = {
    "s3://bucket/prefix": (SKIP, ("output.delivery.s3.url", "s3://bucket/prefix/id-1/<tileName>/<outputId>.<format>")),
    "s3://bucket/prefix/": (SKIP, ("output.delivery.s3.url", "s3://bucket/prefix/id-1/<tileName>/<outputId>.<format>")),
    "s3://bucket/<requestId>/<tileName>.tif": (SKIP, ("output.delivery.s3.url", "s3://bucket/id-1/<tileName>.tif")),
    "s3://bucket/fixed/<tileName>/<outputId>.<format>": (SKIP,),  # no request id in the path: nothing to pin
}


@pytest.mark.parametrize("url", sorted(RERUN_PATHS))
def test_failed_v2_reruns_where_the_failed_run_wrote_and_pays_for_the_tiles_left(tmp_path, url):
    m = manifest(tmp_path, policy={"maxRestarts": 3}, request=with_url(url))
    failed = live(status="FAILED", request=with_url(url))
    failed = replace(failed, completion=70.0)
    actions, made = kinds([m], [failed], {"job": record(m, status="FAILED")}, estimate=lambda _: 100.0)
    [rerun] = made.actions
    assert actions == [("job", Kind.REPLACE)] and rerun.steps == ("create", "start")
    assert rerun.overrides == RERUN_PATHS[url]
    assert (rerun.cost_pu, rerun.cost_source) == (30.0, "estimate") and "30% of the tiles left" in rerun.reasons[-1]
    assert made.cost() == 30.0
    _, spent = kinds([m], [failed], {"job": record(m, status="FAILED", restarts=3)})
    assert spent.actions[0].kind is Kind.BLOCKED


def test_a_rerun_is_no_spec_change_and_a_second_rerun_writes_where_the_first_run_wrote(tmp_path):
    m = manifest(tmp_path, policy={"maxRestarts": 3})
    first = RERUN_PATHS["s3://bucket/prefix"]
    rerun_request = with_url(dict(first)["output.delivery.s3.url"])
    rerun_request["output"]["skipExisting"] = True
    kept = replace(record(m, job_id="id-2", status="PROCESSING", restarts=1), rerunOf="id-1")
    actions, _ = kinds([m], [live(job_id="id-2", status="PROCESSING", request=rerun_request)], {"job": kept})
    assert actions == [("job", Kind.WAIT)]  # not "blocked: output.skipExisting: true"
    failed = replace(live(job_id="id-2", status="FAILED", request=rerun_request), completion=90.0)
    _, made = kinds([m], [failed], {"job": replace(kept, status="FAILED")}, estimate=lambda _: 100.0)
    [again] = made.actions
    assert again.kind is Kind.REPLACE and again.overrides == first and again.rerun_of == "id-1" and again.cost_pu == 10.0
    assert "re-run 2 of 3" in again.reasons[-1]


def test_many_reruns_in_one_plan_are_each_compared_with_their_own_body(tmp_path):
    """Each re-run's desired body is made for its own comparison and then dropped: a digest kept by
    that body's identity would be handed to the next re-run whose body landed at the same address."""
    manifests, lives, records = [], [], {}
    for i in range(40):
        name = f"job-{i}"
        m = manifest(tmp_path, name=name, policy={"maxRestarts": 3}, request=with_url(f"s3://bucket/run-{i}"))
        rerun_request = with_url(f"s3://bucket/run-{i}/first-{i}/<tileName>/<outputId>.<format>")
        rerun_request["output"]["skipExisting"] = True
        manifests.append(m)
        lives.append(live(name=name, job_id=f"id-{i}", status="PROCESSING", request=rerun_request))
        records[name] = replace(record(m, job_id=f"id-{i}", status="PROCESSING", restarts=1),
                                rerunOf=f"first-{i}")
    actions, _ = kinds(manifests, lives, records)
    assert actions == [(m.name, Kind.WAIT) for m in sorted(manifests, key=lambda m: m.name)]


def test_a_failed_request_the_service_deleted_is_rerun_where_it_wrote_and_a_zarr_one_is_not(tmp_path):
    m = manifest(tmp_path, policy={"maxRestarts": 1})
    _, made = kinds([m], [], {"job": record(m, job_id="gone-1", status="FAILED")}, estimate=lambda _: 100.0)
    [rerun] = made.actions
    assert rerun.kind is Kind.CREATE and dict(rerun.overrides)["output.delivery.s3.url"].startswith("s3://bucket/prefix/gone-1/")
    assert rerun.cost_pu == 100.0 and "not known" in rerun.reasons[-1]
    from tests.conftest import EXAMPLES

    text = (EXAMPLES / "corsica-max-ndvi-zarr.yaml").read_text().replace("maxCostPU: 5000", "maxRestarts: 2")
    (tmp_path / "zarr.yaml").write_text(text)
    copy_evalscripts(tmp_path)
    [zarr] = load([tmp_path / "zarr.yaml"]).manifests
    failed = live(zarr.name, status="FAILED", request=zarr.body, description=zarr.description)
    _, made = kinds([zarr], [failed], {zarr.name: record(zarr, status="FAILED")})
    [blocked] = made.actions
    assert blocked.kind is Kind.BLOCKED and "a Zarr output cannot skip existing tiles" in blocked.reasons[1]


def test_resuming_a_stopped_job_and_restarting_a_partial_one_cost_what_is_left(tmp_path):
    m = manifest(tmp_path)
    stopped = replace(live(status="STOPPED", cost=40.0), completion=25.0)
    _, made = kinds([m], [stopped], {"job": record(m, status="STOPPED")}, estimate=lambda _: 200.0)
    [start] = made.actions
    assert (start.kind, start.cost_pu, start.cost_source) == (Kind.START, 150.0, "estimate")  # not the 40 spent
    v1 = manifest(tmp_path, name="old", api="v1", policy={"maxRestarts": 1})
    partial = replace(live("old", api="v1", status="PARTIAL", cost=66.0), tile_count=66, failed_tiles=6)
    _, made = kinds([v1], [partial], {"old": record(v1, api="v1", status="PARTIAL")})
    [restart] = made.actions
    assert (restart.kind, restart.cost_pu) == (Kind.RESTART, 6.0) and "6 of 66" in restart.reasons[0]
    assert made.cost() == 6.0


def test_max_cost_blocks_a_start_with_the_figure_shown(tmp_path):
    m = manifest(tmp_path, policy={"maxCostPU": 100})
    actions, made = kinds([m], [live(status="ANALYSIS_DONE", cost=250.0)], {"job": record(m, status="ANALYSIS_DONE")})
    assert actions == [("job", Kind.BLOCKED)] and "250.0 PU exceeds maxCostPU 100.0" in made.actions[0].reasons[-1]
    actions, made = kinds([m], [live(status="ANALYSIS_DONE", cost=99.0)], {"job": record(m, status="ANALYSIS_DONE")})
    assert actions == [("job", Kind.START)] and made.actions[0].cost_source == "service"
    # not analysed yet: analyse first, start once the service's figure is known (if the offline one fits)
    actions, made = kinds([m], [live(status="CREATED")], {"job": record(m)}, estimate=lambda _: 80.0)
    assert actions == [("job", Kind.ANALYSE)] and made.actions[0].steps == ("analyse", "start-within-budget")
    actions, _ = kinds([m], [live(status="CREATED")], {"job": record(m)}, estimate=lambda _: 120.0)
    assert actions == [("job", Kind.BLOCKED)]


def test_new_jobs_are_created_with_their_follow_up_steps(tmp_path):
    plain = manifest(tmp_path, name="plain")
    budget = manifest(tmp_path, name="budget", policy={"maxCostPU": 1000})
    analysed = manifest(tmp_path, name="analysed", state="analysed")
    expensive = manifest(tmp_path, name="expensive", policy={"maxCostPU": 10})
    actions, made = kinds([plain, budget, analysed, expensive], [], estimate=lambda _: 50.0)
    assert actions == [("analysed", Kind.CREATE), ("budget", Kind.CREATE), ("expensive", Kind.BLOCKED),
                       ("plain", Kind.CREATE)]
    steps = {a.name: a.steps for a in made.actions}
    assert steps == {"analysed": ("create", "analyse"), "budget": ("create", "analyse", "start-within-budget"),
                     "expensive": (), "plain": ("create", "start")}
    assert made.cost() == 100.0  # the two that will run


def test_spec_change_is_blocked_unless_replacement_is_allowed(tmp_path):
    changed = {**V2_REQUEST, "input": {"type": "tiling-grid", "id": 0, "resolution": 20}}
    m = manifest(tmp_path, request=changed)
    actions, made = kinds([m], [live(status="PROCESSING")], {"job": record(m, status="PROCESSING")})
    assert actions == [("job", Kind.BLOCKED)]
    assert [(c.path, c.before, c.after) for c in made.actions[0].changes] == [("input.resolution", 60, 20)]
    actions, made = kinds([m], [live(status="PROCESSING")], {"job": record(m, status="PROCESSING")},
                          PlanOptions(allow_replace=True))
    assert actions == [("job", Kind.REPLACE)] and made.actions[0].steps == ("create", "stop-old", "start")
    m = manifest(tmp_path, request=changed, policy={"onSpecChange": "replace"})
    actions, made = kinds([m], [live(status="DONE")], {"job": record(m, status="DONE")})
    assert actions == [("job", Kind.REPLACE)] and made.actions[0].steps == ("create", "start")


def test_description_updates_in_place_and_waits_while_processing(tmp_path):
    m = manifest(tmp_path, description="new words")
    actions, made = kinds([m], [live(status="DONE", description="old words")], {"job": record(m, status="DONE")})
    assert actions == [("job", Kind.UPDATE)]
    assert [(c.path, c.before, c.after) for c in made.actions[0].changes] == [("description", "old words", "new words")]
    actions, _ = kinds([m], [live(status="PROCESSING", description="old words")], {"job": record(m)})
    assert actions == [("job", Kind.WAIT)]  # one job waits once, with both reasons
    actions, _ = kinds([m], [live(status="ANALYSIS_DONE", description="old words")], {"job": record(m)})
    assert actions == [("job", Kind.UPDATE), ("job", Kind.START)]


@pytest.mark.parametrize("last_status, expected", [
    ("DONE", Kind.NOOP),  # finished, then deleted as stale: never paid for twice
    ("PARTIAL", Kind.NOOP),
    ("CREATED", Kind.CREATE),  # deleted before it started: made again
    ("ANALYSIS_DONE", Kind.CREATE),
    ("PROCESSING", Kind.BLOCKED),  # vanished mid-run: a human decides
    ("STOPPED", Kind.BLOCKED),
    ("FAILED", Kind.BLOCKED),
])
def test_a_recorded_job_that_is_gone(tmp_path, last_status, expected):
    m = manifest(tmp_path)
    actions, made = kinds([m], [], {"job": record(m, status=last_status)})
    assert actions == [("job", expected)], made.actions[0].reasons


def test_a_gone_finished_job_runs_again_only_when_its_manifest_changed_and_replacement_is_allowed(tmp_path):
    m = manifest(tmp_path, policy={"onSpecChange": "replace"})
    assert kinds([m], [], {"job": record(m, status="DONE")})[0] == [("job", Kind.NOOP)]
    assert kinds([m], [], {"job": record(None, status="DONE", spec="older")})[0] == [("job", Kind.CREATE)]


def test_removed_manifests_are_forgotten_or_stopped(tmp_path):
    forget = {"job": record(None, status="PROCESSING")}
    actions, made = kinds([], [live(status="PROCESSING")], forget)
    assert actions == [("job", Kind.FORGET)] and made.actions[0].steps == ("forget",)
    stop = {"job": record(None, status="PROCESSING", on_remove="stop")}
    actions, made = kinds([], [live(status="PROCESSING")], stop)
    assert actions == [("job", Kind.FORGET)] and made.actions[0].steps == ("stop", "forget")


def test_adoption_by_marker_and_the_unmanaged_listing(tmp_path):
    m = manifest(tmp_path)
    found = live(status="ANALYSIS_DONE", job_id="found")
    stranger = live(name=None, description="someone else's job", job_id="stranger")
    foreign = live(name="elsewhere", job_id="foreign")
    actions, made = kinds([m], [found, stranger, foreign])
    assert actions == [("job", Kind.ADOPT), ("job", Kind.START)]
    assert made.actions[0].job_id == "found"
    assert [(u.id, u.note) for u in made.unmanaged] == [("foreign", "marked for a name no manifest has"), ("stranger", "")]


def test_targets_limit_the_plan(tmp_path):
    a, b = manifest(tmp_path, name="a"), manifest(tmp_path, name="b")
    actions, _ = kinds([a, b], [], options=PlanOptions(targets=frozenset({"b"})))
    assert actions == [("b", Kind.CREATE)]


def test_same_inputs_same_plan(tmp_path):
    m = manifest(tmp_path)
    first = kinds([m], [live(status="DONE")], {"job": record(m, status="DONE")})[1]
    second = kinds([m], [live(status="DONE")], {"job": record(m, status="DONE")})[1]
    assert first == second and first.fingerprint == second.fingerprint
    moved = kinds([m], [live(status="PROCESSING")], {"job": record(m, status="DONE")})[1]
    assert moved.fingerprint != first.fingerprint


def test_a_path_recorded_sensitive_stays_masked_after_the_manifest_stops_referencing_a_secret(tmp_path):
    """`description: "x ${env:S}"` was applied; the manifest now says "x plain": the live value
    is still the secret, and the plan shows neither it nor a digest of it (DESIGN §4)."""
    secret = "the-resolved-secret-value"
    m = manifest(tmp_path, description="x plain")
    masked = replace(record(m), sensitivePaths=[["description"], ["output", "delivery", "s3", "url"]])
    request = json.loads(json.dumps(V2_REQUEST))
    request["output"]["delivery"]["s3"]["url"] = f"s3://{secret}"
    _, made = kinds([m], [live(description=f"x {secret}")], {"job": masked})
    update = next(a for a in made.actions if a.kind is Kind.UPDATE)
    assert [(c.path, c.before, c.after) for c in update.changes] == [("description", "(sensitive)", "(sensitive)")]
    _, changed = kinds([m], [live(description="x plain", request=request)], {"job": masked})
    [blocked] = changed.actions
    assert blocked.kind is Kind.BLOCKED and [(c.path, c.before, c.after) for c in blocked.changes] == [
        ("output.delivery.s3.url", "(sensitive)", "(sensitive)")]
    assert secret not in repr(made) + repr(changed)
    # a live request that still equals the manifest at a masked path is no change at all
    _, same = kinds([m], [live(description="x plain")], {"job": masked})
    assert [a.kind for a in same.actions] == [Kind.START]


def test_text_from_the_service_is_scrubbed_and_bounded(tmp_path):
    from reconciler import redaction

    redaction.remember(["known-secret-value"])
    m = manifest(tmp_path)
    error = "refused body {\"secretAccessKey\": \"known-secret-value\"} " + "x" * 10_000
    failed = LiveJob(id="id-1", api="v2", status="FAILED", description=with_marker("a job", "job"), request=V2_REQUEST,
                     error=redaction.from_service(error))
    stranger = LiveJob(id="other", api="v2", status="DONE", description="known-secret-value " + "y" * 10_000,
                       request=V2_REQUEST)
    _, made = kinds([m], [failed, stranger], {"job": record(m, status="FAILED")})
    assert "known-secret-value" not in repr(made)
    [blocked] = made.actions
    assert len(blocked.reasons[0]) <= redaction.MAX_TEXT + 10
    [unmanaged] = made.unmanaged
    assert unmanaged.description.startswith("(sensitive) yyy") and len(unmanaged.description) == redaction.MAX_TEXT


def test_a_rerun_of_a_secret_delivery_url_never_shows_or_stores_it(tmp_path, monkeypatch):
    """The re-run's delivery path is made from the manifest's URL: from `${env:…}`, it is a secret,
    masked in the plan (and never recorded: the lockfile keeps the request id it reuses)."""
    request = with_url("${env:RESULT_URL}")
    path = tmp_path / "job.yaml"
    spec = {"api": "v2", "description": "a job", "request": request, "policy": {"maxRestarts": 2}}
    path.write_text(json.dumps({"apiVersion": "reconciler/v1", "kind": "BatchJob", "metadata": {"name": "job"},
                                "spec": spec}))
    [m] = load([path], resolve_env=True, environ={"RESULT_URL": "s3://secret-bucket/hidden"}).manifests
    failed = live(status="FAILED", request=with_url("s3://secret-bucket/hidden"))
    _, made = kinds([m], [failed], {"job": record(m, status="FAILED")})
    [rerun] = made.actions
    assert rerun.kind is Kind.REPLACE and rerun.rerun_of == "id-1"
    assert dict(rerun.overrides) == {"output.skipExisting": True, "output.delivery.s3.url": "(sensitive)"}
    assert "secret-bucket" not in repr(made)

