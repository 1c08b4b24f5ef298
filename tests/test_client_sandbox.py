"""The client against the sandbox over real HTTP: the whole v2 lifecycle, typed errors, paging,
token refresh, and `reconciler grids`."""

from __future__ import annotations

import time

import pytest
import requests

from reconciler.api.client import BatchClient
from reconciler.api.errors import BadRequest, Conflict, NotFound
from reconciler.settings import api_settings
from tests.conftest import SandboxProcess
from tests.test_sandbox_v2 import example_body, objects


def client_for(sandbox: SandboxProcess) -> BatchClient:
    return BatchClient(api_settings(sandbox.env))


def wait(client: BatchClient, task_id: str, statuses: set[str], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while (task := client.v2.get(task_id)).status.value not in statuses:
        assert time.monotonic() < deadline, task.status
        time.sleep(0.05)
    return task


def test_create_analyse_start_done_with_outputs_in_the_bucket(sandbox):
    with client_for(sandbox) as client:
        task = client.v2.create(example_body("corsica-max-ndvi", "client lifecycle"))
        assert task.status.value == "CREATED" and task.description == "client lifecycle"
        client.v2.analyse(task.id)
        analysed = wait(client, task.id, {"ANALYSIS_DONE"})
        assert analysed.costPU and analysed.costPU > 0
        client.v2.start(task.id)
        done = wait(client, task.id, {"DONE", "FAILED"})
        assert done.status.value == "DONE" and done.completionPercentage == 100
    keys = objects(sandbox.s3(), "reconciler-demo-results", f"corsica-max-ndvi/{task.id}/")
    assert len(keys) == 66  # the Corsica bbox covers 66 tiles of grid 0 (see test_geo_tiles)


def test_stop_and_resume_with_typed_errors(tmp_path):
    slow = SandboxProcess(tmp_path, "--manual-clock", "--tile-seconds", "0.2", "--workers", "1", "--analysis-seconds", "0.1")
    try:
        with client_for(slow) as client:
            task = client.v2.create(example_body("corsica-max-ndvi"))
            with pytest.raises(BadRequest) as refused:
                client.v2.stop(task.id)
            assert "CREATED" in refused.value.message
            client.v2.start(task.id)
            slow.advance(1)  # analysed, then a few of its 66 tiles
            assert client.v2.get(task.id).status.value == "PROCESSING"
            with pytest.raises(Conflict):
                client.v2.update_description(task.id, "not while processing")
            client.v2.stop(task.id)
            stopped = client.v2.get(task.id)
            assert stopped.status.value == "STOPPED" and stopped.stoppedStatusReason.value == "USER_ACTION"
            assert client.v2.update_description(task.id, "renamed")["description"] == "renamed"
            client.v2.start(task.id)
            slow.advance(60)
            done = client.v2.get(task.id)
            assert (done.status.value, done.description) == ("DONE", "renamed")
            with pytest.raises(NotFound):
                client.v2.get("00000000-0000-0000-0000-000000000000")
            bad = example_body("corsica-max-ndvi")
            bad["input"]["resolution"] = 25
            with pytest.raises(BadRequest) as invalid:
                client.v2.create(bad)
            assert "resolution" in str(invalid.value.errors)
    finally:
        assert slow.stop() == 0


def test_iter_tasks_pages_through_every_page(sandbox):
    marker = f"client-paging-{time.time_ns()}"
    with client_for(sandbox) as client:
        created = [client.v2.create(example_body("corsica-geopackage", f"{marker} {i}")).id for i in range(26)]
        listed = [t.id for t in client.v2.iter_tasks(search=marker, page_size=10)]
    assert listed == created


def test_token_is_reused_and_refreshed_before_it_expires(tmp_path):
    short = SandboxProcess(tmp_path, "--token-ttl", "2")
    try:
        def token_requests() -> int:
            stats = requests.get(short.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]
            return stats.get("POST /auth/realms/main/protocol/openid-connect/token", 0)

        with client_for(short) as client:
            for _ in range(5):
                client.v2.tiling_grids()
            assert token_requests() == 1  # one token for many calls
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # 2.5 lifetimes: every call must still succeed
                assert len(client.v2.tiling_grids()) == 6
                time.sleep(0.1)
        assert 2 <= token_requests() <= 6
    finally:
        short.stop()


def test_grids_command_against_the_sandbox(sandbox, run_cli, monkeypatch):
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    code, out, _ = run_cli("grids")
    assert code == 0 and "20km grid" in out and "LAEA 100km grid" in out
    code, out, _ = run_cli("grids", "--format", "json")
    import json

    assert code == 0 and [g["id"] for g in json.loads(out)] == [0, 1, 2, 3, 6, 7]
    monkeypatch.setenv("SH_CLIENT_SECRET", "wrong")
    code, _, err = run_cli("grids")
    assert code == 1 and "Traceback" not in err and "wrong" not in err
