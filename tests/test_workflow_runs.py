"""The workflows as a team runs them (tests/workflow_runner.py), against the sandbox: a throw-away
repository of manifests in two shards holding only the three caller files of examples/github/,
pinned (OWNER/REPO@COMMIT) to a throw-away commit of this repository's working tree, whose
reusable workflows they call; the secrets live only in the environments.

- A pull request, from this repository or from a fork, is planned per shard with one comment
  each, the comment being exactly `reconciler show --format markdown` of the saved plan; nothing
  in its files is ever executed or imported. A plan with something blocked by policy fails the
  check, naming the blocked action in the job summary, and is still saved and posted.
- The merge applies exactly the plans planned for its head commit by a successful
  pull_request_target run of the caller's planning file, never an artifact of the same name made
  by another workflow, event, branch or a failed run; a plan made stale, edited, or made for
  another commit is refused with the fresh plan in the job's summary.
- The schedule reconciles each shard and keeps one drift issue per shard: opened while changes
  wait, updated, closed with a comment once converged; no one else's issue is touched.
- By hand, a fresh apply plans each shard (the plan in the summary, saved), waits for a reviewer
  who can read it, then applies exactly that saved file; a rejection applies nothing.
- The reconciler is always installed from this repository's checkout at the pinned commit (never
  from the manifests, never from a package index)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_engine_chaos import marked, write_manifests
from tests.workflow_runner import Run, Runner

UPSTREAM = "sinergise/sh-batch-reconciler"  # what OWNER/REPO stands for in examples/github/
PLACEHOLDER = "0" * 40  # the commit examples/github/ pin, which a team replaces
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
         "pyproject.toml": "[project]\nname = 'sh-batch-reconciler'\nversion = '666'\n",
         "Makefile": "all:\n\techo make >> {marker!r}\n", "jq": TRAP_SCRIPT, "gh": TRAP_SCRIPT, "git": TRAP_SCRIPT,
         "python": TRAP_SCRIPT}


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> tuple:
    """This repository as GitHub serves it at a commit: its working tree (what is under test,
    committed or not) committed into a throw-away repository. (folder, commit)."""
    repo = tmp_path_factory.mktemp("upstream")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                            check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the working tree under test")
    return repo, git(repo, "rev-parse", "HEAD")


def event(sandbox, name: str, sha: str, pull_request: dict | None = None, **inputs) -> dict:
    """What GitHub fills the workflows' expressions with for event `name` at commit `sha` of main:
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
            "vars": {"AWS_DEFAULT_REGION": env["AWS_DEFAULT_REGION"], "SH_BASE_URL": env["SH_BASE_URL"],
                     "SH_TOKEN_URL": env["SH_TOKEN_URL"]},
            "secrets": {},
            "environments": {"reconciler-plan": {"branches": ["main"], "secrets": secrets},
                             "reconciler-apply": {"branches": ["main"], "secrets": secrets},
                             "reconciler-approval": {"branches": ["main"], "reviewers": True}},
            "inputs": inputs}


def pull_request(sandbox, base: str, head: str, number: int, fork: bool = False) -> dict:
    """A pull_request_target event: main's workflow at `base`, the pull request's head at `head`."""
    owner = "outsider" if fork else "team"
    return event(sandbox, "pull_request_target", base, pull_request={
        "number": number, "base": {"ref": "main", "sha": base},
        "head": {"sha": head, "ref": "change", "repo": {"full_name": f"{owner}/manifests"}}})


