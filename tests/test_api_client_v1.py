"""The Batch API v1 client over a faked HTTP layer (`responses`): every call's method and path,
paging with the viewtoken, the tiles' status filter, typed errors, and the create-is-sent-once rule.

The session underneath is the one `test_api_client.py` covers in depth; here it only has to be
shown that v1 goes through it the same way. Time is fake, as there.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from reconciler.api import errors
from reconciler.api.client import BatchClient, V1Client
from reconciler.api.session import ApiSession
from reconciler.batch.models import v1
from reconciler.settings import ApiSettings
from tests.test_api_client import BASE, SECRET, TOKEN_URL, FakeTime, calls_to, error_body, give_token, refused, reset

V1 = f"{BASE}/api/v1/batch"
PROCESS = f"{V1}/process"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def time_():
    return FakeTime()


@pytest.fixture
def client(rsps, time_) -> BatchClient:
    give_token(rsps)
    config = ApiSettings("client-1", SECRET, base_url=BASE, token_url=TOKEN_URL)
    return BatchClient(session=ApiSession(config, sleep=time_.sleep, clock=time_.clock, jitter=lambda: 1.0))


@pytest.fixture
def api(client) -> V1Client:
    return client.v1


def request(request_id: str = "r-1", status: str = "CREATED", **fields) -> dict:
    return {"id": request_id, "processRequest": {"evalscript": "//VERSION=3"},
            "tilingGrid": {"id": 0, "resolution": 60}, "bucketName": "bucket", "description": f"job [reconciler:{request_id}]", "status": status,
            "userAction": "NONE", "created": "2024-05-01T10:00:00Z", **fields}


def tile(tile_id: int, status: str = "PENDING") -> dict:
    return {"id": tile_id, "status": status, "geometry": {"type": "Polygon", "coordinates": []}}


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- requests ----------------------------------------------------------------------------------


def test_client_has_both_versions_on_one_session(client, rsps):
    assert isinstance(client.v1, V1Client) and client.v1.base_path == "/api/v1/batch"
    rsps.get(f"{PROCESS}/r-1", json=request())
    rsps.get(f"{BASE}/api/v2/batch/process/t-1", json={"id": "t-1", "request": {}, "status": "DONE"})
    client.v1.get("r-1")
    client.v2.get("t-1")
    assert len(calls_to(rsps, TOKEN_URL)) == 1  # one token for both versions


def test_create_posts_the_body_once_and_returns_the_request(api, rsps):
    body = {"processRequest": {"evalscript": "//VERSION=3"}, "tilingGrid": {"id": 0, "resolution": 60.0},
            "bucketName": "bucket", "description": "Max NDVI [reconciler:corsica]"}
    rsps.post(PROCESS, status=201, json=request("new", valueEstimate=None))
    created = api.create(body)
    assert isinstance(created, v1.BatchRequest) and created.id == "new"
    assert created.status is v1.RequestStatus.CREATED and created.bucketName == "bucket"
    [call] = calls_to(rsps, PROCESS, "POST")
    assert json.loads(call.request.body) == body


@pytest.mark.parametrize("failure", [
    {"status": 500}, {"status": 503, "json": error_body(503, "Service Unavailable", "overloaded", "COMMON_EXCEPTION")},
    {"body": requests.ReadTimeout()}, {"body": reset()},
    {"status": 201, "body": "<html>not json</html>"}, {"status": 201, "json": {"id": "x", "status": "NOT_A_STATUS"}},
], ids=["500", "503", "read-timeout", "connection-reset", "invalid-json", "not-a-request"])
def test_create_is_never_sent_twice_when_it_may_have_reached_the_server(api, rsps, time_, failure):
    rsps.post(PROCESS, **failure)
    rsps.post(PROCESS, status=201, json=request("duplicate"))
    with pytest.raises(errors.CreateOutcomeUnknown) as info:
        api.create({"description": "job [reconciler:x]"})
    assert len(calls_to(rsps, PROCESS, "POST")) == 1 and time_.sleeps == []
    assert info.value.path == "/api/v1/batch/process" and "ownership marker" in info.value.hint


@pytest.mark.parametrize("failure", [{"status": 429, "headers": {"Retry-After": "300"}}, {"body": refused()}],
                         ids=["429", "connection-refused"])
def test_create_is_sent_again_after_failures_before_sending(api, rsps, failure):
    rsps.post(PROCESS, **failure)
    rsps.post(PROCESS, status=201, json=request("new"))
    assert api.create({"description": "x"}).id == "new"
    assert len(calls_to(rsps, PROCESS, "POST")) == 2


def test_get_quotes_the_id_and_keeps_the_service_fields(api, rsps):
    rsps.get(f"{PROCESS}/r%2F1", json=request("r/1", "ANALYSIS_DONE", valueEstimate=123.5, tileCount=66,
                                                  somethingNew={"a": 1}))
    got = api.get("r/1")
    assert (got.id, got.status, got.valueEstimate, got.tileCount) == ("r/1", v1.RequestStatus.ANALYSIS_DONE, 123.5, 66)
    assert got.model_extra == {"somethingNew": {"a": 1}}


def test_listing_pages_with_the_viewtoken_until_next_token_is_absent(api, rsps):
    pages = [({"count": "2", "search": "corsica", "sort": "created"}, ["a", "b"], "tok-B"),
             ({"count": "2", "search": "corsica", "sort": "created", "viewtoken": "tok-B"}, ["c", "d"], "tok-C"),
             ({"count": "2", "search": "corsica", "sort": "created", "viewtoken": "tok-C"}, ["e"], None)]
    for params, ids, next_token in pages:
        links = {"currentToken": params.get("viewtoken", "tok-A")} | ({"nextToken": next_token} if next_token else {})
        rsps.get(PROCESS, json={"data": [request(i) for i in ids], "links": links},
                 match=[matchers.query_param_matcher(params)])
    listing = api.iter_requests(search="corsica", sort="created", page_size=2)
    assert calls_to(rsps, PROCESS) == []  # lazy
    assert [r.id for r in listing] == ["a", "b", "c", "d", "e"]
    assert len(calls_to(rsps, PROCESS)) == 3


def test_listing_defaults_to_pages_of_100(api, rsps):
    rsps.get(PROCESS, json={"data": [], "links": {}})
    assert list(api.iter_requests()) == []
    assert query(calls_to(rsps, PROCESS)[0]) == {"count": ["100"]}


def test_update_description_puts_it_and_returns_the_request(api, rsps):
    rsps.put(f"{PROCESS}/r-1", json=request(description="renamed"))
    updated = api.update_description("r-1", "renamed")
    assert isinstance(updated, v1.BatchRequest) and updated.description == "renamed"
    assert json.loads(calls_to(rsps, f"{PROCESS}/r-1", "PUT")[0].request.body) == {"description": "renamed"}


def test_delete_sends_delete_and_answers_nothing(api, rsps):
    rsps.delete(f"{PROCESS}/r-1", status=204)
    assert api.delete("r-1") is None
    assert [c.request.method for c in calls_to(rsps, f"{PROCESS}/r-1")] == ["DELETE"]


@pytest.mark.parametrize("method, action", [("analyse", "analyse"), ("start", "start"), ("cancel", "cancel"),
                                            ("restart_partial", "restartpartial")])
def test_actions_post_to_their_path_and_answer_nothing(api, rsps, method, action):
    rsps.post(f"{PROCESS}/r-1/{action}", status=204)
    assert getattr(api, method)("r-1") is None
    [call] = calls_to(rsps, f"{PROCESS}/r-1/{action}")
    assert call.request.method == "POST" and not call.request.body


def test_restart_partial_outside_partial_is_a_bad_request(api, rsps, time_):
    rsps.post(f"{PROCESS}/r-1/restartpartial", status=400, json=error_body(
        400, "Bad Request", "Only requests with status PARTIAL can be restarted", "COMMON_BAD_PAYLOAD"))
    with pytest.raises(errors.BadRequest, match="Only requests with status PARTIAL") as info:
        api.restart_partial("r-1")
    assert info.value.path == "/api/v1/batch/process/r-1/restartpartial" and time_.sleeps == []


def test_actions_and_delete_are_retried_after_5xx(api, rsps, time_):
    rsps.post(f"{PROCESS}/r-1/cancel", status=503)
    rsps.post(f"{PROCESS}/r-1/cancel", status=204)
    rsps.delete(f"{PROCESS}/r-1", body=requests.ReadTimeout())
    rsps.delete(f"{PROCESS}/r-1", status=204)
    api.cancel("r-1")
    api.delete("r-1")
    assert time_.sleeps == [0.5, 0.5]


# -- tiles and grids ---------------------------------------------------------------------------


def test_tiles_are_paged_and_filtered_by_status(api, rsps):
    tiles = f"{PROCESS}/r-1/tiles"
    rsps.get(tiles, json={"data": [tile(1, "FAILED"), tile(2, "FAILED")], "links": {"nextToken": "p2"}},
             match=[matchers.query_param_matcher({"status": "FAILED", "count": "2"})])
    rsps.get(tiles, json={"data": [tile(5, "FAILED")], "links": {}},
             match=[matchers.query_param_matcher({"status": "FAILED", "count": "2", "viewtoken": "p2"})])
    listed = list(api.iter_tiles("r-1", status=v1.TileStatus.FAILED, page_size=2))
    assert [t.id for t in listed] == [1, 2, 5] and {t.status for t in listed} == {v1.TileStatus.FAILED}


def test_tiles_without_a_filter_ask_for_all(api, rsps):
    rsps.get(f"{PROCESS}/r-1/tiles", json={"data": [tile(1), tile(2, "PROCESSED")], "links": {}})
    assert [t.status for t in api.iter_tiles("r-1")] == [v1.TileStatus.PENDING, v1.TileStatus.PROCESSED]
    assert query(calls_to(rsps, f"{PROCESS}/r-1/tiles")[0]) == {"count": ["100"]}


def test_get_tile_by_id(api, rsps):
    rsps.get(f"{PROCESS}/r%201/tiles/7", json={**tile(7, "PROCESSED"), "cost": 2.5})
    got = api.get_tile("r 1", 7)
    assert isinstance(got, v1.Tile) and (got.id, got.status, got.cost) == (7, v1.TileStatus.PROCESSED, 2.5)


def test_tiling_grids_come_from_the_v1_path(api, rsps):
    grid = {"id": 0, "name": "20km grid", "properties": {"tileWidth": 20040, "tileHeight": 20040,
                                                          "resolutions": [10, 20, 60], "unit": "METRE"}}
    rsps.get(f"{V1}/tilinggrids", json={"data": [grid], "links": {}})
    rsps.get(f"{V1}/tilinggrids/0", json=grid)
    assert [g.id for g in api.tiling_grids()] == [0] and api.tiling_grid(0).name == "20km grid"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, cls, call, path", [
    (400, errors.BadRequest, lambda api: api.create({}), "/process"),
    (400, errors.BadRequest, lambda api: api.start("r-1"), "/process/r-1/start"),
    (404, errors.NotFound, lambda api: api.get("r-1"), "/process/r-1"),
    (404, errors.NotFound, lambda api: api.delete("r-1"), "/process/r-1"),
    (404, errors.NotFound, lambda api: api.get_tile("r-1", 3), "/process/r-1/tiles/3"),
    (404, errors.NotFound, lambda api: list(api.iter_tiles("r-1")), "/process/r-1/tiles"),
    (409, errors.Conflict, lambda api: api.update_description("r-1", "d"), "/process/r-1"),
    (403, errors.AuthError, lambda api: list(api.iter_requests()), "/process"),
])
def test_error_bodies_become_typed_errors(api, rsps, time_, status, cls, call, path):
    details = {"bucketName": "bad", "secretAccessKey": "AWS-SECRET"}
    body = error_body(status, "Refused", f"server says {status}", f"CODE_{status}", details)
    for method in ("GET", "POST", "PUT", "DELETE"):
        rsps.add(method, PROCESS + path[len("/process"):], status=status, json=body)
    with pytest.raises(cls) as info:
        call(api)
    e = info.value
    assert (e.status, e.code, e.server_message) == (status, f"CODE_{status}", f"server says {status}")
    assert e.path == "/api/v1/batch" + path and e.errors["secretAccessKey"] == "(sensitive)"
    assert "AWS-SECRET" not in e.message and e.hint and time_.sleeps == []


@pytest.mark.parametrize("body", [
    "not json", "[1, 2]", json.dumps({"id": "r-1"}), json.dumps({"id": "r-1", "status": "NEW_STATUS"}),
    json.dumps({"data": [{"id": "x", "status": "NEW_STATUS"}]}), json.dumps({"data": [{"id": "x", "status": "WEIRD"}]}),
])
def test_malformed_answers_are_api_unavailable(api, rsps, body):
    for url in (f"{PROCESS}/r-1", PROCESS, f"{PROCESS}/r-1/tiles", f"{PROCESS}/r-1/tiles/1"):
        rsps.get(url, body=body)
    rsps.put(f"{PROCESS}/r-1", body=body)
    calls = [lambda: api.get("r-1"), lambda: list(api.iter_requests()), lambda: api.update_description("r-1", "d"),
             lambda: list(api.iter_tiles("r-1")), lambda: api.get_tile("r-1", 1)]
    for call in calls:
        with pytest.raises(errors.ApiUnavailable, match="not valid JSON|unexpected answer"):
            call()
