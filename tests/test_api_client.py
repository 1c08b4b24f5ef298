"""The Batch API client over a faked HTTP layer (`responses`): OAuth, paging, the retry policy,
the create-is-sent-once rule, error bodies, and the boundary that lets only ApiError out.

Time is fake: the session's injected sleep records each wait and advances the injected clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import oauthlib.oauth2.rfc6749.errors as oauth_errors
import pytest
import requests
import responses
import urllib3.exceptions
from responses import matchers

from reconciler.api import errors
from reconciler.api.client import BatchClient
from reconciler.api.pacer import Pacer
from reconciler.api.session import ApiSession
from reconciler.api.transport import classify_failure
from reconciler.batch.models import common, v2
from reconciler.settings import ApiSettings
from tests.conftest import ROOT

BASE = "https://sh.test"
TOKEN_URL = "https://auth.test/realms/main/token"
PROCESS = f"{BASE}/api/v2/batch/process"
GRIDS = f"{BASE}/api/v2/batch/tilinggrids"
SECRET = "s3cr3t-never-shown"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def time_():
    return FakeTime()


@pytest.fixture
def make_client(time_):
    def make(**settings) -> BatchClient:
        config = ApiSettings("client-1", SECRET, base_url=BASE, token_url=TOKEN_URL, **settings)
        # jitter 1.0: the upper end of each backoff step, so the waits are exact numbers
        return BatchClient(session=ApiSession(config, sleep=time_.sleep, clock=time_.clock, jitter=lambda: 1.0))
    return make


@pytest.fixture
def api(make_client, rsps):
    give_token(rsps)
    return make_client().v2


def give_token(rsps, access: str = "tok-1", expires_in: int = 3600) -> None:
    rsps.post(TOKEN_URL, json={"access_token": access, "token_type": "Bearer", "expires_in": expires_in})


def task(task_id: str = "t-1", status: str = "CREATED") -> dict:
    return {"id": task_id, "request": {"description": f"job [reconciler:{task_id}]"}, "domainAccountId": "acc",
            "status": status, "completionPercentage": 0}


def calls_to(rsps, url: str, method: str | None = None) -> list:
    return [c for c in rsps.calls if c.request.url.split("?")[0] == url and method in (None, c.request.method)]


def bearer(call) -> str:
    return call.request.headers["Authorization"]


def error_body(status: int, reason: str, message: str, code: str, details=None) -> dict:
    body = {"status": status, "reason": reason, "message": message, "code": code}
    return {"error": {**body, "errors": details} if details is not None else body}


def refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/api", reason))


def reset() -> requests.ConnectionError:
    cause = ConnectionResetError(104, "Connection reset by peer")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", cause))


# -- OAuth -------------------------------------------------------------------------------------


def test_token_fetched_with_credentials_in_form_body_and_reused(api, rsps):
    rsps.get(f"{PROCESS}/t-1", json=task())
    rsps.get(f"{PROCESS}/t-2", json=task("t-2"))
    assert api.get("t-1").id == "t-1" and api.get("t-2").id == "t-2"
    [token_call] = calls_to(rsps, TOKEN_URL)
    form = parse_qs(token_call.request.body)
    assert form == {"grant_type": ["client_credentials"], "client_id": ["client-1"], "client_secret": [SECRET]}
    assert token_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in token_call.request.headers  # not Basic auth: the body carries them
    api_calls = calls_to(rsps, f"{PROCESS}/t-1") + calls_to(rsps, f"{PROCESS}/t-2")
    assert [bearer(c) for c in api_calls] == ["Bearer tok-1"] * 2


@pytest.mark.parametrize("lifetime, still_valid, renewed", [(3600, 3600 - 61, 3600 - 59), (100, 74, 76)])
def test_token_renewed_before_expiry(make_client, rsps, time_, lifetime, still_valid, renewed):
    """Renewal when less than min(60 s, a quarter of the lifetime) remains."""
    give_token(rsps, "tok-1", lifetime)
    give_token(rsps, "tok-2", lifetime)
    rsps.get(f"{PROCESS}/t-1", json=task())
    api, start = make_client().v2, time_.now
    api.get("t-1")
    time_.now = start + still_valid
    api.get("t-1")
    time_.now = start + renewed
    api.get("t-1")
    assert [bearer(c) for c in calls_to(rsps, f"{PROCESS}/t-1")] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert len(calls_to(rsps, TOKEN_URL)) == 2


def test_401_fetches_a_new_token_once_and_repeats_the_call(make_client, rsps):
    give_token(rsps, "tok-1")
    give_token(rsps, "tok-2")
    rsps.get(f"{PROCESS}/t-1", status=401, json=error_body(401, "Unauthorized", "Token expired", "COMMON_UNAUTHORIZED"))
    rsps.get(f"{PROCESS}/t-1", json=task())
    assert make_client().v2.get("t-1").id == "t-1"
    assert [bearer(c) for c in calls_to(rsps, f"{PROCESS}/t-1")] == ["Bearer tok-1", "Bearer tok-2"]


def test_401_twice_is_an_auth_error(api, rsps):
    rsps.get(f"{PROCESS}/t-1", status=401, json=error_body(401, "Unauthorized", "Invalid token", "COMMON_UNAUTHORIZED"))
    with pytest.raises(errors.AuthError, match="Invalid token") as info:
        api.get("t-1")
    assert info.value.status == 401 and len(calls_to(rsps, f"{PROCESS}/t-1")) == 2
    assert len(calls_to(rsps, TOKEN_URL)) == 2


def test_403_is_an_auth_error_without_a_new_token(api, rsps):
    rsps.get(PROCESS, status=403, json=error_body(403, "Forbidden", "No access", "COMMON_INSUFFICIENT_PERMISSIONS"))
    with pytest.raises(errors.AuthError) as info:
        list(api.iter_tasks())
    assert info.value.code == "COMMON_INSUFFICIENT_PERMISSIONS" and len(calls_to(rsps, TOKEN_URL)) == 1


def test_token_endpoint_refuses_bad_credentials(make_client, rsps):
    rsps.post(TOKEN_URL, status=401,
              json={"error": "invalid_client", "error_description": "Invalid client credentials"})
    with pytest.raises(errors.AuthError) as info:
        make_client().v2.get("t-1")
    e = info.value
    assert (e.status, e.code, e.server_message) == (401, "invalid_client", "Invalid client credentials")
    assert e.message == ("POST /realms/main/token: the token endpoint answered 401 Unauthorized: "
                         "Invalid client credentials [invalid_client]")
    assert "SH_CLIENT_SECRET" in e.hint and SECRET not in e.message
    assert calls_to(rsps, f"{PROCESS}/t-1") == []


def test_token_endpoint_rate_limit_and_outage_are_retried(make_client, rsps, time_):
    rsps.post(TOKEN_URL, status=429, headers={"Retry-After": "250"})
    rsps.post(TOKEN_URL, status=502, body="<html>Bad Gateway</html>")
    give_token(rsps)
    rsps.get(f"{PROCESS}/t-1", json=task())
    assert make_client().v2.get("t-1").id == "t-1"
    assert time_.sleeps == [0.25, 0.5]


# -- paging ------------------------------------------------------------------------------------


def test_listing_pages_with_the_viewtoken_until_next_token_is_absent(api, rsps):
    pages = [({"count": "50", "sort": "created:desc"}, ["a", "b"], "tok-B"),
             ({"count": "50", "sort": "created:desc", "viewtoken": "tok-B"}, ["c", "d"], "tok-C"),
             ({"count": "50", "sort": "created:desc", "viewtoken": "tok-C"}, ["e"], None)]
    for query, ids, next_token in pages:
        links = {"currentToken": query.get("viewtoken", "tok-A")} | ({"nextToken": next_token} if next_token else {})
        rsps.get(PROCESS, json={"data": [task(i) for i in ids], "links": links},
                 match=[matchers.query_param_matcher(query)])
    listing = api.iter_tasks(sort="created:desc", page_size=50)
    assert calls_to(rsps, PROCESS) == []  # lazy: nothing is asked before the first item is wanted
    assert [t.id for t in listing] == ["a", "b", "c", "d", "e"]
    assert len(calls_to(rsps, PROCESS)) == 3


def test_listing_that_repeats_a_page_stops(api, rsps):
    rsps.get(PROCESS, json={"data": [task("a")], "links": {"nextToken": "same"}})
    with pytest.raises(errors.ApiUnavailable, match="repeats a page"):
        list(api.iter_tasks())
    assert len(calls_to(rsps, PROCESS)) == 2


def test_tiling_grids_are_paged_and_fetched_by_id(api, rsps):
    grid = {"id": 0, "name": "20km grid", "properties": {"tileWidth": 20040, "tileHeight": 20040,
                                                          "resolutions": [10, 20, 30, 60], "unit": "METRE"}}
    rsps.get(GRIDS, json={"data": [grid], "links": {"nextToken": "p2"}}, match=[matchers.query_param_matcher({})])
    rsps.get(GRIDS, json={"data": [{**grid, "id": 1, "name": "10km grid"}], "links": {}},
             match=[matchers.query_param_matcher({"viewtoken": "p2"})])
    rsps.get(f"{GRIDS}/0", json=grid)
    assert [g.name for g in api.tiling_grids()] == ["20km grid", "10km grid"]
    assert api.tiling_grid(0).properties.resolutions == [10, 20, 30, 60]


# -- calls -------------------------------------------------------------------------------------


def test_create_posts_the_body_once_and_returns_the_task(api, rsps):
    rsps.post(PROCESS, status=201, json=task("new"))
    created = api.create({"processRequest": {}, "description": "job [reconciler:new]"})
    assert isinstance(created, v2.Task) and created.id == "new" and created.status is v2.TaskStatus.CREATED
    [call] = calls_to(rsps, PROCESS, "POST")
    assert json.loads(call.request.body) == {"processRequest": {}, "description": "job [reconciler:new]"}


def test_update_description_returns_the_request_and_actions_return_nothing(api, rsps):
    rsps.put(f"{PROCESS}/t%2F1", json={"description": "new text"})
    for action in ("analyse", "start", "stop"):
        rsps.post(f"{PROCESS}/t-1/{action}", status=204)
    assert api.update_description("t/1", "new text") == {"description": "new text"}  # the id is quoted
    assert json.loads(calls_to(rsps, f"{PROCESS}/t%2F1")[0].request.body) == {"description": "new text"}
    assert (api.analyse("t-1"), api.start("t-1"), api.stop("t-1")) == (None, None, None)


# -- retry policy ------------------------------------------------------------------------------


def test_429_waits_exactly_retry_after_milliseconds(api, rsps, time_):
    rsps.get(f"{PROCESS}/t-1", status=429, headers={"Retry-After": "1500"})
    rsps.get(f"{PROCESS}/t-1", status=429, headers={"Retry-After": "20"})
    rsps.get(f"{PROCESS}/t-1", json=task())
    assert api.get("t-1").id == "t-1"
    assert time_.sleeps == pytest.approx([1.5, 0.02])


def test_429_gives_up_past_the_wait_budget(api, rsps, time_):
    rsps.get(f"{PROCESS}/t-1", status=429, headers={"Retry-After": "50000"},
             json=error_body(429, "Too Many Requests", "Rate limit exceeded", "RATE_LIMIT_EXCEEDED"))
    with pytest.raises(errors.RateLimited) as info:
        api.get("t-1")
    assert time_.sleeps == [50.0, 50.0]  # a third wait would pass the 120 s budget
    assert len(calls_to(rsps, f"{PROCESS}/t-1")) == 3
    assert info.value.code == "RATE_LIMIT_EXCEEDED" and "Rate limit exceeded" in info.value.message


def test_429_without_retry_after_backs_off(api, rsps, time_):
    rsps.get(f"{PROCESS}/t-1", status=429)
    rsps.get(f"{PROCESS}/t-1", status=429, headers={"Retry-After": "soon"})
    rsps.get(f"{PROCESS}/t-1", json=task())
    api.get("t-1")
    assert time_.sleeps == [0.5, 1.0]


def test_pacer_lets_everything_through_until_a_429():
    t = FakeTime()
    pacer = Pacer(t.clock, t.sleep)
    for _ in range(50):
        pacer.turn()
    assert t.sleeps == [] and pacer.interval == 0


def test_pacer_holds_everyone_after_a_429_then_spaces_requests_under_the_measured_rate():
    t = FakeTime()
    pacer = Pacer(t.clock, t.sleep)
    sent = [pacer.turn() for _ in range(20)]  # 19 accepted, the 20th refused, all within a second
    t.now += 0.5
    pacer.refused(sent[-1], 0.25)
    assert pacer.interval == pytest.approx(1 / (0.95 * 19))
    pacer.turn()
    assert t.sleeps == [pytest.approx(0.25)]  # the server's Retry-After first
    for _ in range(5):
        pacer.turn()
    assert t.sleeps[1:] == [pytest.approx(1 / (0.95 * 19))] * 5  # then just under 19 per second


def test_pacer_trusts_only_retry_after_when_it_sent_too_little_to_measure():
    t = FakeTime()
    pacer = Pacer(t.clock, t.sleep)
    sent = [pacer.turn() for _ in range(3)]
    pacer.refused(sent[-1], 2.0)
    assert pacer.interval == 0
    pacer.turn()
    pacer.turn()
    assert t.sleeps == [pytest.approx(2.0)]


def test_pacer_follows_the_highest_count_measured_and_relaxes_after_a_calm_minute():
    t = FakeTime()
    pacer = Pacer(t.clock, t.sleep)
    sent = [pacer.turn() for _ in range(11)]
    pacer.refused(sent[-1], 0.0)
    first = pacer.interval
    assert first == pytest.approx(1 / (0.95 * 10))
    t.now += 5
    sent = [pacer.turn() for _ in range(7)]  # a late bunch refused: says nothing about the limit
    pacer.refused(sent[-1], 0.0)
    assert pacer.interval == first
    t.now += 61
    pacer.turn()
    assert pacer.interval == pytest.approx(first / 2)  # a calm minute: try faster
    sent = [pacer.turn() for _ in range(16)]
    t.now = sent[-1]
    pacer.refused(sent[-1], 0.0)
    assert pacer.interval == pytest.approx(1 / (0.95 * 16))  # the service let more through than thought


def test_5xx_retried_with_exponential_backoff_then_server_error(api, rsps, time_):
    rsps.get(PROCESS, status=503, json=error_body(503, "Service Unavailable", "Try later", "COMMON_EXCEPTION"))
    with pytest.raises(errors.ServerError, match="gave up after 5 attempt") as info:
        list(api.iter_tasks())
    assert time_.sleeps == [0.5, 1.0, 2.0, 4.0] and len(calls_to(rsps, PROCESS)) == 5
    assert info.value.status == 503 and info.value.server_message == "Try later"


def test_5xx_backoff_has_jitter_and_respects_the_time_budget(rsps, time_):
    give_token(rsps)
    config = ApiSettings("client-1", SECRET, base_url=BASE, token_url=TOKEN_URL, retry_budget=3.0)
    session = ApiSession(config, sleep=time_.sleep, clock=time_.clock, jitter=lambda: 0.0)
    rsps.get(f"{PROCESS}/t-1", status=500)
    with pytest.raises(errors.ServerError):
        session.request("GET", "/api/v2/batch/process/t-1")
    assert time_.sleeps == [0.25, 0.5, 1.0]  # half steps; the next (2.0) would pass 3 s in all


def test_5xx_then_success(api, rsps, time_):
    rsps.get(f"{PROCESS}/t-1", status=502, body="<html><body>Bad gateway</body></html>")
    rsps.get(f"{PROCESS}/t-1", body=requests.ReadTimeout())
    rsps.get(f"{PROCESS}/t-1", json=task())
    assert api.get("t-1").id == "t-1" and time_.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("failure", [
    {"status": 500}, {"status": 503, "json": error_body(503, "Service Unavailable", "overloaded", "COMMON_EXCEPTION")},
    {"body": requests.ReadTimeout()}, {"body": reset()}, {"body": requests.exceptions.ChunkedEncodingError()},
    {"status": 201, "body": "<html>not json</html>"}, {"status": 201, "json": {"unexpected": True}},
], ids=["500", "503", "read-timeout", "connection-reset", "chunked", "invalid-json", "not-a-task"])
def test_create_is_never_sent_twice_when_it_may_have_reached_the_server(api, rsps, time_, failure):
    rsps.post(PROCESS, **failure)
    rsps.post(PROCESS, status=201, json=task("duplicate"))
    with pytest.raises(errors.CreateOutcomeUnknown) as info:
        api.create({"description": "job [reconciler:x]"})
    assert len(calls_to(rsps, PROCESS, "POST")) == 1 and time_.sleeps == []
    assert "ownership marker" in info.value.hint


@pytest.mark.parametrize("failure", [
    {"status": 429, "headers": {"Retry-After": "300"}}, {"body": refused()}, {"body": requests.ConnectTimeout()},
    {"status": 401, "json": error_body(401, "Unauthorized", "expired", "COMMON_UNAUTHORIZED")},
], ids=["429", "connection-refused", "connect-timeout", "401"])
def test_create_is_sent_again_after_failures_before_sending(make_client, rsps, time_, failure):
    give_token(rsps)
    rsps.post(PROCESS, **failure)
    rsps.post(PROCESS, status=201, json=task("new"))
    assert make_client().v2.create({"description": "x"}).id == "new"
    assert len(calls_to(rsps, PROCESS, "POST")) == 2


def test_connection_refused_everywhere_becomes_api_unavailable(api, rsps, time_):
    rsps.get(f"{PROCESS}/t-1", body=refused())
    with pytest.raises(errors.ApiUnavailable, match="could not connect") as info:
        api.get("t-1")
    assert len(time_.sleeps) == 4 and BASE in info.value.hint


def test_classify_failure_tells_before_from_after_sending():
    assert not classify_failure(refused()).sent and classify_failure(refused()).transient
    assert not classify_failure(requests.ConnectTimeout()).sent
    assert classify_failure(reset()).sent and classify_failure(requests.ReadTimeout()).sent
    assert not classify_failure(requests.exceptions.SSLError()).transient


# -- error bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("status, cls, call", [
    (400, errors.BadRequest, lambda api: api.start("t-1")),
    (404, errors.NotFound, lambda api: api.get("t-1")),
    (409, errors.Conflict, lambda api: api.update_description("t-1", "d")),
])
def test_error_bodies_become_typed_errors_with_the_servers_message(api, rsps, time_, status, cls, call):
    details = {"parameter": "output.delivery.s3", "secretAccessKey": "AWS-SECRET"}
    body = error_body(status, "Refused", f"server says {status}", f"CODE_{status}", details)
    for method in ("GET", "POST", "PUT"):
        rsps.add(method, f"{PROCESS}/t-1", status=status, json=body)
        rsps.add(method, f"{PROCESS}/t-1/start", status=status, json=body)
    with pytest.raises(cls) as info:
        call(api)
    e = info.value
    assert (e.status, e.code, e.reason) == (status, f"CODE_{status}", "Refused")
    assert e.server_message == f"server says {status}"
    assert e.errors == {"parameter": "output.delivery.s3", "secretAccessKey": "(sensitive)"}
    assert "/api/v2/batch/process/t-1" in e.message and f"server says {status}" in e.message
    assert "AWS-SECRET" not in e.message and e.hint and e.exit_code == 1
    assert time_.sleeps == [] and len(rsps.calls) == 2  # the token, then the one call: not retried


def test_error_body_that_is_not_json_keeps_its_first_line(api, rsps):
    rsps.get(f"{PROCESS}/t-1", status=400, body="Bad request: missing field\n<more>")
    with pytest.raises(errors.BadRequest) as info:
        api.get("t-1")
    assert info.value.server_message == "Bad request: missing field" and info.value.reason == "Bad Request"


@pytest.mark.parametrize("body", ["not json at all", "{\"id\": \"t-1\"}", "[1, 2]", "",
                                  json.dumps({"data": [{"id": "x", "status": "NEW_STATUS", "request": {}}]})])
def test_malformed_answers_are_api_errors_not_parse_errors(api, rsps, body):
    rsps.get(f"{PROCESS}/t-1", body=body)
    rsps.get(PROCESS, body=body)
    rsps.put(f"{PROCESS}/t-1", body=body)
    calls = [lambda: api.get("t-1"), lambda: list(api.iter_tasks())]
    if not body.startswith("{"):  # the PUT's answer is any JSON object
        calls.append(lambda: api.update_description("t-1", "d"))
    for call in calls:
        with pytest.raises(errors.ApiUnavailable, match="not valid JSON|unexpected answer"):
            call()


# -- the boundary: only our errors escape ------------------------------------------------------


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += [c for c in _subclasses(sub) if c not in found]
    return found


def _instance(cls: type) -> BaseException:
    if cls is requests.exceptions.JSONDecodeError:
        return cls("Expecting value", "<html>", 0)
    if cls is oauth_errors.CustomOAuth2Error:
        return cls(error="made_up")
    return cls()


REQUESTS_ERRORS = [c for c in vars(requests.exceptions).values()
                   if isinstance(c, type) and issubclass(c, requests.RequestException)]
OAUTH_ERRORS = [c for c in _subclasses(oauth_errors.OAuth2Error) if c.__module__.startswith("oauthlib")]
OTHER_ERRORS = [urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, OSError, ConnectionResetError]
ALL_ERRORS = REQUESTS_ERRORS + OAUTH_ERRORS + OTHER_ERRORS


def test_every_requests_exception_is_covered():
    names = {c.__name__ for c in REQUESTS_ERRORS}
    assert {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "SSLError", "ChunkedEncodingError",
            "ContentDecodingError", "TooManyRedirects", "InvalidJSONError", "JSONDecodeError", "RequestException",
            "ProxyError", "RetryError", "InvalidURL", "MissingSchema", "InvalidHeader"} <= names
    assert len(OAUTH_ERRORS) > 20


@pytest.mark.parametrize("where", ["token", "get", "list", "create"])
@pytest.mark.parametrize("exc_class", ALL_ERRORS, ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}")
def test_no_third_party_exception_escapes(make_client, rsps, where, exc_class):
    if where == "token":
        rsps.post(TOKEN_URL, body=_instance(exc_class))
    else:
        give_token(rsps)
    rsps.get(f"{PROCESS}/t-1", body=_instance(exc_class))
    rsps.get(PROCESS, body=_instance(exc_class))
    rsps.post(PROCESS, body=_instance(exc_class))
    api = make_client().v2
    call = {"token": lambda: api.get("t-1"), "get": lambda: api.get("t-1"), "list": lambda: list(api.iter_tasks()),
            "create": lambda: api.create({"description": "x"})}[where]
    with pytest.raises(Exception) as info:
        call()
    assert isinstance(info.value, errors.ApiError), f"{type(info.value).__name__} escaped"
    assert SECRET not in info.value.message and SECRET not in (info.value.hint or "")
    assert "tok-1" not in info.value.message
    transport = exc_class in REQUESTS_ERRORS + OTHER_ERRORS  # oauthlib objects before sending
    if where == "create" and transport and classify_failure(_instance(exc_class)).sent:
        assert isinstance(info.value, errors.CreateOutcomeUnknown)
        assert len(calls_to(rsps, PROCESS, "POST")) == 1


@pytest.mark.parametrize("answer", [
    {"json": {"error": "invalid_grant"}}, {"json": {"error": "unauthorized_client"}}, {"json": {"error": "made_up"}},
    {"json": {"error": "server_error"}}, {"json": {}}, {"json": {"access_token": "x", "expires_in": "soon"}},
    {"json": {"access_token": 42, "token_type": "Bearer"}}, {"body": "<html>login page</html>"}, {"body": ""},
    {"status": 400, "json": {"error": "unsupported_grant_type"}}, {"status": 404, "body": "Not Found"},
], ids=lambda a: json.dumps(a)[:40])
def test_unusable_token_answers_are_auth_errors(make_client, rsps, answer):
    rsps.post(TOKEN_URL, **answer)
    with pytest.raises(errors.AuthError) as info:
        make_client().v2.get("t-1")
    assert info.value.method == "POST" and info.value.path == "/realms/main/token"
    assert SECRET not in info.value.message


def test_token_answer_without_lifetime_is_kept_until_a_401(make_client, rsps, time_):
    rsps.post(TOKEN_URL, json={"access_token": "forever", "token_type": "Bearer"})
    rsps.get(f"{PROCESS}/t-1", json=task())
    api = make_client().v2
    api.get("t-1")
    time_.now += 10 ** 6
    api.get("t-1")
    assert len(calls_to(rsps, TOKEN_URL)) == 1


# -- the view and the start-up cost ------------------------------------------------------------


GRID_LIST = [
    common.TilingGrid.model_validate({"id": 3, "name": "WGS84 1 degree grid", "properties": {
        "tileWidth": 1, "tileHeight": 1, "resolutions": [0.0001, 0.008], "unit": "DEGREE"}}),
    common.TilingGrid.model_validate({"id": 0, "name": "20km grid", "properties": {
        "tileWidth": 20040, "tileHeight": 20040, "resolutions": [10, 20, 30, 60], "unit": "METRE"}}),
]


def test_show_grids_as_a_table_and_as_json(capsys, monkeypatch):
    from reconciler.render.grids import show_grids

    monkeypatch.setenv("NO_COLOR", "1")
    show_grids(GRID_LIST, "text")
    assert capsys.readouterr().out.splitlines() == [
        "ID  NAME                 TILE SIZE  RESOLUTIONS",
        "0   20km grid            20040 m    10, 20, 30, 60",
        "3   WGS84 1 degree grid  1°         0.0001, 0.008",
    ]
    show_grids(GRID_LIST, "json")
    listed = json.loads(capsys.readouterr().out)
    assert [g["id"] for g in listed] == [0, 3] and listed[1]["properties"]["unit"] == "DEGREE"


def test_help_does_not_load_the_api_client():
    probe = (
        "import sys; from reconciler.cli import cli; from click.testing import CliRunner;"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('requests', 'oauthlib', 'requests_oauthlib',"
        " 'urllib3') or m.startswith('reconciler.api')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_paths_in_errors_carry_no_query(api, rsps):
    rsps.get(PROCESS, status=404, json=error_body(404, "Not Found", "nope", "COMMON_NOT_FOUND"))
    with pytest.raises(errors.NotFound) as info:
        list(api.iter_tasks(search="secret-ish"))
    assert info.value.path == "/api/v2/batch/process" and "secret-ish" not in info.value.message
    query = urlsplit(calls_to(rsps, PROCESS)[0].request.url).query
    assert parse_qs(query) == {"count": ["100"], "search": ["secret-ish"]}


def test_debug_logging_never_shows_the_secret_or_the_token(api, rsps, caplog):
    rsps.get(f"{PROCESS}/t-1", json=task())
    with caplog.at_level("DEBUG"):
        api.get("t-1")
    assert calls_to(rsps, TOKEN_URL) and SECRET not in caplog.text and "tok-1" not in caplog.text
