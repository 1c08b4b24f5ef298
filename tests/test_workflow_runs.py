"""The workflow templates' own `run:` steps, in order, as GitHub would run them for a pull request,
a merge and a schedule (tests/workflow_runner.py), against the sandbox, in a throw-away git
repository with two shards: the PR plan shows each shard; the merge applies exactly the saved
plans; a plan made stale or edited between review and merge fails the apply job, with the fresh
plan in its summary; the scheduled reconcile runs per shard."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT
from tests.test_engine_chaos import marked, write_manifests
from tests.workflow_runner import Runner

CONFIG = """\
[shards.agri]
paths = ["manifests/agri"]
state = "s3://reconciler-state/{key}/agri.json"

[shards.forest]
paths = ["manifests/forest"]
state = "s3://reconciler-state/{key}/forest.json"
"""


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def event(sandbox, kind: str, sha: str, **extra) -> dict:
    """What GitHub would fill the templates' expressions with, for this repository."""
    env = sandbox.env
    github = {"repository": "team/manifests", "server_url": "https://github.com", "run_id": "7", "sha": sha,
              "event": extra.pop("github_event", {})}
    return {"github": github, "vars": {"RECONCILER_ENABLED": "true", "AWS_DEFAULT_REGION": env["AWS_DEFAULT_REGION"],
                                 "SH_BASE_URL": env["SH_BASE_URL"], "SH_TOKEN_URL": env["SH_TOKEN_URL"]},
            "secrets": {"SH_CLIENT_ID": env["SH_CLIENT_ID"], "SH_CLIENT_SECRET": env["SH_CLIENT_SECRET"],
                        "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]},
            "inputs": extra, "kind": kind}


def pull_request(sandbox, head: str, number: int = 1) -> dict:
    return event(sandbox, "pull_request", head, github_event={"pull_request": {
        "number": number, "head": {"sha": head, "repo": {"full_name": "team/manifests"}}}})


def test_a_pull_request_is_planned_per_shard_and_its_reviewed_plans_are_applied_on_merge(sandbox, tmp_path):
    key = tmp_path.name[-10:].lower().replace("_", "-").strip("-")
    repo, state = tmp_path / "repo", tmp_path / "github"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "reconciler.toml").write_text(CONFIG.format(key=key))
    names = write_manifests(repo / "manifests" / "agri", f"wf-agri-{key}") + \
        write_manifests(repo / "manifests" / "forest", f"wf-forest-{key}")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two shards of jobs")
    head = git(repo, "rev-parse", "HEAD")
    runner = Runner(ROOT / ".github" / "workflows", repo, state,
                    {"AWS_ENDPOINT_URL_S3": sandbox.env["AWS_ENDPOINT_URL_S3"], "OAUTHLIB_INSECURE_TRANSPORT": "1", "HOME": str(tmp_path / "home")})

    plan = runner.run("plan.yml", pull_request(sandbox, head))
    assert plan.failed() == [], plan.failed()
    assert set(plan.jobs) >= {"shards", "plan[agri]", "plan[forest]", "comment"}
    comments = sorted((state / "comments").iterdir())
    bodies = {c.read_text().split("\n", 1)[0]: c.read_text() for c in comments}
    assert set(bodies) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    assert all("to create" in body and head[:12] in body for body in bodies.values())
    assert not any(name in marked(sandbox.env) for name in names)  # a plan changes nothing

    (state / "pulls.json").write_text(json.dumps({head: head}))  # the merge of the pull request (fast-forward)
    apply = runner.run("apply.yml", event(sandbox, "push", head))
    assert apply.failed() == [], apply.failed()
    assert "apply-fresh" not in str(apply.jobs)
    assert sorted(n for n in marked(sandbox.env) if n in names) == sorted(names)

    # reviewed, then made stale by another merge before it is applied: refused, the fresh plan in the summary
    target = repo / "manifests" / "agri" / f"wf-agri-{key}-created.yaml"
    target.write_text(target.read_text().replace("state: created", "state: analysed"))
    git(repo, "commit", "-qam", "analyse one")
    second = git(repo, "rev-parse", "HEAD")
    assert runner.run("plan.yml", pull_request(sandbox, second, 2)).failed() == []
    saved = state / "artifacts" / f"reconciler-plan-{second}-agri" / "reconciler.plan"
    document = json.loads(saved.read_text())
    document["plan"]["actions"][0]["steps"] = ["analyse", "start"]  # edited after the review
    saved.write_text(json.dumps(document))
    (state / "pulls.json").write_text(json.dumps({second: second}))
    refused = runner.run("apply.yml", event(sandbox, "push", second))
    failed = {job for job, _, _ in refused.failed()}
    assert failed == {"apply[agri]"}, refused.failed()
    assert "was not applied in full" in refused.summary and "to analyse" in refused.summary

    scheduled = runner.run("reconcile.yml", event(sandbox, "schedule", second))
    assert {job for job in scheduled.jobs} == {"shards", "reconcile[agri]", "reconcile[forest]"}
    assert "## Reconcile" in scheduled.summary
