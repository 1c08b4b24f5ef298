"""The workflow templates' own `run:` steps, in order, as GitHub would run them for a pull request
(`pull_request_target`), a merge and a schedule (tests/workflow_runner.py), against the sandbox, in
a throw-away git repository with two shards and the secrets only in the environments: a pull
request, from this repository or from a fork, is planned per shard with a comment each, and nothing
in its files is ever executed or imported; the merge applies exactly the plans planned for its head
commit by a successful pull_request_target run of plan.yml, never an artifact of the same name made
by another workflow, event, branch or a failed run; a plan made stale, edited, or made for another
commit is refused with the fresh plan in the job's summary; the scheduled reconcile runs per shard."""

from __future__ import annotations

import os
import subprocess
import sys

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
PLAN_KEY = "a plan key of the test environments"
# Files of a pull request that run code if anything imports, executes or installs from its checkout.
TRAP = "import pathlib; pathlib.Path({marker!r}).open('a').write('python ' + __file__ + '\\n')\n"
TRAP_SCRIPT = "#!/bin/sh\necho \"$0\" >> {marker!r}\n"
TRAPS = {"json.py": TRAP, "sitecustomize.py": TRAP, "usercustomize.py": TRAP, "tomllib.py": TRAP,
         "reconciler/__init__.py": TRAP, "reconciler/__main__.py": TRAP, "setup.py": TRAP,
         "Makefile": "all:\n\techo make >> {marker!r}\n", "jq": TRAP_SCRIPT, "gh": TRAP_SCRIPT, "git": TRAP_SCRIPT,
         "python": TRAP_SCRIPT}


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def event(sandbox, name: str, sha: str, pull_request: dict | None = None, **inputs) -> dict:
    """What GitHub fills the templates' expressions with for event `name` at commit `sha` of main:
    the secrets live only in the environments, which only main may use."""
    env = sandbox.env
    secrets = {"SH_CLIENT_ID": env["SH_CLIENT_ID"], "SH_CLIENT_SECRET": env["SH_CLIENT_SECRET"],
               "RECONCILER_PLAN_KEY": PLAN_KEY, "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}
    payload = {"repository": {"full_name": "team/manifests", "default_branch": "main"}}
    if pull_request:
        payload["pull_request"] = pull_request
    return {"github": {"repository": "team/manifests", "server_url": "https://github.com", "sha": sha,
                       "event_name": name, "ref_name": "main", "event": payload},
            "vars": {"RECONCILER_ENABLED": "true", "AWS_DEFAULT_REGION": env["AWS_DEFAULT_REGION"],
                     "SH_BASE_URL": env["SH_BASE_URL"], "SH_TOKEN_URL": env["SH_TOKEN_URL"]},
            "secrets": {},
            "environments": {"reconciler-plan": {"branches": ["main"], "secrets": secrets},
                             "reconciler-apply": {"branches": ["main"], "secrets": secrets},
                             "reconciler-approval": {"branches": ["main"]}},
            "inputs": inputs}


def pull_request(sandbox, base: str, head: str, number: int, fork: bool = False) -> dict:
    """A pull_request_target event: main's workflow at `base`, the pull request's head at `head`."""
    owner = "outsider" if fork else "team"
    return event(sandbox, "pull_request_target", base, pull_request={
        "number": number, "base": {"ref": "main", "sha": base},
        "head": {"sha": head, "ref": "change", "repo": {"full_name": f"{owner}/manifests"}}})


def setup(sandbox, tmp_path) -> tuple:
    """A repository whose main holds reconciler.toml, a runner for it, and the lockfile key."""
    key = tmp_path.name[-10:].lower().replace("_", "-").strip("-")
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "reconciler.toml").write_text(CONFIG.format(key=key))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two shards")
    runner = Runner(ROOT / ".github" / "workflows", repo, tmp_path / "github",
                    {"AWS_ENDPOINT_URL_S3": sandbox.env["AWS_ENDPOINT_URL_S3"], "OAUTHLIB_INSECURE_TRANSPORT": "1",
                     "HOME": str(tmp_path / "home")})
    return repo, runner, key, git(repo, "rev-parse", "HEAD")


def branch(repo, name: str, base: str, message: str) -> str:
    """Commit everything in the work tree on a new branch `name` from `base`; its head."""
    git(repo, "checkout", "-q", "-b", name, base)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def merge(runner, repo, head: str, number: int) -> str:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", head)
    runner.github.merged(head, head, number)
    return head


