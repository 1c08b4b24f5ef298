"""The sandbox's manual clock (`--manual-clock`, `POST /sandbox/clock`): sandbox time stands still
until a test advances it, and an advance answers only once every job has caught up with the new
time, so a test asserts right after it instead of sleeping."""

from __future__ import annotations

import time

import pytest
import requests

from reconciler.sandbox.clock import TICK, ManualClock
from tests.conftest import SandboxProcess
from tests.test_sandbox_v1 import v1_body
from tests.test_sandbox_v2 import example_body, objects

TASKS = "/api/v2/batch/process"


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    """Defaults: analysis 0.3 s, tiles 0.05 s, 8 at a time (the Corsica job: 66 tiles in 9 rounds)."""
    process = SandboxProcess(tmp_path_factory.mktemp("stepped"), "--manual-clock")
    yield process
    process.stop()


def clock(sandbox: SandboxProcess) -> dict:
    return requests.get(sandbox.env["SH_BASE_URL"] + "/sandbox/clock", timeout=10).json()


def test_time_stands_still_until_advanced_and_each_advance_is_synchronous(stepped):
    http, s3 = stepped.http(), stepped.s3()
    before = clock(stepped)
    assert before["manual"] is True
    task = http.post(TASKS, json=example_body("corsica-max-ndvi", "stepped")).json()
    http.post(f"{TASKS}/{task['id']}/start")
    assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "ANALYSING"
    assert clock(stepped)["now"] == before["now"]  # real time passed; sandbox time did not

    stepped.advance(0.29)
    assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "ANALYSING"
    now = stepped.advance(0.02)  # the analysis ended on the way: the job is processing its first tiles
    assert now == pytest.approx(before["now"] + 0.31, abs=1e-5) and clock(stepped)["now"] == now
    running = http.get(f"{TASKS}/{task['id']}").json()
    assert running["status"] == "PROCESSING" and running["completionPercentage"] == 0
    stepped.advance(0.42)  # 0.73 s: eight rounds of eight tiles done, the last two tiles under way
    assert http.get(f"{TASKS}/{task['id']}").json()["completionPercentage"] == pytest.approx(100 * 64 / 66, abs=0.01)
    stepped.advance(0.04)  # 0.77 s: the ninth round ended inside this step
    done = http.get(f"{TASKS}/{task['id']}").json()
    assert done["status"] == "DONE" and done["completionPercentage"] == 100
    assert len(objects(s3, "reconciler-demo-results", f"corsica-max-ndvi/{task['id']}/")) == 66  # written, too


def test_a_zero_advance_runs_what_is_due_now_and_v1_steps_alike(stepped):
    http = stepped.http()
    request = http.post("/api/v1/batch/process", json=v1_body(description="stepped v1")).json()
    url = f"/api/v1/batch/process/{request['id']}"
    http.post(f"{url}/analyse")
    stepped.advance(0.3)
    assert http.get(url).json()["status"] == "ANALYSIS_DONE"
    http.post(f"{url}/start")
    assert {t["status"] for t in http.get(f"{url}/tiles").json()["data"]} == {"PENDING"}  # no worker thread
    stepped.advance(0)
    statuses = [t["status"] for t in http.get(f"{url}/tiles", params={"count": 100}).json()["data"]]
    assert statuses.count("PROCESSING") == 8 and statuses.count("QUEUED") == 8  # moved, with no time passing
    stepped.advance(1)
    assert http.get(url).json()["status"] == "DONE"


def test_advances_are_checked_and_refused_on_a_real_time_sandbox(stepped, sandbox):
    url = stepped.env["SH_BASE_URL"] + "/sandbox/clock"
    for bad in ({}, {"advance": -1}, {"advance": "1"}, {"advance": True}, {"advance": None}):
        answer = requests.post(url, json=bad, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["status"] == 400, bad
    real = requests.post(sandbox.env["SH_BASE_URL"] + "/sandbox/clock", json={"advance": 1}, timeout=10)
    assert real.status_code == 409 and "--manual-clock" in real.json()["error"]["message"]
    assert clock(sandbox)["manual"] is False


def test_the_manual_clock_ticks_exactly_and_never_goes_back():
    clock = ManualClock(start=1_790_000_000.123456789)
    start = clock()
    assert start % TICK == 0 and start >= 1_790_000_000.123456789
    clock.move_to(start + 0.3)
    assert clock() - start >= 0.3 and (clock() - start) % TICK == 0  # never a rounding error short
    clock.move_to(start)
    assert clock() - start >= 0.3


def test_faults_changed_while_running_reach_the_worker_too(stepped):
    """`PUT /sandbox/faults` with `stale_after`: the next step deletes what has gone stale since."""
    http, faults = stepped.http(), stepped.env["SH_BASE_URL"] + "/sandbox/faults"
    task = http.post(TASKS, json=example_body("corsica-max-ndvi", "goes stale")).json()
    try:
        assert requests.put(faults, json={"stale_after": 2.0}, timeout=10).status_code == 200
        stepped.advance(1.5)
        assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "CREATED"
        stepped.advance(0.5)
        assert http.get(f"{TASKS}/{task['id']}").status_code == 404  # never started, 2 s untouched: deleted
    finally:
        requests.put(faults, json={"stale_after": None}, timeout=10)


def test_an_idle_worker_sleeps_until_something_falls_due_or_a_job_changes(monkeypatch):
    """The real-time worker takes no CPU while nothing is due: it sleeps until the next moment
    something ends (at least a tick, at most IDLE_WAKE), and every change to a job wakes it. With
    IDLE_WAKE an hour, a job analysed after the worker fell asleep still finishes its analysis."""
    from reconciler.sandbox import jobs, worker
    from reconciler.sandbox.faults import Faults
    from reconciler.sandbox.store import SandboxState

    clock = ManualClock(start=1_790_000_000.0)
    state = SandboxState()
    idle = worker.Worker(state, None, worker.Timing(), Faults(), clock=clock)
    assert idle._quiet_seconds() == worker.IDLE_WAKE  # nothing at all
    job = jobs.new_job("v2", example_body("corsica-max-ndvi"), clock(), state.next_sequence())
    with state.lock:
        state.add(job)
        jobs.analyse(job, clock(), 0.3)
        state.save(job)
    assert idle._quiet_seconds() == pytest.approx(0.3, abs=1e-5)  # until the analysis ends
    clock.move_to(clock() + 0.5)
    assert idle._quiet_seconds() == worker.Timing().tick_seconds  # overdue: at once, after a tick

    monkeypatch.setattr(worker, "IDLE_WAKE", 3600.0)
    state = SandboxState()
    running = worker.Worker(state, None, worker.Timing(), Faults())
    running.start()
    try:
        job = jobs.new_job("v2", example_body("corsica-max-ndvi"), time.time(), state.next_sequence())
        with state.lock:
            state.add(job)
            jobs.analyse(job, time.time(), 0.0)
            state.save(job)
        deadline = time.monotonic() + 30
        while job.status == "ANALYSING":
            assert time.monotonic() < deadline, "a change did not wake the sleeping worker"
            time.sleep(0.01)
        assert job.status == "ANALYSIS_DONE" and job.error is None
    finally:
        running.stop()
    assert not running.is_alive()
