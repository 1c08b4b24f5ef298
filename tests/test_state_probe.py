"""The capability probe against real servers (DESIGN §3). The sandbox's S3 playing a store that
ignores conditional writes (`sandbox serve --s3-ignore-conditions`) is refused before anything is
locked, planned or changed, for one apply or six at once, while read-only commands keep working on
it and never probe. Against the normal sandbox the probe costs four S3 requests in a run, none in
the run's next lease, and leaves no object behind."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from reconciler.state import objects
from reconciler.state.model import HistoryEntry, JobState
from reconciler.state.operations import open_state
from tests.conftest import SandboxProcess, example_job
from tests.state_helpers import STATE_BUCKET, raw_s3_objects, s3_client

CONCURRENT = 6


@pytest.fixture(scope="module")
def careless(tmp_path_factory):
    """A sandbox whose S3 accepts If-Match/If-None-Match writes without checking them."""
    process = SandboxProcess(tmp_path_factory.mktemp("careless"), "--s3-ignore-conditions", "--speed", "10")
    yield process
    process.stop()


@pytest.fixture
def fresh_run(monkeypatch):
    """No store proven yet, as at the start of a process (an earlier test may have used this port)."""
    monkeypatch.setattr(objects, "_proven", set())


def _point_at(process: SandboxProcess, monkeypatch, tmp_path) -> str:
    for key, value in process.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NO_COLOR", "1")
    location = f"s3://{STATE_BUCKET}/{tmp_path.name}/state.json"
    monkeypatch.setenv("RECONCILER_STATE", location)
    return location


@pytest.fixture
def on_careless(careless, monkeypatch, tmp_path, fresh_run) -> str:
    return _point_at(careless, monkeypatch, tmp_path)


@pytest.fixture
def s3_requests(monkeypatch) -> list[tuple[str, str]]:
    """(method, URL) of every S3 request the CLI's boto3 clients send from here on (a botocore hook
    on a default session of this test's own)."""
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.setup_default_session()
    seen: list[tuple[str, str]] = []
    boto3.DEFAULT_SESSION.events.register("before-send.s3", lambda request, **_: seen.append((request.method, request.url)))
    return seen


def _probes(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [r for r in requests if ".probe/" in r[1]]


def _seed(location: str) -> None:
    """A lockfile with one job, written without a lease (conditional writes the store may ignore)."""
    state = open_state(location)
    snapshot = state.read()
    job = JobState(id="id-0", api="v2", specHash="hash0", status="DONE", history=[HistoryEntry(
        at=datetime(2026, 11, 1, tzinfo=UTC), who="ci@runner", action="create", result="ok", requestId="id-0")])
    state.write(snapshot.lockfile.model_copy(update={"jobs": {"corsica": job}}), snapshot)


def _objects(process: SandboxProcess, tmp_path) -> dict[str, bytes]:
    return raw_s3_objects(s3_client(process.env), STATE_BUCKET, f"{tmp_path.name}/")


def _jobs_created(process: SandboxProcess) -> int:
    import requests

    return requests.get(process.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["jobs"]


def _assert_refused(code: int, err: str, process: SandboxProcess) -> None:
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert f"the state store at {process.env['AWS_ENDPOINT_URL_S3']} (AWS_ENDPOINT_URL_S3) ignored" in errors[0]
    assert "If-None-Match: * (a second create succeeded)" in errors[0]
    assert "If-Match (a write over a stale ETag succeeded)" in errors[0]
    assert "hint: this store ignores conditional writes, so two runs could both take the lease" in err


def _named(folder, name: str) -> None:
    job = example_job(folder)
    job.write_text(job.read_text().replace("name: corsica-max-ndvi", f"name: {name}"))


def test_read_only_commands_work_on_a_store_that_ignores_conditions_and_never_probe(
        on_careless, careless, run_cli, tmp_path, s3_requests):
    _seed(on_careless)
    _named(tmp_path, f"probe-read-{uuid.uuid4().hex[:8]}")
    for args in (("state", "list"), ("state", "show", "corsica"), ("state", "pull"), ("lock", "status"), ("plan",),
                 ("reconcile", "--detect-only")):
        code, _, err = run_cli(*args)
        assert code in (0, 2) and "Error" not in err, (args, err)
    assert "corsica" in run_cli("state", "list")[1]
    assert s3_requests and _probes(s3_requests) == []


def test_apply_and_state_changes_are_refused_before_anything_changes(on_careless, careless, run_cli, tmp_path):
    _seed(on_careless)
    _named(tmp_path, f"probe-apply-{uuid.uuid4().hex[:8]}")
    pushed = tmp_path / "pushed.json"
    pushed.write_text(run_cli("state", "pull")[1])
    before, jobs = _objects(careless, tmp_path), _jobs_created(careless)
    for args in (("apply", "--auto-approve"), ("state", "rm", "corsica"), ("state", "push", "--force", str(pushed)),
                 ("reconcile",)):
        code, _, err = run_cli(*args)
        _assert_refused(code, err, careless)
    assert _objects(careless, tmp_path) == before  # no lease, no probe, no journal, the lockfile as it was
    assert _jobs_created(careless) == jobs


def test_concurrent_applies_on_a_store_that_ignores_conditions_create_no_job(careless, tmp_path):
    _named(tmp_path, f"probe-race-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, **careless.env, "NO_COLOR": "1", "RECONCILER_STATE": f"s3://{STATE_BUCKET}/{tmp_path.name}/state.json"}
    jobs = _jobs_created(careless)
    runs = [subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(CONCURRENT)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        _assert_refused(run.returncode, err, careless)
    assert _jobs_created(careless) == jobs
    assert _objects(careless, tmp_path) == {}


def test_on_the_sandbox_the_probe_costs_four_requests_once_per_run_and_leaves_nothing(
        sandbox, monkeypatch, tmp_path, run_cli, fresh_run, s3_requests):
    _point_at(sandbox, monkeypatch, tmp_path)
    _named(tmp_path, name := f"probe-cost-{uuid.uuid4().hex[:8]}")
    code, _, err = run_cli("apply", "--auto-approve")
    assert code == 0, err
    probes = _probes(s3_requests)
    assert len(probes) <= 4 and [method for method, _ in probes] == ["PUT", "PUT", "PUT", "DELETE"]
    assert len({url.split("?")[0] for _, url in probes}) == 1 and f"/{tmp_path.name}/state.json.probe/" in probes[0][1]
    s3_requests.clear()
    assert run_cli("state", "rm", name)[0] == 0  # the same process (run): proven already
    assert _probes(s3_requests) == []
    assert sorted(_objects(sandbox, tmp_path)) == [f"{tmp_path.name}/state.json"]  # no probe, lease or journal left
