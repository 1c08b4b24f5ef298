"""`--format json` on apply, reconcile and import against the sandbox: one document on stdout that
`json.loads` reads (the plan nested, progress and prompts kept out), versioned, keys sorted,
secrets nowhere; and apply's summary line when a start is deferred until the service's estimate."""

from __future__ import annotations

import json

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.settings import api_settings
from tests.test_engine_chaos import write_manifests

SECRET, KEY = "S3cr3t-Json-Do-Not-Leak-0xFEED", "AKIA-JSON-DO-NOT-LEAK-99"
APPLY_KEYS = {"formatVersion", "plan", "planFile", "results", "summary", "outcome", "finalStatuses", "exitCode"}
RESULT_KEYS = {"name", "kind", "steps", "result", "deferredSteps", "message", "jobId"}


def document(out: str) -> dict:
    """The one JSON document of stdout, checked to be written with its keys sorted."""
    parsed = json.loads(out)
    assert out.strip() == json.dumps(parsed, indent=2, sort_keys=True, ensure_ascii=False)
    assert parsed["formatVersion"] == 1
    return parsed


def suffix_of(folder) -> str:
    return folder.name[-8:].lower().replace("_", "-").strip("-")


def with_secret_delivery(path) -> None:
    path.write_text(path.read_text().replace(
        "iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery",
        "accessKey: ${env:JSON_DELIVERY_KEY}\n          secretAccessKey: ${env:JSON_DELIVERY_SECRET}"))


def test_apply_and_reconcile_print_one_document_each(workspace, run_cli, monkeypatch):
    monkeypatch.setenv("JSON_DELIVERY_SECRET", SECRET)
    monkeypatch.setenv("JSON_DELIVERY_KEY", KEY)
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    created, analysed, budget, started = write_manifests(workspace / "manifests", "json-" + suffix_of(workspace))
    with_secret_delivery(workspace / "manifests" / f"{budget}.yaml")
    (workspace / "manifests" / f"{started}.yaml").unlink()  # comes later, as a change for review
    (workspace / "manifests" / f"{created}.yaml").unlink()
    outputs = []

    code, out, err = run_cli("apply", "--format", "json")  # no prompt mixed into the document: refused
    assert (code, out) == (1, "") and "cannot ask for confirmation" in err and "--auto-approve" in err

    code, out, err = run_cli("apply", "--format", "json", "--auto-approve")
    outputs.append(out + err)
    applied = document(out)
    assert code == 0 == applied["exitCode"] and set(applied) == APPLY_KEYS, err
    assert applied["plan"]["formatVersion"] == 1 and applied["plan"]["summary"]["counts"]["create"] == 2
    assert applied["planFile"] is None and applied["finalStatuses"] is None
    results = {r["name"]: r for r in applied["results"]}
    assert all(set(r) == RESULT_KEYS for r in results.values()) and len(results) == 2
    deferred = results[budget]
    assert deferred["result"] == "pending" and deferred["steps"] == ["create", "analyse", "start-within-budget"]
    assert deferred["deferredSteps"] == ["start-within-budget"] and deferred["jobId"]
    assert [r["result"] for name, r in results.items() if name != budget] == ["ok"]
    assert applied["summary"] == {"done": 2, "failed": 0, "blocked": 0, "deferred": 1, "behind": []}
    assert applied["outcome"] == "deferred"

    write_manifests(workspace / "manifests", "json-" + suffix_of(workspace))  # two more jobs: creates, for review
    with_secret_delivery(workspace / "manifests" / f"{budget}.yaml")
    code, out, err = run_cli("reconcile", "--format", "json", "--wait", "--poll-interval", "100ms")
    outputs.append(out + err)
    reconciled = document(out)
    assert code == 2 == reconciled["exitCode"] and reconciled["outcome"] == "review", err
    assert reconciled["detectOnly"] is False and reconciled["plan"]["formatVersion"] == 1
    assert [(r["name"], r["result"]) for r in reconciled["results"]] == [(budget, "ok")]  # started, within budget
    assert sorted((a["name"], a["kind"]) for a in reconciled["leftForReview"]) == [(created, "create"), (started, "create")]
    assert all(a["reasons"] for a in reconciled["leftForReview"])
    [final] = reconciled["finalStatuses"]
    assert final["name"] == budget and final["desiredState"] == "started" and final["converged"] is True

    code, out, err = run_cli("reconcile", "--format", "json", "--detect-only")
    outputs.append(out + err)
    detected = document(out)
    assert code == 2 == detected["exitCode"] and detected["outcome"] == "drift" and detected["detectOnly"] is True
    assert detected["results"] == [] and detected["finalStatuses"] is None and len(detected["leftForReview"]) == 2

    for path in (workspace / "manifests").glob("*.yaml"):  # back to the applied two: in sync
        if path.stem in (created, started):
            path.unlink()
    code, out, _ = run_cli("apply", "--format", "json", "--auto-approve", "--wait", "--poll-interval", "100ms")
    outputs.append(out)
    waited = document(out)
    assert code == 0 and waited["results"] == [] and waited["outcome"] == "done"
    assert {f["name"]: f["converged"] for f in waited["finalStatuses"]} == {analysed: True, budget: True}
    joined = "\n".join(outputs)
    assert SECRET not in joined and KEY not in joined


