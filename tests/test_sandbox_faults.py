"""Faults on demand (rate limit, 5xx, lost answers, latency, replica lag, stale deletion),
persistence across a restart, and the client surviving a hostile sandbox. Where a fault depends on
time, the sandbox runs a manual clock and the test steps it instead of sleeping."""

from __future__ import annotations

import concurrent.futures
import time

import requests

from reconciler.api.client import BatchClient
from reconciler.api.errors import ApiError
from reconciler.api.session import ApiSession
from reconciler.settings import api_settings
from tests.conftest import SandboxProcess
from tests.test_sandbox_v1 import v1_body
from tests.test_sandbox_v2 import example_body

TASKS = "/api/v2/batch/process"


def test_rate_limit_answers_429_with_retry_after_in_milliseconds(tmp_path):
    limited = SandboxProcess(tmp_path, "--rate-limit", "5", "--manual-clock")
    try:
        http = limited.http()
        answers = [http.get("/api/v2/batch/tilinggrids") for _ in range(20)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and len(refused) < 20
        for answer in refused:
            assert answer.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
            assert 1 <= int(answer.headers["Retry-After"]) <= 1000
        limited.advance(int(refused[-1].headers["Retry-After"]) / 1000)
        assert http.get("/api/v2/batch/tilinggrids").status_code == 200  # waiting as told is enough
        assert http.get("/sandbox/stats").json()["requests"]["refused 429"] == len(refused)
    finally:
        limited.stop()


def test_parallel_callers_of_one_session_pace_themselves_under_the_limit(tmp_path):
    """Four threads, 60 calls, a 20 req/s limit: after the first 429 the session spaces its
    requests instead of bouncing off the limit (without it: about two refusals per success)."""
    limited = SandboxProcess(tmp_path, "--rate-limit", "20")
    try:
        settings = api_settings(limited.env)
        with BatchClient(settings) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
            start = time.monotonic()
            grids = list(pool.map(lambda _: client.v2.tiling_grids(), range(60)))
            elapsed = time.monotonic() - start
            assert client.session.pacer.interval > 0
        assert len(grids) == 60 and all(grids)
        refused = requests.get(limited.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]["refused 429"]
        assert 1 <= refused <= 8
        assert elapsed >= (61 - 20) / 20  # the server's limit held (61: the token request counts too)
    finally:
        limited.stop()


def test_error_rate_and_lost_answers(tmp_path):
    failing = SandboxProcess(tmp_path, "--lost-response-rate", "1")
    try:
        http = failing.http()
        lost = http.post(TASKS, json=example_body("corsica-max-ndvi", "lost answer"))
        assert lost.status_code == 502
        listed = http.get(TASKS, params={"search": "lost answer"}).json()["data"]
        assert len(listed) == 1  # the create took effect: only its answer was lost
    finally:
        failing.stop()
    broken = SandboxProcess(tmp_path, "--error-rate", "1")
    try:
        answer = requests.get(broken.env["SH_BASE_URL"] + "/api/v2/batch/tilinggrids", timeout=10)
        assert answer.status_code in (500, 502, 503) and answer.json()["error"]["status"] == answer.status_code
    finally:
        broken.stop()


def test_latency_and_replica_lag(tmp_path):
    lagging = SandboxProcess(tmp_path, "--latency", "200ms", "--replica-lag", "1s", "--manual-clock")
    try:
        http = lagging.http()
        start = time.monotonic()
        task = http.post(TASKS, json=example_body("corsica-max-ndvi")).json()
        assert time.monotonic() - start >= 0.2  # latency is real time, whatever the clock
        assert http.get(f"{TASKS}/{task['id']}").status_code == 404  # the read replica has not seen it yet
        lagging.advance(1.0)
        assert http.get(f"{TASKS}/{task['id']}").status_code == 200
    finally:
        lagging.stop()


def test_stale_deletion_removes_what_it_should_and_nothing_else(tmp_path):
    stale = SandboxProcess(tmp_path, "--stale-after", "2s", "--speed", "10", "--manual-clock")
    try:
        http = stale.http()

        def create(api: str, body: dict) -> str:
            return http.post(f"/api/{api}/batch/process", json=body).json()["id"]

        def status(api: str, job_id: str) -> int | str:
            answer = http.get(f"/api/{api}/batch/process/{job_id}")
            return answer.json()["status"] if answer.status_code == 200 else answer.status_code

        never_started = create("v2", example_body("corsica-max-ndvi"))
        analysed = create("v2", example_body("corsica-max-ndvi"))
        finished = create("v2", example_body("corsica-max-ndvi"))
        stopped = create("v2", example_body("corsica-max-ndvi"))
        canceled = create("v1", v1_body())
        http.post(f"/api/v2/batch/process/{analysed}/analyse")
        http.post(f"/api/v2/batch/process/{finished}/start")
        http.post(f"/api/v2/batch/process/{stopped}/analyse")
        stale.advance(0.3)  # analyses take 0.03 s and 66 tiles 0.05 s at speed 10: all done
        http.post(f"/api/v2/batch/process/{stopped}/stop")
        http.post(f"/api/v1/batch/process/{canceled}/cancel")
        assert status("v2", finished) == "DONE"
        stale.advance(1.5)  # 1.8 s after the creates, at most 1.8 s after any last change
        assert status("v2", finished) == "DONE"  # not stale yet
        stale.advance(0.5)  # 2.3 s after the creates, over 2 s after every last change
        assert [status("v2", j) for j in (never_started, analysed, finished)] == [404, 404, 404]
        assert status("v2", stopped) == "STOPPED" and status("v1", canceled) == "CANCELED"
    finally:
        stale.stop()


def test_jobs_survive_a_restart_with_a_data_dir(tmp_path):
    data = tmp_path / "data"
    first = SandboxProcess(tmp_path / "a", "--data-dir", str(data), "--speed", "10")
    try:
        http = first.http()
        task = http.post(TASKS, json=example_body("corsica-max-ndvi", "survivor")).json()
        http.post(f"{TASKS}/{task['id']}/analyse")
        deadline = time.monotonic() + 30
        while http.get(f"{TASKS}/{task['id']}").json()["status"] != "ANALYSIS_DONE":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        request = http.post("/api/v1/batch/process", json=v1_body()).json()
        before = http.get(f"{TASKS}/{task['id']}").json()
    finally:
        assert first.stop() == 0
    second = SandboxProcess(tmp_path / "b", "--data-dir", str(data), "--speed", "10")
    try:
        assert second.env["SH_CLIENT_ID"] == first.env["SH_CLIENT_ID"]  # generated once, kept
        http = second.http()
        assert http.get(f"{TASKS}/{task['id']}").json() == before
        assert http.get(f"/api/v1/batch/process/{request['id']}").json()["status"] == "CREATED"
        http.post(f"{TASKS}/{task['id']}/start")
        deadline = time.monotonic() + 60
        while (after := http.get(f"{TASKS}/{task['id']}").json())["status"] != "DONE":
            assert time.monotonic() < deadline, after["status"]
            time.sleep(0.05)
        listed = http.get(TASKS, params={"search": "survivor"}).json()["data"]
        assert [t["id"] for t in listed] == [task["id"]]
    finally:
        second.stop()


def test_the_client_survives_20_percent_5xx_and_a_rate_limit(tmp_path):
    """Every call either succeeds within its budget or raises one of our errors; after a 429 the
    session waits out the server's Retry-After (counted from the answer)."""
    hostile = SandboxProcess(tmp_path, "--error-rate", "0.2", "--rate-limit", "10", "--seed", "3", "--speed", "10")
    sleeps: list[float] = []
    told: list[float] = []
    try:
        settings = api_settings(hostile.env, retry_budget=30.0, rate_limit_budget=30.0)
        session = ApiSession(settings, sleep=lambda s: (sleeps.append(s), time.sleep(s)))
        session._http.hooks["response"].append(  # observe every Retry-After the server sends
            lambda r, *a, **k: told.append(int(r.headers["Retry-After"]) / 1000) if r.status_code == 429 else None)
        outcomes = {"ok": 0, "error": 0}
        with BatchClient(settings, session=session) as client:
            ids = []
            for i in range(12):
                for call in (lambda: ids.append(client.v2.create(example_body("corsica-geopackage", f"hostile {i}")).id),
                             lambda: list(client.v2.iter_tasks(search="hostile")),
                             lambda: client.v2.tiling_grids(),
                             lambda: ids and client.v2.get(ids[-1])):
                    try:
                        call()
                        outcomes["ok"] += 1
                    except ApiError:
                        outcomes["error"] += 1
        assert outcomes["ok"] >= 40, outcomes
        assert told, "the rate limit was never hit"
        for wait in told:  # held until the moment the answer named: its Retry-After, less the time since
            # (a Retry-After of a few ms may be over before the next turn: the pacer then sleeps 0, i.e. not at all)
            assert any(wait - 0.05 <= s <= wait + 1e-9 for s in sleeps) or wait <= 0.05, (wait, sleeps)
    finally:
        hostile.stop()


def test_a_job_whose_bucket_vanished_fails_and_the_worker_goes_on(sandbox):
    http, s3 = sandbox.http(), sandbox.s3()
    body = example_body("corsica-max-ndvi")
    body["output"]["delivery"]["s3"]["url"] = f"s3://gone-{time.time_ns()}"
    task = http.post(TASKS, json=body).json()
    s3.delete_bucket(Bucket=body["output"]["delivery"]["s3"]["url"].removeprefix("s3://"))
    http.post(f"{TASKS}/{task['id']}/start")
    deadline = time.monotonic() + 30
    while (task := http.get(f"{TASKS}/{task['id']}").json())["status"] not in ("FAILED", "DONE"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert task["status"] == "FAILED" and "NoSuchBucket" in task["error"]
    healthy = http.post(TASKS, json=example_body("corsica-max-ndvi")).json()
    http.post(f"{TASKS}/{healthy['id']}/start")
    while (healthy := http.get(f"{TASKS}/{healthy['id']}").json())["status"] not in ("FAILED", "DONE"):
        assert time.monotonic() < deadline + 30
        time.sleep(0.05)
    assert healthy["status"] == "DONE"


def test_a_seeded_run_repeats_exactly(tmp_path):
    def failed_tiles(folder) -> tuple[str, list[int]]:
        flaky = SandboxProcess(folder, "--speed", "10", "--tile-failure-rate", "0.2", "--seed", "11")
        try:
            http = flaky.http()
            request = http.post("/api/v1/batch/process", json=v1_body()).json()
            http.post(f"/api/v1/batch/process/{request['id']}/start")
            deadline = time.monotonic() + 60
            while http.get(f"/api/v1/batch/process/{request['id']}").json()["status"] in (
                    "CREATED", "ANALYSING", "ANALYSIS_DONE", "PROCESSING"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            tiles = http.get(f"/api/v1/batch/process/{request['id']}/tiles", params={"status": "FAILED"}).json()["data"]
            return request["id"], sorted(t["id"] for t in tiles)
        finally:
            flaky.stop()

    first, second = failed_tiles(tmp_path / "one"), failed_tiles(tmp_path / "two")
    assert first == second and first[1]
