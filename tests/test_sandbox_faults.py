"""Faults on demand (rate limit, 5xx, lost answers, latency, replica lag, stale deletion),
persistence across a restart, and the client surviving a hostile sandbox. Where a fault depends on
time, the sandbox runs a manual clock and the test steps it instead of sleeping; where a client
sleeps, it sleeps on that clock too (`SteppedCallers`), so every count is exact whatever the load.
The request faults share one sandbox, each test setting the faults it needs."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable

import pytest
import requests

from reconciler.api.client import BatchClient
from reconciler.api.errors import ApiError
from reconciler.api.session import ApiSession
from reconciler.settings import api_settings
from tests.conftest import SandboxProcess
from tests.test_sandbox_v1 import v1_body
from tests.test_sandbox_v2 import example_body

TASKS = "/api/v2/batch/process"


# The request faults, each started by its flag on the shared sandbox (checked once, there).
FLAGS = {"rate_limit": ("--rate-limit", "5", 5), "latency": ("--latency", "200ms", 0.2),
         "replica_lag": ("--replica-lag", "1s", 1.0), "error_rate": ("--error-rate", "0.25", 0.25),
         "lost_response_rate": ("--lost-response-rate", "0.5", 0.5)}


@pytest.fixture(scope="module")
def stepped_sandbox(tmp_path_factory):
    """One `--manual-clock` sandbox for the tests of request faults, started with each fault's flag;
    every test then sets the faults it needs (`faults`). Stale deletion, seeds and restarts, which
    a shared sandbox would blur, have sandboxes of their own."""
    process = SandboxProcess(tmp_path_factory.mktemp("faults"), "--manual-clock",
                             *(part for flag, value, _ in FLAGS.values() for part in (flag, value)))
    try:
        started = requests.put(process.env["SH_BASE_URL"] + "/sandbox/faults", json={}, timeout=10).json()
        assert {name: started[name] for name in FLAGS} == {name: read for name, (_, _, read) in FLAGS.items()}
        yield process
    finally:
        process.stop(wait=False)


def faults(sandbox: SandboxProcess, **chosen: float) -> int:
    """Only the `chosen` request faults from now on, in a rate-limit window of their own (a second
    on from whatever the last test sent); returns the refusals counted so far."""
    base = sandbox.env["SH_BASE_URL"]
    requests.put(base + "/sandbox/faults", json={**dict.fromkeys(FLAGS, 0), **chosen}, timeout=10).raise_for_status()
    sandbox.advance(1.0)
    return requests.get(base + "/sandbox/stats", timeout=10).json()["requests"].get("refused 429", 0)


class SteppedCallers:
    """Callers sharing one client session against a `--manual-clock` sandbox, run so that a run
    repeats exactly whatever the machine's load. Sandbox time stands still while a caller works and
    moves (POST /sandbox/clock) only once every caller sleeps, on to the earliest moment one of them
    sleeps until. One caller runs at a time and hands on to the next in turn at every answer it
    gets, so their requests interleave as parallel callers' do, in one repeatable order (the token's
    answer excepted: its lock is held then, and the session fetches it once)."""

    def __init__(self, sandbox: SandboxProcess, count: int):
        self._advance, self._token_url = sandbox.advance, sandbox.env["SH_TOKEN_URL"]
        self.start = self.now = sandbox.advance(0)
        self.answers: list[tuple[float, int, float | None]] = []  # (sandbox time, status, Retry-After s)
        self.sleeps: list[float] = []
        self._waking: list[float | None] = [None] * count  # per caller: None = ready, else asleep until
        self._turn: int | None = 0
        self._callers: dict[int, int] = {}  # thread id → caller
        self._lock = threading.Condition()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            me = self._callers[threading.get_ident()]
            self.sleeps.append(seconds)
            self._waking[me] = self.now + seconds
            self._hand_on(me)

    def answered(self, response: requests.Response, *args, **kwargs) -> None:
        """The session's response hook: note the answer, then let the next caller have its turn."""
        retry_after = response.headers.get("Retry-After")
        self.answers.append((self.now, response.status_code, int(retry_after) / 1000 if retry_after else None))
        if not response.url.startswith(self._token_url):
            with self._lock:
                self._hand_on(self._callers[threading.get_ident()])

    def run(self, work: Callable[[int], None]) -> float:
        """Run `work(caller)` for each caller to its end; returns the sandbox seconds that took."""
        failures: list[BaseException] = []

        def caller(me: int) -> None:
            with self._lock:
                self._callers[threading.get_ident()] = me
                self._wait_for_turn(me)
            try:
                work(me)
            except BaseException as e:  # raised again in the test's own thread
                failures.append(e)
            finally:
                with self._lock:
                    self._waking[me] = math.inf
                    self._hand_on(me)

        threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(len(self._waking))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "the callers never finished"
        if failures:
            raise failures[0]
        return self.now - self.start

    def _hand_on(self, me: int) -> None:
        """Give the turn to the next ready caller after `me` (`me` last); when none is ready, move
        time on to the first wake-up. Then wait until `me` has the turn again (or is finished)."""
        count = len(self._waking)
        while True:
            ready = [c for c in ((me + step) % count for step in range(1, count + 1)) if self._waking[c] is None]
            if ready:
                self._turn = ready[0]
                break
            asleep = [t for t in self._waking if t is not None and t != math.inf]
            if not asleep:
                self._turn = None  # everyone is done
                break
            self.now = self._advance(min(asleep) - self.now)
            self._waking = [None if t is not None and t <= self.now else t for t in self._waking]
        self._lock.notify_all()
        if self._waking[me] != math.inf:
            self._wait_for_turn(me)

    def _wait_for_turn(self, me: int) -> None:
        assert self._lock.wait_for(lambda: self._turn == me, timeout=60), f"caller {me} never got its turn back"