def test_a_deferred_start_counts_its_action_as_done(workspace, run_cli):
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    names = write_manifests(workspace / "manifests", "defer-" + suffix_of(workspace))
    for path in (workspace / "manifests").glob("*.yaml"):
        if path.stem != names[2]:  # only the job that starts within its budget
            path.unlink()
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    assert ("Apply complete: 1 action(s) done, 0 failed, 0 blocked, 1 start(s) deferred until the service's "
            "estimate is known.") in out
    assert f"✓ create {names[2]}: create, analyse; the start is deferred until the service's estimate is known" in out


def test_import_as_json_previews_and_writes(workspace, run_cli, sandbox):
    from tests.test_sandbox_v2 import example_body

    name = "json-import-" + suffix_of(workspace)
    with BatchClient(api_settings(sandbox.env)) as client:
        body = example_body("corsica-max-ndvi", f"made by hand {name}")
        body["output"]["delivery"]["s3"].pop("iamRoleARN")
        body["output"]["delivery"]["s3"].update(accessKey=KEY, secretAccessKey=SECRET)
        job = JobsApi(client, "v2").create(body)
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()

    code, out, err = run_cli("import", name, job.id, "--format", "json")
    preview = document(out)
    assert code == 0 and err == "" and SECRET not in out and KEY not in out
    assert preview["request"] == {"id": job.id, "api": "v2", "status": "CREATED"} and preview["name"] == name
    assert (preview["adopted"], preview["marked"], preview["written"]) == (False, False, None)
    assert f"name: {name}" in preview["manifest"] and "${env:" in preview["manifest"]
    assert len(preview["variables"]) == 2 and all(f"${{env:{v}}}" in preview["manifest"] for v in preview["variables"])
    assert name not in run_cli("state", "list")[1]

    code, out, err = run_cli("import", name, job.id, "--format", "json", "--write", f"manifests/{name}.yaml")
    written = document(out)
    assert code == 0 and SECRET not in out + err and KEY not in out + err
    assert (written["adopted"], written["marked"], written["written"]) == (True, True, f"manifests/{name}.yaml")
    assert written["manifest"] == (workspace / "manifests" / f"{name}.yaml").read_text()
    assert written["variables"] == preview["variables"]
    assert json.loads(run_cli("state", "pull")[1])["jobs"][name]["id"] == job.id


def test_with_shards_one_document_holds_an_entry_per_shard(workspace, run_cli):
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    (workspace / "reconciler.toml").write_text(
        f'[shards.good]\npaths = ["manifests/good"]\nstate = "s3://reconciler-state/{workspace.name}/good.json"\n\n'
        f'[shards.bad]\npaths = ["manifests/bad"]\nstate = "s3://reconciler-state/{workspace.name}/bad.json"\n')
    [name, *_] = write_manifests(workspace / "manifests" / "good", "shard-" + suffix_of(workspace))
    for path in (workspace / "manifests" / "good").glob("*.yaml"):
        if path.stem != name:
            path.unlink()
    (workspace / "manifests" / "bad").mkdir()
    (workspace / "manifests" / "bad" / "broken.yaml").write_text("apiVersion: nope\n")

    code, out, err = run_cli("apply", "--format", "json", "--auto-approve")
    applied = document(out)
    assert code == 1 and set(applied) == {"formatVersion", "shards"}  # one shard failed: the most serious code
    good, bad = applied["shards"]
    assert good["shard"] == "good" and good["exitCode"] == 0 and [r["name"] for r in good["results"]] == [name]
    assert bad["shard"] == "bad" and bad["error"]["exitCode"] == 1 and "error(s) in the manifests" in bad["error"]["message"]
    assert "shard bad:" in err  # and said on stderr, as without --format json

    code, out, _ = run_cli("status", "--format", "json", "--shard", "good")
    status = document(out)
    assert code == 0 and [(s["shard"], [j["name"] for j in s["jobs"]]) for s in status["shards"]] == [("good", [name])]
