"""`reconcile` for scheduled runs: detect-only changes nothing; a normal run applies only what
needs no review (here: restarting a PARTIAL v1 job within budget) and never re-creates a finished
job the service deleted as stale."""

from __future__ import annotations

import time

import requests

from tests.conftest import EXAMPLES, SandboxProcess, copy_evalscripts
from tests.test_engine_chaos import write_manifests


def stats(env) -> dict:
    return requests.get(env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]


def writes(counts: dict) -> int:
    return sum(n for key, n in counts.items() if key.split(" ")[0] in ("POST", "PUT", "DELETE") and "/api/" in key)


def use(sandbox, monkeypatch, tmp_path, key: str) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILER_STATE", f"s3://reconciler-state/reconcile/{key}.json")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


def test_detect_only_never_changes_anything(sandbox, tmp_path, monkeypatch, run_cli):
    use(sandbox, monkeypatch, tmp_path, "detect")
    names = write_manifests(tmp_path / "manifests", "detect")
    assert run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")[0] == 0
    target = tmp_path / "manifests" / f"{names[0]}.yaml"
    target.write_text(target.read_text().replace("description: Max NDVI over Corsica", "description: renamed"))
    write_manifests(tmp_path / "manifests", "detect-new")  # new jobs too
    pulled = run_cli("state", "pull")[1]
    before = stats(sandbox.env)
    report = tmp_path / "summary.md"
    code, out, _ = run_cli("reconcile", "--detect-only", "--report", str(report))
    assert code == 2 and "change(s) found" in out
    assert writes(stats(sandbox.env)) == writes(before)  # not one POST, PUT or DELETE
    assert run_cli("state", "pull")[1] == pulled  # the lockfile did not move
    text = report.read_text()
    assert text.startswith("## Reconcile (detect only)") and "need" not in text and "create" in text


def test_a_normal_run_does_only_what_needs_no_review(sandbox, tmp_path, monkeypatch, run_cli):
    use(sandbox, monkeypatch, tmp_path, "review")
    names = write_manifests(tmp_path / "manifests", "review")
    code, out, _ = run_cli("reconcile")
    assert code == 2 and "left for review" in out  # new jobs are not created by a scheduled run: it alerts
    assert "no lockfile yet" in run_cli("state", "list")[1] or names[0] not in run_cli("state", "list")[1]
    assert run_cli("apply", "--auto-approve")[0] == 0  # a reviewed apply creates them
    code, out, _ = run_cli("reconcile", "--wait", "--poll-interval", "100ms")
    assert code == 0  # the budget-limited job is started by the scheduled run once analysed
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code in (0, 2)


def test_self_heal_restarts_partial_within_budget_and_never_recreates_a_stale_finished_job(tmp_path, monkeypatch, run_cli):
    flaky = SandboxProcess(tmp_path / "sandbox", "--speed", "20", "--tile-failure-rate", "0.5", "--random-seed", "3",
                           "--stale-after", "3s")
    try:
        use(flaky, monkeypatch, tmp_path, "heal")
        folder = tmp_path / "manifests"
        folder.mkdir()
        text = (EXAMPLES / "corsica-max-ndvi-v1.yaml").read_text()
        text = text.replace("name: corsica-max-ndvi-v1", "name: heal-v1").replace(
            "bbox: [8.44, 41.31, 9.66, 43.1]", "bbox: [8.9, 41.9, 9.3, 42.3]").replace("maxRestarts: 2", "maxRestarts: 20")
        (folder / "heal.yaml").write_text(text)
        copy_evalscripts(folder)
        code, out, _ = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
        assert "PARTIAL" in out  # half the tiles fail
        for _ in range(20):
            code, out, _ = run_cli("reconcile", "--wait", "--poll-interval", "100ms")
            assert code == 0, out
            if "DONE" in run_cli("status")[1]:
                break
        status = run_cli("status")[1]
        assert " DONE " in status
        record = run_cli("state", "show", "heal-v1")[1]
        assert "restart" in record
        http, deadline = flaky.http(), time.monotonic() + 30
        while http.get("/api/v1/batch/process").json()["data"]:  # the service deletes the finished request as stale
            assert time.monotonic() < deadline, "the finished request was not deleted as stale"
            time.sleep(0.05)
        code, out, _ = run_cli("status")
        assert "GONE" in out
        before = stats(flaky.env)
        code, out, _ = run_cli("reconcile")
        assert code == 0 and "In sync" in out
        assert "it finished and the service deleted it as stale" in run_cli("plan", "--format", "json")[1]
        created = stats(flaky.env).get("POST /api/v1/batch/process", 0) - before.get("POST /api/v1/batch/process", 0)
        assert created == 0  # never paid for twice
    finally:
        flaky.stop()