def stepped_client(sandbox: SandboxProcess, callers: int, **budgets: float) -> tuple[BatchClient, SteppedCallers]:
    """A client of `sandbox` whose session sleeps and reads the time through `SteppedCallers`."""
    stepped = SteppedCallers(sandbox, callers)
    settings = api_settings(sandbox.env, **budgets)
    session = ApiSession(settings, sleep=stepped.sleep, clock=stepped.clock, jitter=lambda: 0.5)
    session._http.hooks["response"].append(stepped.answered)
    return BatchClient(settings, session=session), stepped


def test_rate_limit_answers_429_with_retry_after_in_milliseconds(stepped_sandbox):
    """On the sandbox clock the window is exact: the token and four calls fill the second, the
    refusals name the moment it frees (Retry-After counts down with the clock), and then it does."""
    refused_before = faults(stepped_sandbox, rate_limit=5)
    http = stepped_sandbox.http()  # the token request is the first of the five
    answers = [http.get("/api/v2/batch/tilinggrids") for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 16
    for answer in answers[4:]:
        assert answer.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert answer.headers["Retry-After"] == "1000"
    stepped_sandbox.advance(0.3)
    still = http.get("/api/v2/batch/tilinggrids")
    assert (still.status_code, still.headers["Retry-After"]) == (429, "700")
    stepped_sandbox.advance(0.7)
    assert http.get("/api/v2/batch/tilinggrids").status_code == 200  # waiting as told is enough
    assert http.get("/sandbox/stats").json()["requests"]["refused 429"] - refused_before == 17


def test_parallel_callers_of_one_session_pace_themselves_under_the_limit(stepped_sandbox):
    """Four callers, 60 calls, a 20 req/s limit: after the first 429 the session spaces its
    requests instead of bouncing off the limit (without it: about two refusals per success)."""
    refused_before = faults(stepped_sandbox, rate_limit=20)
    client, stepped = stepped_client(stepped_sandbox, callers=4)
    grids: list = []
    with client:
        elapsed = stepped.run(lambda caller: grids.extend(client.v2.tiling_grids() for _ in range(15)))
        assert client.session.pacer.interval > 0
    assert len(grids) == 60 and all(grids)
    stats = requests.get(stepped_sandbox.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]
    # 7, whatever the load: 4 when the window fills (each caller has a request on its way then),
    # and 3 once spaced, about one a second: the pacer counts those 3 among the 23 requests let
    # through, so it spaces them at 0.95 × 23 = 21.85 a second, a shade over the limit.
    refused = stats["refused 429"] - refused_before
    assert refused == sum(status == 429 for _, status, _ in stepped.answers) == 7, stepped.answers
    assert elapsed >= (61 - 20) / 20  # the server's limit held (61: the token request counts too)


def test_error_rate_and_lost_answers(stepped_sandbox):
    """A lost answer: the create took effect, its answer is a 502. An error rate of 1: every call
    fails with a 5xx in the service's error body, before the token is even looked at."""
    faults(stepped_sandbox, lost_response_rate=1)
    http = stepped_sandbox.http()
    lost = http.post(TASKS, json=example_body("corsica-max-ndvi", "lost answer"))
    assert lost.status_code == 502
    listed = http.get(TASKS, params={"search": "lost answer"}).json()["data"]
    assert len(listed) == 1  # the create took effect: only its answer was lost
    faults(stepped_sandbox, error_rate=1)
    answer = requests.get(stepped_sandbox.env["SH_BASE_URL"] + "/api/v2/batch/tilinggrids", timeout=10)
    assert answer.status_code in (500, 502, 503) and answer.json()["error"]["status"] == answer.status_code


def test_latency_and_replica_lag(stepped_sandbox):
    faults(stepped_sandbox, latency=0.2, replica_lag=1.0)
    http = stepped_sandbox.http()
    start = time.monotonic()
    task = http.post(TASKS, json=example_body("corsica-max-ndvi")).json()
    assert time.monotonic() - start >= 0.2  # latency is real time, whatever the clock
    assert http.get(f"{TASKS}/{task['id']}").status_code == 404  # the read replica has not seen it yet
    stepped_sandbox.advance(1.0)
    assert http.get(f"{TASKS}/{task['id']}").status_code == 200


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
        stale.stop(wait=False)


def test_jobs_survive_a_restart_with_a_data_dir(tmp_path):
    data = tmp_path / "data"
    first = SandboxProcess(tmp_path / "a", "--data-dir", str(data), "--speed", "10", "--manual-clock")
    try:
        http = first.http()
        task = http.post(TASKS, json=example_body("corsica-max-ndvi", "survivor")).json()
        http.post(f"{TASKS}/{task['id']}/analyse")
        first.advance(0.03)  # an analysis takes 0.3 s at speed 1
        assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "ANALYSIS_DONE"
        request = http.post("/api/v1/batch/process", json=v1_body()).json()
        before = http.get(f"{TASKS}/{task['id']}").json()
    finally:
        assert first.stop() == 0
    # The second clock starts at the real time again, later than anything the first one stamped.
    second = SandboxProcess(tmp_path / "b", "--data-dir", str(data), "--speed", "10", "--manual-clock")
    try:
        assert second.env["SH_CLIENT_ID"] == first.env["SH_CLIENT_ID"]  # generated once, kept
        http = second.http()
        assert http.get(f"{TASKS}/{task['id']}").json() == before
        assert http.get(f"/api/v1/batch/process/{request['id']}").json()["status"] == "CREATED"
        http.post(f"{TASKS}/{task['id']}/start")
        second.advance(1.0)  # 66 tiles, 8 at a time, 0.005 s each at speed 10
        assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "DONE"
        listed = http.get(TASKS, params={"search": "survivor"}).json()["data"]
        assert [t["id"] for t in listed] == [task["id"]]
    finally:
        second.stop(wait=False)


def test_the_client_survives_20_percent_5xx_and_a_rate_limit(tmp_path):
    """Every call either succeeds within its budget or raises one of our errors; after a 429 the
    session waits out the server's Retry-After (counted from the answer) and not a moment less."""
    hostile = SandboxProcess(tmp_path, "--error-rate", "0.2", "--rate-limit", "10", "--random-seed", "3", "--manual-clock")
    outcomes = {"ok": 0, "error": 0}
    try:
        client, stepped = stepped_client(hostile, callers=1, retry_budget=30.0, rate_limit_budget=30.0)

        def calls(_caller: int) -> None:
            ids: list[str] = []
            for i in range(12):
                for call in (lambda i=i: ids.append(client.v2.create(example_body("corsica-geopackage", f"hostile {i}")).id),
                             lambda: list(client.v2.iter_tasks(search="hostile")),
                             lambda: client.v2.tiling_grids(),
                             lambda: ids and client.v2.get(ids[-1])):
                    try:
                        call()
                        outcomes["ok"] += 1
                    except ApiError:
                        outcomes["error"] += 1

        with client:
            stepped.run(calls)
    finally:
        hostile.stop(wait=False)
    assert outcomes["ok"] >= 40, outcomes
    answers = stepped.answers
    told = [(n, moment + wait) for n, (moment, status, wait) in enumerate(answers) if status == 429]
    assert told, "the rate limit was never hit"
    for n, until in told:  # the next request went at the moment the answer named (a clock tick is 2^-20 s)
        assert until <= answers[n + 1][0] <= until + 1e-6, (answers[n], answers[n + 1])


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
        flaky = SandboxProcess(folder, "--speed", "10", "--tile-failure-rate", "0.2", "--random-seed", "11", "--manual-clock")
        try:
            http = flaky.http()
            request = http.post("/api/v1/batch/process", json=v1_body()).json()
            http.post(f"/api/v1/batch/process/{request['id']}/start")
            flaky.advance(5.0)  # far more than its tiles take at speed 10, with every retry
            status = http.get(f"/api/v1/batch/process/{request['id']}").json()["status"]
            assert status not in ("CREATED", "ANALYSING", "ANALYSIS_DONE", "PROCESSING"), status
            tiles = http.get(f"/api/v1/batch/process/{request['id']}/tiles", params={"status": "FAILED"}).json()["data"]
            return request["id"], sorted(t["id"] for t in tiles)
        finally:
            flaky.stop(wait=False)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two sandboxes side by side: neither runs on real time
        first, second = pool.map(failed_tiles, (tmp_path / "one", tmp_path / "two"))
    assert first == second and first[1]
