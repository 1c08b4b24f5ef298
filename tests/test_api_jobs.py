"""`JobsApi` and `LiveJob` over a faked HTTP layer: how v1 requests and v2 tasks map to one live
job, which call each version's action becomes, statuses the models do not know yet, and the
actions v2 does not have."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
import responses
from responses import matchers

from reconciler.api import errors
from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi, UnsupportedAction
from reconciler.api.session import ApiSession
from reconciler.batch.live import LiveJob, TolerantBatchRequest, TolerantTask, live_job_from_v1, live_job_from_v2
from reconciler.batch.models import v1, v2
from reconciler.settings import ApiSettings
from tests.test_api_client import BASE, SECRET, TOKEN_URL, FakeTime, calls_to, give_token

V1 = f"{BASE}/api/v1/batch/process"
V2 = f"{BASE}/api/v2/batch/process"
CREATED = "2024-05-01T10:00:00Z"
BODY_V2 = {"processRequest": {"evalscript": "//VERSION=3"}, "input": {"type": "tiling-grid", "id": 0, "resolution": 60},
           "output": {"type": "raster", "delivery": {"s3": {"url": "s3://bucket/prefix"}}},
           "description": "Max NDVI [reconciler:corsica]"}
BODY_V1 = {"processRequest": {"evalscript": "//VERSION=3"}, "tilingGrid": {"id": 0, "resolution": 60.0},
           "bucketName": "bucket", "description": "Max NDVI [reconciler:corsica]"}


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client(rsps) -> BatchClient:
    give_token(rsps)
    time_ = FakeTime()
    config = ApiSettings("client-1", SECRET, base_url=BASE, token_url=TOKEN_URL)
    return BatchClient(session=ApiSession(config, sleep=time_.sleep, clock=time_.clock, jitter=lambda: 1.0))


@pytest.fixture
def jobs_v1(client) -> JobsApi:
    return JobsApi(client, "v1")


@pytest.fixture
def jobs_v2(client) -> JobsApi:
    return JobsApi(client, "v2")


def task(task_id: str = "t-1", status: str = "CREATED", **fields) -> dict:
    return {"id": task_id, "request": BODY_V2, "domainAccountId": "acc", "status": status, "userAction": "NONE",
            "created": CREATED, "completionPercentage": 0, **fields}


def batch_request(request_id: str = "r-1", status: str = "CREATED", **fields) -> dict:
    return {"id": request_id, **BODY_V1, "status": status, "userAction": "NONE", "created": CREATED,
            "userId": "u-1", "tileWidthPx": 2004, **fields}


def page(items: list[dict]) -> dict:
    return {"data": items, "links": {}}


# -- LiveJob -----------------------------------------------------------------------------------


def test_v2_task_maps_to_a_live_job():
    t = v2.Task.model_validate(task("t-9", "STOPPED", userAction="STOP", costPU=41.5, completionPercentage=37.0,
                                    stoppedStatusReason="OUT_OF_PU", error="ran out"))
    assert live_job_from_v2(t) == LiveJob(
        id="t-9", api="v2", status="STOPPED", description="Max NDVI [reconciler:corsica]", request=BODY_V2,
        created=datetime(2024, 5, 1, 10, tzinfo=UTC), cost_pu=41.5, completion=37.0, tile_count=None,
        user_action="STOP", error="ran out", stopped_reason="OUT_OF_PU")


def test_v1_request_maps_to_a_live_job_with_the_body_it_echoes():
    r = v1.BatchRequest.model_validate(batch_request("r-9", "PARTIAL", userAction="START", valueEstimate=12.0,
                                                     tileCount=66, output=None, error="3 tiles failed"))
    assert live_job_from_v1(r) == LiveJob(
        id="r-9", api="v1", status="PARTIAL", description="Max NDVI [reconciler:corsica]", request=BODY_V1,
        created=datetime(2024, 5, 1, 10, tzinfo=UTC), cost_pu=12.0, completion=None, tile_count=66,
        user_action="START", error="3 tiles failed", stopped_reason=None)


def test_v1_body_keeps_only_fields_the_service_sent():
    zarr = {"path": "bucket/<requestId>", "group": {"zarr_format": 2}}
    r = v1.BatchRequest.model_validate({"id": "r-1", "status": "CREATED", "tilingGrid": {"id": 6, "resolution": 100},
                                        "zarrOutput": zarr})
    job = live_job_from_v1(r)
    assert job.request == {"tilingGrid": {"id": 6, "resolution": 100}, "zarrOutput": zarr}  # no default processRequest
    assert job.description is None and job.created is None and job.user_action is None


def test_live_job_is_frozen_and_takes_the_tasks_request_without_copying():
    """A listing's tasks are made for the LiveJobs and then dropped: copying 10,000 requests would
    cost a second per plan (bench/RESULTS.md) for nothing."""
    t = v2.Task.model_validate(task())
    job = live_job_from_v2(t)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = "DONE"  # type: ignore[misc]
    assert job.request == task()["request"] and job.request is t.request


# -- statuses the models do not know -----------------------------------------------------------


def test_v2_listing_keeps_unknown_statuses(jobs_v2, rsps):
    rsps.get(V2, json=page([task("a", "DONE"), task("b", "QUEUED_FOR_MAGIC", userAction="PAUSE",
                                                           stoppedStatusReason="SOLAR_FLARE"), task("c", "FAILED")]))
    listed = list(jobs_v2.list_jobs())
    assert [(j.id, j.status) for j in listed] == [("a", "DONE"), ("b", "QUEUED_FOR_MAGIC"), ("c", "FAILED")]
    assert (listed[1].user_action, listed[1].stopped_reason) == ("PAUSE", "SOLAR_FLARE")


def test_v1_listing_keeps_unknown_statuses(jobs_v1, rsps):
    rsps.get(V1, json=page([batch_request("a", "PARTIAL"), batch_request("b", "ARCHIVED", userAction="RESTART")]))
    assert [(j.id, j.status, j.user_action) for j in jobs_v1.list_jobs()] == [
        ("a", "PARTIAL", "NONE"), ("b", "ARCHIVED", "RESTART")]


def test_tolerant_models_keep_known_values_as_enum_members():
    assert TolerantTask.model_validate(task(status="DONE")).status is v2.TaskStatus.DONE
    assert TolerantTask.model_validate(task(status="NEW")).status == "NEW"
    assert TolerantBatchRequest.model_validate(batch_request(status="PARTIAL")).status is v1.RequestStatus.PARTIAL


def test_the_strict_clients_still_refuse_unknown_statuses(client, rsps):
    rsps.get(V2, json=page([task("b", "QUEUED_FOR_MAGIC")]))
    rsps.get(V1, json=page([batch_request("b", "ARCHIVED")]))
    for listing in (client.v2.iter_tasks, client.v1.iter_requests):
        with pytest.raises(errors.ApiUnavailable, match="status"):
            list(listing())


@pytest.mark.parametrize("broken", [{"status": 7}, {"status": ""}, {"status": None}, {"id": None}])
def test_a_malformed_item_fails_the_listing_instead_of_vanishing(jobs_v1, jobs_v2, rsps, broken):
    """A job left out of the refresh would look deleted, and the plan would create it again."""
    rsps.get(V2, json=page([task("a"), {**task("b"), **broken}]))
    rsps.get(V1, json=page([batch_request("a"), {**batch_request("b"), **broken}]))
    for jobs in (jobs_v1, jobs_v2):
        with pytest.raises(errors.ApiUnavailable, match="unexpected answer"):
            list(jobs.list_jobs())


def test_get_and_create_keep_unknown_statuses(jobs_v1, jobs_v2, rsps):
    rsps.get(f"{V2}/t-1", json=task(status="WARMING_UP"))
    rsps.get(f"{V1}/r-1", json=batch_request(status="WARMING_UP"))
    rsps.post(V2, status=201, json=task("t-new", "PENDING_REVIEW"))
    rsps.post(V1, status=201, json=batch_request("r-new", "PENDING_REVIEW"))
    assert jobs_v2.get("t-1").status == jobs_v1.get("r-1").status == "WARMING_UP"
    assert (jobs_v2.create(BODY_V2).id, jobs_v1.create(BODY_V1).id) == ("t-new", "r-new")


def test_tiles_keep_unknown_tile_statuses(jobs_v1, rsps):
    rsps.get(f"{V1}/r-1/tiles", json=page([{"id": 1, "status": "PROCESSED"}, {"id": 2, "status": "RETRYING"}]))
    assert [t.status for t in jobs_v1.tiles("r-1")] == [v1.TileStatus.PROCESSED, "RETRYING"]


# -- calls of each version ---------------------------------------------------------------------


@pytest.mark.parametrize("api, url, item", [("v1", V1, batch_request), ("v2", V2, task)])
def test_list_jobs_pages_and_searches(client, rsps, api, url, item):
    rsps.get(url, json={"data": [item("a"), item("b")], "links": {"nextToken": "n"}},
             match=[matchers.query_param_matcher({"count": "100", "search": "reconciler:"})])
    rsps.get(url, json=page([item("c")]),
             match=[matchers.query_param_matcher({"count": "100", "search": "reconciler:", "viewtoken": "n"})])
    listed = list(JobsApi(client, api).list_jobs(search="reconciler:"))
    assert [(j.id, j.api) for j in listed] == [("a", api), ("b", api), ("c", api)]


@pytest.mark.parametrize("api, url, item, body", [("v1", V1, batch_request, BODY_V1), ("v2", V2, task, BODY_V2)])
def test_create_posts_once_and_maps_the_answer(client, rsps, api, url, item, body):
    rsps.post(url, status=201, json=item("new"))
    job = JobsApi(client, api).create(body)
    assert (job.id, job.api, job.status, job.request) == ("new", api, "CREATED", body)
    assert json.loads(calls_to(rsps, url, "POST")[0].request.body) == body


@pytest.mark.parametrize("api, url", [("v1", V1), ("v2", V2)])
def test_create_is_never_sent_twice(client, rsps, api, url):
    rsps.post(url, status=502)
    with pytest.raises(errors.CreateOutcomeUnknown):
        JobsApi(client, api).create({"description": "x"})
    assert len(calls_to(rsps, url, "POST")) == 1


def test_update_description_puts_it_in_both_versions(jobs_v1, jobs_v2, rsps):
    rsps.put(f"{V2}/t-1", json={**BODY_V2, "description": "new"})  # v2 answers the request
    rsps.put(f"{V1}/r-1", json=batch_request(description="new"))  # v1 answers the whole object
    assert jobs_v2.update_description("t-1", "new") is None and jobs_v1.update_description("r-1", "new") is None
    for url in (f"{V2}/t-1", f"{V1}/r-1"):
        assert json.loads(calls_to(rsps, url, "PUT")[0].request.body) == {"description": "new"}


@pytest.mark.parametrize("api, url, method, path", [
    ("v2", V2, "analyse", "analyse"), ("v2", V2, "start", "start"), ("v2", V2, "stop", "stop"),
    ("v1", V1, "analyse", "analyse"), ("v1", V1, "start", "start"), ("v1", V1, "stop", "cancel"),
    ("v1", V1, "restart", "restartpartial"),
])
def test_actions_become_each_versions_call(client, rsps, api, url, method, path):
    rsps.post(f"{url}/j-1/{path}", status=204)
    assert getattr(JobsApi(client, api), method)("j-1") is None
    assert [c.request.method for c in calls_to(rsps, f"{url}/j-1/{path}")] == ["POST"]


def test_v1_restart_outside_partial_is_the_services_bad_request(jobs_v1, rsps):
    rsps.post(f"{V1}/r-1/restartpartial", status=400, json={"error": {
        "status": 400, "reason": "Bad Request", "message": "Only requests with status PARTIAL can be restarted"}})
    with pytest.raises(errors.BadRequest, match="PARTIAL"):
        jobs_v1.restart("r-1")


def test_v1_delete_and_tiles(jobs_v1, rsps):
    rsps.delete(f"{V1}/r-1", status=204)
    rsps.get(f"{V1}/r-1/tiles", json=page([{"id": 4, "status": "FAILED"}]),
             match=[matchers.query_param_matcher({"count": "100", "status": "FAILED"})])
    assert jobs_v1.delete("r-1") is None
    assert [t.id for t in jobs_v1.tiles("r-1", status="FAILED")] == [4]


@pytest.mark.parametrize("action, hint", [("restart", "skipExisting"), ("delete", "stop the job"),
                                          ("tiles", "completion")])
def test_v2_has_no_restart_delete_or_tiles(jobs_v2, rsps, action, hint):
    with pytest.raises(UnsupportedAction) as info:
        getattr(jobs_v2, action)("t-1")  # raised at the call, before any iteration
    e = info.value
    assert isinstance(e, errors.ApiError) and e.exit_code == 1
    assert "v2" in e.message and "t-1" in e.message and hint in e.hint
    assert len(rsps.calls) == 0  # nothing was sent, not even a token request


def test_unknown_api_version_is_refused(client):
    with pytest.raises(ValueError, match="v3"):
        JobsApi(client, "v3")  # type: ignore[arg-type]