def test_a_pull_request_is_planned_per_shard_and_its_reviewed_plans_are_applied_on_merge(sandbox, tmp_path):
    repo, runner, key, base = setup(sandbox, tmp_path)
    names = write_manifests(repo / "manifests" / "agri", f"wf-agri-{key}") + \
        write_manifests(repo / "manifests" / "forest", f"wf-forest-{key}")
    head = branch(repo, "change", base, "two shards of jobs")
    runner.github.comment(1, "Looks fine to me.")  # so that the markers sit on two pages

    plan = runner.run("plan.yml", pull_request(sandbox, base, head, 1))
    assert plan.failed() == [], plan.failed()
    assert set(plan.jobs) == {"shards", "plan[agri]", "plan[forest]", "comment"}
    bodies = {c.split("\n", 1)[0]: c for c in runner.github.comments(1)[1:]}
    assert set(bodies) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    assert all("to create" in body and head[:12] in body for body in bodies.values())
    assert not any(name in marked(sandbox.env) for name in names)  # a plan changes nothing

    again = runner.run("plan.yml", pull_request(sandbox, base, head, 1))  # a push: the comments are replaced
    assert again.failed() == [] and len(runner.github.comments(1)) == 3, runner.github.comments(1)

    # artifacts of the same name, newer than the plans, that apply must never take
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "reconciler.plan").write_text("planted\n")
    name = f"reconciler-plan-{head}-agri"
    for made_by in ({"workflow": "other.yml"}, {"event": "pull_request"}, {"event": "push"},
                    {"conclusion": "failure"}, {"branch": "change"}, {"expired": True}):
        runner.github.plant(name, decoy, **made_by)

    merge(runner, repo, head, 1)
    apply = runner.run("apply.yml", event(sandbox, "push", head))
    assert apply.failed() == [], apply.failed()
    assert set(apply.jobs) == {"shards", "apply[agri]", "apply[forest]"}
    assert sorted(runner.github.downloads()) == [(again.id, name), (again.id, f"reconciler-plan-{head}-forest")]
    assert sorted(n for n in marked(sandbox.env) if n in names) == sorted(names)

    # reviewed, then edited before it is applied: refused, the fresh plan in the summary
    target = repo / "manifests" / "agri" / f"wf-agri-{key}-created.yaml"
    target.write_text(target.read_text().replace("state: created", "state: analysed"))
    second = branch(repo, "analyse", head, "analyse one")
    planned = runner.run("plan.yml", pull_request(sandbox, head, second, 2))
    assert planned.failed() == []
    saved = dict(runner.github.artifacts_of(planned.id))[f"reconciler-plan-{second}-agri"] / "reconciler.plan"
    saved.write_text(saved.read_text().replace('"analyse"', '"start"', 1))
    merge(runner, repo, second, 2)
    refused = runner.run("apply.yml", event(sandbox, "push", second))
    assert {job for job, _, _ in refused.failed()} == {"apply[agri]"}, refused.failed()
    assert "was not applied in full" in refused.summary and "to analyse" in refused.summary

    scheduled = runner.run("reconcile.yml", event(sandbox, "schedule", second))
    assert set(scheduled.jobs) == {"shards", "reconcile[agri]", "reconcile[forest]"}
    assert "## Reconcile" in scheduled.summary


def test_a_fork_is_planned_as_data_and_apply_refuses_what_plan_yml_did_not_make_for_the_head(sandbox, tmp_path):
    repo, runner, key, base = setup(sandbox, tmp_path)
    marker = tmp_path / "ran"
    for path, text in TRAPS.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text.format(marker=str(marker)))
        (repo / path).chmod(0o755)
    write_manifests(repo / "manifests" / "agri", f"wf-fork-agri-{key}")
    write_manifests(repo / "manifests" / "forest", f"wf-fork-forest-{key}")
    head = branch(repo, "fork", base, "a fork's change, with traps")

    plan = runner.run("plan.yml", pull_request(sandbox, base, head, 3, fork=True))
    assert plan.failed() == [], plan.failed()
    bodies = {c.split("\n", 1)[0]: c for c in runner.github.comments(3)}
    assert set(bodies) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    assert all("to create" in body for body in bodies.values())
    assert not marker.exists(), marker.read_text()

    # the traps are armed: an interpreter started in the checkout the usual way runs them
    checkout = plan.workspaces["plan[agri]"] / "pr"
    subprocess.run([sys.executable, "-I", "-c", "import json"], cwd=checkout, check=True, env={"PATH": os.environ["PATH"]})
    assert not marker.exists()
    subprocess.run([sys.executable, "-c", "import json"], cwd=checkout, check=True, env={"PATH": os.environ["PATH"]})
    assert marker.read_text().startswith("python "), "the trap did not fire: this test proves nothing"
    marker.unlink()

    # a merge whose head plan.yml never planned: only decoys carry its name, and none is taken
    (repo / "NOTES.md").write_text("merged without a plan\n")
    unplanned = branch(repo, "unplanned", head, "never planned")
    decoy = plan.workspaces["plan[agri]"] / "out"  # a real, signed plan: but of another commit
    for made_by in ({"workflow": "other.yml"}, {"event": "pull_request"}, {"conclusion": "failure"}, {"branch": "fork"}):
        runner.github.plant(f"reconciler-plan-{unplanned}-agri", decoy, **made_by)
    merge(runner, repo, unplanned, 4)
    refused = runner.run("apply.yml", event(sandbox, "push", unplanned))
    assert {job for job, _, _ in refused.failed()} == {"apply[agri]", "apply[forest]"}, refused.failed()
    assert "no saved plan" in refused.output("apply[agri]") and runner.github.downloads() == []

    # the right name from the right workflow, but a plan made for another commit: refused after download
    planted = runner.github.plant(f"reconciler-plan-{unplanned}-agri", decoy)
    refused = runner.run("apply.yml", event(sandbox, "push", unplanned))
    assert runner.github.downloads() == [(planted, f"reconciler-plan-{unplanned}-agri")]
    assert "made for another commit" in refused.summary and "to create" in refused.summary
    assert "apply[agri]" in {job for job, _, _ in refused.failed()}
    assert not any(name.startswith(f"wf-fork-agri-{key}") for name in marked(sandbox.env))
    assert not marker.exists(), marker.read_text()
