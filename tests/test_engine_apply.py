"""plan and apply against the sandbox: convergence of the examples, in-place description updates,
saved plans and their staleness, secrets kept out of every output, import and state rebuild."""

from __future__ import annotations

import json

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.engine.identity import owner
from reconciler.settings import api_settings
from tests.conftest import EXAMPLES, example_job, rename_examples
from tests.test_engine_chaos import marked


def test_examples_converge_and_a_description_edit_is_an_in_place_update(workspace, run_cli, sandbox):
    suffix = workspace.name[-12:].lower().replace("_", "-").strip("-")
    rename_examples(workspace, suffix)
    code, out, err = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    assert code == 0, out + err
    assert "Apply complete: 5 action(s) done, 0 failed, 0 blocked, 0 deferred." in out
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    code, out, _ = run_cli("status")
    assert sum(1 for line in out.splitlines() if "  started  DONE " in line) == 4 and "created  CREATED" in out

    target = workspace / "manifests" / "corsica-max-ndvi.yaml"
    target.write_text(target.read_text().replace("description: Max NDVI over Corsica\n", "description: Max NDVI, renamed\n"))
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code == 2 and "~ update" in out and "Max NDVI, renamed" in out
    before = marked(sandbox.env)
    assert run_cli("apply", "--auto-approve")[0] == 0
    assert marked(sandbox.env) == before  # updated in place: no new request
    assert run_cli("plan", "--detailed-exitcode")[0] == 0
    mine = {k: v for k, v in before.items() if k.endswith(suffix)}
    assert len(mine) == 5 and all(len(ids) == 1 for ids in mine.values())


def test_saved_plans_are_applied_exactly_or_refused_when_stale(workspace, run_cli, sandbox):
    rename_examples(workspace, "saved-" + workspace.name[-8:].lower().replace("_", "-").strip("-"))
    for path in (workspace / "manifests").glob("*.yaml"):
        if "geopackage" not in path.name:
            path.unlink()
    code, out, _ = run_cli("plan", "--out", "plan.json", "--detailed-exitcode")
    assert code == 2 and json.loads((workspace / "plan.json").read_text())["format"] == "reconciler-plan"
    code, out, err = run_cli("apply", "plan.json")
    assert code == 0, out + err
    code, _, err = run_cli("apply", "plan.json")
    assert code == 1 and "the lockfile changed since the plan was made" in err

    target = next((workspace / "manifests").glob("*.yaml"))
    target.write_text(target.read_text().replace("state: created", "state: analysed"))
    assert run_cli("plan", "--out", "plan.json")[0] == 0
    with BatchClient(api_settings(sandbox.env)) as client:  # someone acts on the job meanwhile
        [job] = [j for j in JobsApi(client, "v2").list_jobs() if owner(j.description) and "saved-" in j.description]
        JobsApi(client, "v2").analyse(job.id)
    code, _, err = run_cli("apply", "plan.json")
    assert code == 1 and "the live jobs changed since the plan was made" in err