def setup(sandbox, tmp_path, upstream) -> tuple:
    """A repository whose main holds reconciler.toml and the three callers pinned to `upstream`'s
    commit, a runner for it, and the lockfile key."""
    source, commit = upstream
    key = tmp_path.name[-10:].lower().replace("_", "-").strip("-")
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "reconciler.toml").write_text(CONFIG.format(key=key))
    (repo / ".github" / "workflows").mkdir(parents=True)
    for caller in sorted((ROOT / "examples" / "github").glob("*.yml")):
        text = caller.read_text()
        assert text.count("OWNER/REPO/") == 1 and text.count(PLACEHOLDER) == 1, caller.name
        (repo / ".github" / "workflows" / caller.name).write_text(
            text.replace("OWNER/REPO/", f"{UPSTREAM}/").replace(PLACEHOLDER, commit))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two shards and the callers")
    runner = Runner(repo / ".github" / "workflows", repo, tmp_path / "github",
                    {"AWS_ENDPOINT_URL_S3": sandbox.env["AWS_ENDPOINT_URL_S3"], "OAUTHLIB_INSECURE_TRANSPORT": "1",
                     "HOME": str(tmp_path / "home")},
                    repositories={UPSTREAM: source})
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


def assert_installed_from_the_pinned_commit(runner, upstream) -> None:
    """Every install was of this repository's checkout at the pinned commit: never the manifests,
    never a name looked up on a package index."""
    source, commit = upstream
    installs = runner.installs()
    assert installs
    for install in installs:
        assert install["args"][:4] == ["-I", "-m", "pip", "install"], install
        assert [t.get("requirement") for t in install["targets"]] == [None], install  # one path, no index name
        target = install["targets"][0]
        assert target["commit"] == commit and target["origin"] == str(source), install
        assert target["path"] == target["toplevel"] and target["path"].endswith("/reconciler-source"), install


def plan_comments(runner, number: int) -> dict[str, str]:
    """The plan comments of a pull request, by their first line."""
    return {c.split("\n", 1)[0]: c for c in runner.github.comments(number) if c.startswith("<!-- reconciler-plan:")}


def test_a_pull_request_is_planned_per_shard_and_its_reviewed_plans_are_applied_on_merge(sandbox, tmp_path, upstream):
    repo, runner, key, base = setup(sandbox, tmp_path, upstream)
    names = write_manifests(repo / "manifests" / "agri", f"wf-agri-{key}") + \
        write_manifests(repo / "manifests" / "forest", f"wf-forest-{key}")
    head = branch(repo, "change", base, "two shards of jobs")
    runner.github.comment(1, "Looks fine to me.")  # so that the markers sit on two pages
    runner.github.comment(1, "<!-- reconciler-plan:agri -->\nsomeone else's comment with the marker")

    plan = runner.run("reconciler-plan.yml", pull_request(sandbox, base, head, 1))
    assert plan.failed() == [], plan.failed()
    assert set(plan.jobs) == {"plan/shards", "plan/plan[agri]", "plan/plan[forest]", "plan/comment"}
    saved = dict(runner.github.artifacts_of(plan.id))
    bodies = {c.split("\n", 1)[0]: c for c in runner.github.comments(1)[2:]}
    assert set(bodies) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    for shard in ("agri", "forest"):  # the comment is show's output, as it is: nothing added or cut
        assert bodies[f"<!-- reconciler-plan:{shard} -->"] == (saved[f"reconciler-plan-{head}-{shard}"] / "plan.md").read_text()
        assert f"<!-- reconciler-plan:{shard} -->" in plan.summaries[f"plan/plan[{shard}]"]
    assert all("to create" in body and head[:7] in body for body in bodies.values())
    assert all(f"actions/runs/{plan.id}" in body for body in bodies.values())  # the footer links this run
    assert not any(name in marked(sandbox.env) for name in names)  # a plan changes nothing

    again = runner.run("reconciler-plan.yml", pull_request(sandbox, base, head, 1))  # a push: the comments are replaced
    assert again.failed() == [] and len(runner.github.comments(1)) == 4, runner.github.comments(1)
    assert runner.github.comments(1)[1] == "<!-- reconciler-plan:agri -->\nsomeone else's comment with the marker"

    # artifacts of the same name, newer than the plans, that apply must never take
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "reconciler.plan").write_text("planted\n")
    name = f"reconciler-plan-{head}-agri"
    for made_by in ({"workflow": "plan.yml"}, {"workflow": "other.yml"}, {"event": "pull_request"}, {"event": "push"},
                    {"conclusion": "failure"}, {"branch": "change"}, {"expired": True}):
        runner.github.plant(name, decoy, **made_by)

    merge(runner, repo, head, 1)
    apply = runner.run("reconciler-apply.yml", event(sandbox, "push", head))
    assert apply.failed() == [], apply.failed()
    assert set(apply.jobs) == {"apply/shards", "apply/apply[agri]", "apply/apply[forest]"}
    assert sorted(runner.github.downloads()) == [(again.id, name), (again.id, f"reconciler-plan-{head}-forest")]
    assert sorted(n for n in marked(sandbox.env) if n in names) == sorted(names)

    # reviewed, then edited before it is applied: refused, the fresh plan in the summary
    target = repo / "manifests" / "agri" / f"wf-agri-{key}-created.yaml"
    target.write_text(target.read_text().replace("state: created", "state: analysed"))
    second = branch(repo, "analyse", head, "analyse one")
    planned = runner.run("reconciler-plan.yml", pull_request(sandbox, head, second, 2))
    assert planned.failed() == []
    saved_plan = dict(runner.github.artifacts_of(planned.id))[f"reconciler-plan-{second}-agri"] / "reconciler.plan"
    saved_plan.write_text(saved_plan.read_text().replace('"analyse"', '"start"', 1))
    merge(runner, repo, second, 2)
    refused = runner.run("reconciler-apply.yml", event(sandbox, "push", second))
    assert {job for job, _, _ in refused.failed()} == {"apply/apply[agri]"}, refused.failed()
    assert "was not applied in full" in refused.summaries["apply/apply[agri]"] and "to analyse" in refused.summary
    assert_installed_from_the_pinned_commit(runner, upstream)


def test_a_fork_is_planned_as_data_and_apply_refuses_what_the_planning_caller_did_not_make(sandbox, tmp_path, upstream):
    repo, runner, key, base = setup(sandbox, tmp_path, upstream)
    marker = tmp_path / "ran"
    for path, text in TRAPS.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text.format(marker=str(marker)) if "{marker" in text else text)
        (repo / path).chmod(0o755)
    write_manifests(repo / "manifests" / "agri", f"wf-fork-agri-{key}")
    write_manifests(repo / "manifests" / "forest", f"wf-fork-forest-{key}")
    head = branch(repo, "fork", base, "a fork's change, with traps")

    plan = runner.run("reconciler-plan.yml", pull_request(sandbox, base, head, 3, fork=True))
    assert plan.failed() == [], plan.failed()
    assert set(plan_comments(runner, 3)) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    assert all("to create" in body for body in plan_comments(runner, 3).values())
    assert not marker.exists(), marker.read_text()
    assert_installed_from_the_pinned_commit(runner, upstream)  # never the fork's pyproject.toml

    # the traps are armed: an interpreter started in the checkout the usual way runs them
    checkout = plan.workspaces["plan/plan[agri]"] / "pr"
    subprocess.run([sys.executable, "-I", "-c", "import json"], cwd=checkout, check=True, env={"PATH": os.environ["PATH"]})
    assert not marker.exists()
    subprocess.run([sys.executable, "-c", "import json"], cwd=checkout, check=True, env={"PATH": os.environ["PATH"]})
    assert marker.read_text().startswith("python "), "the trap did not fire: this test proves nothing"
    marker.unlink()

    # a merge whose head the planning caller never planned: only decoys carry its name, none is taken
    (repo / "NOTES.md").write_text("merged without a plan\n")
    unplanned = branch(repo, "unplanned", head, "never planned")
    decoy = plan.workspaces["plan/plan[agri]"] / "out"  # a real, signed plan: but of another commit
    for made_by in ({"workflow": "plan.yml"}, {"workflow": "other.yml"}, {"event": "pull_request"},
                    {"conclusion": "failure"}, {"branch": "fork"}):
        runner.github.plant(f"reconciler-plan-{unplanned}-agri", decoy, **made_by)
    merge(runner, repo, unplanned, 4)
    refused = runner.run("reconciler-apply.yml", event(sandbox, "push", unplanned))
    assert {job for job, _, _ in refused.failed()} == {"apply/apply[agri]", "apply/apply[forest]"}, refused.failed()
    assert "no saved plan" in refused.output("apply/apply[agri]") and runner.github.downloads() == []

    # the right name from the right workflow, but a plan made for another commit: refused after download
    planted = runner.github.plant(f"reconciler-plan-{unplanned}-agri", decoy)
    refused = runner.run("reconciler-apply.yml", event(sandbox, "push", unplanned))
    assert runner.github.downloads() == [(planted, f"reconciler-plan-{unplanned}-agri")]
    assert "made for another commit" in refused.summary and "to create" in refused.summary
    assert "apply/apply[agri]" in {job for job, _, _ in refused.failed()}
    assert not any(name.startswith(f"wf-fork-agri-{key}") for name in marked(sandbox.env))
    assert not marker.exists(), marker.read_text()