def test_no_secret_reaches_any_output_the_saved_plan_or_the_lockfile(workspace, run_cli, sandbox, monkeypatch):
    secret, key = "S3cr3t-Do-Not-Leak-0xDEADBEEF", "AKIA-DO-NOT-LEAK-1234"
    monkeypatch.setenv("DELIVERY_SECRET", secret)
    monkeypatch.setenv("DELIVERY_KEY", key)
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace("name: corsica-max-ndvi", "name: secret-" + workspace.name[-6:].lower().replace("_", "-"))
    text = text.replace("iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery",
                        "accessKey: ${env:DELIVERY_KEY}\n          secretAccessKey: ${env:DELIVERY_SECRET}")
    (workspace / "manifests" / "secret.yaml").write_text(text)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        outputs.append("".join(run_cli("plan", "--format", fmt, "--out", "plan.json")[1:]))
    outputs.append((workspace / "plan.json").read_text())
    outputs.append("".join(run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")[1:]))
    monkeypatch.setenv("DELIVERY_SECRET", secret + "-rotated")
    outputs.append("".join(run_cli("plan", "--format", "json")[1:]))  # a changed secret is a change, never shown
    outputs.append("".join(run_cli("state", "pull")[1:]))
    outputs.append("".join(run_cli("state", "list")[1:]))
    s3 = sandbox.s3()
    prefix = f"{workspace.name}/"
    for item in s3.list_objects_v2(Bucket="reconciler-state", Prefix=prefix).get("Contents", []):
        outputs.append(s3.get_object(Bucket="reconciler-state", Key=item["Key"])["Body"].read().decode())
    joined = "\n".join(outputs)
    assert "(sensitive)" in outputs[-4]  # the rotated secret shows up as a change of a sensitive value
    assert secret not in joined and key not in joined


def test_import_and_state_rebuild(workspace, run_cli, sandbox):
    from tests.test_sandbox_v2 import example_body

    name = "imported-" + workspace.name[-6:].lower().replace("_", "-").strip("-")
    with BatchClient(api_settings(sandbox.env)) as client:
        body = example_body("corsica-max-ndvi", f"made by hand {name}")
        body["output"]["delivery"]["s3"]["accessKey"] = "AKIA-IMPORTED"
        body["output"]["delivery"]["s3"]["secretAccessKey"] = "imported-secret-value"
        body["output"]["delivery"]["s3"].pop("iamRoleARN")
        job = JobsApi(client, "v2").create(body)
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    code, out, _ = run_cli("plan", "--show-unmanaged")
    assert code == 0 and job.id in out
    code, out, err = run_cli("import", name, job.id)  # a preview: nothing adopted, nothing marked
    assert code == 0 and f"name: {name}" in out and "Nothing was adopted" in err and "imported-secret-value" not in out
    assert name not in run_cli("state", "list")[1] and name not in marked(sandbox.env)
    code, out, _ = run_cli("import", name, job.id, "--write", f"manifests/{name}.yaml")
    assert code == 0 and f"as {name}" in out
    written = (workspace / "manifests" / f"{name}.yaml").read_text()
    assert "imported-secret-value" not in written and "${env:" in written
    assert json.loads(run_cli("state", "pull")[1])["jobs"][name]["file"] == f"manifests/{name}.yaml"  # its scope
    code, out, err = run_cli("validate")
    assert code == 0, out + err
    variables = [line.split("${env:")[1].split("}")[0] for line in written.splitlines() if "${env:" in line]
    import os

    os.environ.update({v: "imported-secret-value" if v.endswith("SECRETACCESSKEY") else "AKIA-IMPORTED"
                       for v in variables})
    try:
        code, out, _ = run_cli("plan", "--detailed-exitcode")
        assert code == 0, out  # the written manifest reproduces the request (state: created, as it is)
        assert marked(sandbox.env)[name] == [job.id]  # the marker was added to the live request
        manifest = workspace / "manifests" / f"{name}.yaml"
        manifest.write_text(manifest.read_text().replace("state: created", "state: started"))
        code, out, _ = run_cli("plan", "--detailed-exitcode")
        assert code == 2 and "> start" in out, out

        # the lockfile is lost: rebuild it from the markers
        monkeypatch_state = f"s3://reconciler-state/{workspace.name}/rebuilt.json"
        code, out, _ = run_cli("state", "rebuild", "--state", monkeypatch_state)
        assert code == 0 and f"+ {name}: {job.id}" in out
        code, out, _ = run_cli("state", "show", name, "--state", monkeypatch_state)
        assert job.id in out and "rebuild" in out
        rebuilt = json.loads(run_cli("state", "pull", "--state", monkeypatch_state)[1])["jobs"][name]
        assert rebuilt["file"] == f"manifests/{name}.yaml"
    finally:
        for v in variables:
            os.environ.pop(v, None)


def test_a_blocked_change_makes_apply_exit_1_with_one_summary_that_says_so(workspace, run_cli, sandbox):
    rename_examples(workspace, "blocked-" + workspace.name[-8:].lower().replace("_", "-").strip("-"))
    for path in (workspace / "manifests").glob("*.yaml"):
        if "geopackage" not in path.name:
            path.unlink()
    assert run_cli("apply", "--auto-approve")[0] == 0
    [target] = (workspace / "manifests").glob("*.yaml")
    target.write_text(target.read_text().replace('from: "2019-04-01T00:00:00Z"', 'from: "2019-05-01T00:00:00Z"'))
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 1, out + err
    assert "! blocked" in out and out.rstrip().endswith(
        "Apply incomplete: 0 action(s) done, 0 failed, 1 blocked, 0 deferred.")
    assert "Apply complete" not in out


def test_a_replacement_creates_before_it_stops_and_a_refused_create_leaves_the_old_job_running(tmp_path, run_cli,
                                                                                                  own_sandbox):
    """DESIGN §4: create the new request, then stop the old one, then start the new one."""
    import time
    from datetime import datetime

    slow = own_sandbox("--tile-seconds", "2", "--workers", "1")  # 66 tiles: minutes
    manifest = example_job(tmp_path, "    onSpecChange: replace\n")
    http = slow.http()

    def task(job_id: str) -> dict:
        return http.get(f"/api/v2/batch/process/{job_id}").json()

    def processing() -> dict:
        deadline = time.monotonic() + 60
        while True:
            [job] = [j for j in http.get("/api/v2/batch/process").json()["data"]
                     if j["status"] not in ("STOPPED", "DONE", "FAILED")]
            if job["status"] == "PROCESSING" or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    assert run_cli("apply", "--auto-approve")[0] == 0
    old = processing()
    manifest.write_text(manifest.read_text().replace('from: "2019-04-01T00:00:00Z"', 'from: "2019-04-15T00:00:00Z"'))
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "steps: create, stop old, start" in out
    new = processing()
    assert new["id"] != old["id"] and task(old["id"])["status"] == "STOPPED"
    stopped_at = datetime.fromisoformat(task(old["id"])["userActionUpdated"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(new["created"].replace("Z", "+00:00")) < stopped_at

    http.put("/sandbox/faults", json={"refuse_creates": "Not enough processing units"}).raise_for_status()
    manifest.write_text(manifest.read_text().replace('from: "2019-04-15T00:00:00Z"', 'from: "2019-05-01T00:00:00Z"'))
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 1 and "Not enough processing units" in out + err
    assert task(new["id"])["status"] == "PROCESSING" and task(new["id"])["userAction"] == "START"
    assert len(http.get("/api/v2/batch/process").json()["data"]) == 2  # nothing more was created


def test_a_lagging_read_replica_after_a_create_is_waited_out_never_created_twice(tmp_path, run_cli, own_sandbox):
    lagging = own_sandbox("--replica-lag", "1500ms", "--speed", "10")
    example_job(tmp_path)
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert "create, start" in out
    jobs = lagging.http().get("/api/v2/batch/process").json()["data"]
    assert len(jobs) == 1 and jobs[0]["userAction"] == "START"