def test_a_plan_with_something_blocked_fails_the_check_naming_it_and_is_still_posted(sandbox, tmp_path, upstream):
    repo, runner, key, base = setup(sandbox, tmp_path, upstream)
    write_manifests(repo / "manifests" / "agri", f"wf-blocked-agri-{key}")
    write_manifests(repo / "manifests" / "forest", f"wf-blocked-forest-{key}")
    budget = repo / "manifests" / "agri" / f"wf-blocked-agri-{key}-started-budget.yaml"
    budget.write_text(budget.read_text().replace("maxCostPU: 5000", "maxCostPU: 0.001"))
    head = branch(repo, "over-budget", base, "one job over its budget")

    plan = runner.run("reconciler-plan.yml", pull_request(sandbox, base, head, 5))
    assert plan.conclusion == "failure"
    assert {job for job, _, _ in plan.failed()} == {"plan/plan[agri]"}, plan.failed()
    summary = plan.summaries["plan/plan[agri]"]
    blocked = summary[summary.index("Blocked by policy"):summary.index("<!-- reconciler-plan:agri -->")]
    assert f"**wf-blocked-agri-{key}-started-budget**" in blocked and "exceeds maxCostPU" in blocked, blocked
    assert f"policy blocks wf-blocked-agri-{key}-started-budget" in plan.output("plan/plan[agri]")
    comments = plan_comments(runner, 5)  # saved and posted all the same, for both shards
    assert set(comments) == {"<!-- reconciler-plan:agri -->", "<!-- reconciler-plan:forest -->"}
    assert f"wf-blocked-agri-{key}-started-budget" in comments["<!-- reconciler-plan:agri -->"]
    assert {name for name, _ in runner.github.artifacts_of(plan.id)} == {
        f"reconciler-plan-{head}-agri", f"reconciler-plan-{head}-forest"}

    # merged all the same: the plans of a failed run are never applied
    merge(runner, repo, head, 5)
    refused = runner.run("reconciler-apply.yml", event(sandbox, "push", head))
    assert {job for job, _, _ in refused.failed()} == {"apply/apply[agri]", "apply/apply[forest]"}
    assert runner.github.downloads() == []
    assert not any(name.startswith(f"wf-blocked-{key}") for name in marked(sandbox.env))


def test_drift_keeps_an_issue_per_shard_and_a_fresh_apply_applies_the_plan_a_reviewer_saw(sandbox, tmp_path, upstream):
    repo, runner, key, base = setup(sandbox, tmp_path, upstream)
    names = write_manifests(repo / "manifests" / "agri", f"wf-drift-agri-{key}") + \
        write_manifests(repo / "manifests" / "forest", f"wf-drift-forest-{key}")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pushed to main without a pull request")
    main = git(repo, "rev-parse", "HEAD")
    others = [runner.github.open_issue("not ours", "<!-- reconciler-drift:agri -->\nwritten by someone else"),
              runner.github.open_issue("a pull request", "<!-- reconciler-drift:agri -->", user="github-actions[bot]",
                                       pull_request=True)]

    # the schedule leaves the creates for review: an issue per shard, with the report
    scheduled = runner.run("reconciler-reconcile.yml", event(sandbox, "schedule", main))
    assert {job for job, _, _ in scheduled.failed()} == {"reconcile/reconcile[agri]", "reconcile/reconcile[forest]"}
    assert scheduled.jobs["reconcile/drift"] and not any(job == "reconcile/drift" for job, _, _ in scheduled.failed())
    ours = [i for i in runner.github.issues() if i["number"] not in others]
    assert sorted(i["body"].split("\n", 1)[0] for i in ours) == ["<!-- reconciler-drift:agri -->",
                                                                  "<!-- reconciler-drift:forest -->"]
    for issue in ours:
        shard = issue["body"].split(":", 1)[1].split(" ", 1)[0]
        assert issue["state"] == "open" and f"shard `{shard}`" in issue["body"]
        assert "## Reconcile report" in issue["body"] and f"wf-drift-{shard}-{key}-created" in issue["body"]
        assert f"actions/runs/{scheduled.id}" in issue["body"] and len(issue["body"]) <= 65536

    again = runner.run("reconciler-reconcile.yml", event(sandbox, "schedule", main))  # updated, never duplicated
    ours = [i for i in runner.github.issues() if i["number"] not in others]
    assert len(ours) == 2 and all(f"actions/runs/{again.id}" in i["body"] for i in ours)

    # by hand, fresh: planned, shown, then a reviewer rejects: nothing is applied
    rejected = runner.run("reconciler-apply.yml", event(sandbox, "workflow_dispatch", main, fresh=True),
                          approve=lambda job, run: False)
    assert rejected.approvals == [("apply/approve", "reconciler-approval")]
    assert "apply/apply-fresh[agri]" not in rejected.jobs and not any(n in marked(sandbox.env) for n in names)

    # approved: the reviewer sees each shard's plan before anything is applied
    def review(job: str, run: Run) -> bool:
        assert set(run.jobs) == {"apply/shards", "apply/plan-fresh[agri]", "apply/plan-fresh[forest]", "apply/approve"}
        for shard in ("agri", "forest"):
            assert f"<!-- reconciler-plan:{shard} -->" in run.summaries[f"apply/plan-fresh[{shard}]"]
            assert "to create" in run.summaries[f"apply/plan-fresh[{shard}]"]
        assert {n for n, _ in runner.github.artifacts_of(run.id)} == {"reconciler-fresh-agri", "reconciler-fresh-forest"}
        assert not any(n in marked(sandbox.env) for n in names)
        return True

    fresh = runner.run("reconciler-apply.yml", event(sandbox, "workflow_dispatch", main, fresh=True), approve=review)
    assert fresh.failed() == [], fresh.failed()
    assert fresh.approvals == [("apply/approve", "reconciler-approval")]
    assert set(fresh.jobs) == {"apply/shards", "apply/plan-fresh[agri]", "apply/plan-fresh[forest]", "apply/approve",
                               "apply/apply-fresh[agri]", "apply/apply-fresh[forest]"}
    shown = dict(runner.github.artifacts_of(fresh.id))
    for shard in ("agri", "forest"):  # exactly the file that was shown, and no plan made by the apply job
        applied = fresh.workspaces[f"apply/apply-fresh[{shard}]"] / "approved" / "reconciler.plan"
        assert applied.read_bytes() == (shown[f"reconciler-fresh-{shard}"] / "reconciler.plan").read_bytes()
        assert "reconciler plan" not in fresh.output(f"apply/apply-fresh[{shard}]")
    assert sorted(n for n in marked(sandbox.env) if n in names) == sorted(names)

    # converged again: each issue closed with a comment; no one else's issue touched
    converged = runner.run("reconciler-reconcile.yml", event(sandbox, "schedule", main))
    assert converged.failed() == [], converged.failed()
    for issue in runner.github.issues():
        if issue["number"] in others:
            assert issue["state"] == "open" and issue["comments"] == []
        else:
            assert issue["state"] == "closed" and issue["state_reason"] == "completed"
            assert len(issue["comments"]) == 1 and "Converged again" in issue["comments"][0]
            assert f"actions/runs/{converged.id}" in issue["comments"][0]
    assert_installed_from_the_pinned_commit(runner, upstream)
