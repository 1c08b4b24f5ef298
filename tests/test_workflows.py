"""The GitHub workflows: valid against the GitHub workflow schema (check-jsonschema's vendored copy,
offline), and hardened as DESIGN §8 says: every action pinned to a commit, secrets only in the
steps that run the reconciler, this project's own distribution installed pinned; and wired as the
README says: plan each shard on pull requests and comment it, apply the reviewed plans on merge,
reconcile on a schedule, in concurrency groups that never cancel one another. (That their `run:`
steps work, in order, against the sandbox: tests/test_workflow_runs.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TEMPLATES = ("plan.yml", "apply.yml", "reconcile.yml")
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d[\w.]*")


def load(name: str) -> dict:
    return YAML(typ="safe").load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(path):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path):
    uses = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if "uses:" in line]
    assert uses and all(PINNED.fullmatch(u) for u in uses), [u for u in uses if not PINNED.fullmatch(u)]


@pytest.mark.parametrize("name", TEMPLATES)
def test_secrets_reach_only_the_steps_that_run_the_reconciler(name):
    workflow = load(name)
    assert "secrets." not in repr(workflow.get("env", {}))
    for job in workflow["jobs"].values():
        assert "secrets." not in repr(job.get("env", {}))  # not the checkout, cache, artifact or OIDC steps
        for step in job["steps"]:
            if "secrets." in repr(step):
                assert "uses" not in step and "reconciler " in step["run"], step.get("name")


def test_the_templates_are_wired_as_documented():
    plan, apply, reconcile = (load(name) for name in TEMPLATES)
    for workflow in (plan, apply, reconcile):
        assert workflow["permissions"] == {"contents": "read"}  # more only where a job needs it
        assert "fromJSON(needs.shards.outputs.matrix)" in repr(workflow)  # a matrix over the shards
    assert "pull_request" in plan["on"] and "fork" in plan["jobs"]
    assert plan["jobs"]["comment"]["permissions"]["pull-requests"] == "write"
    assert "reconciler show out/reconciler.plan --format markdown" in repr(plan)
    assert apply["on"]["push"]["branches"] == ["main"] and apply["on"]["workflow_dispatch"]["inputs"]["fresh"]
    assert apply["jobs"]["apply-fresh"]["environment"] == "reconciler-apply"  # fresh plans wait for a reviewer
    assert "reconciler apply reviewed/reconciler.plan" in repr(apply) and "$GITHUB_STEP_SUMMARY" in repr(apply)
    assert reconcile["on"]["schedule"] and "workflow_dispatch" in reconcile["on"]
    groups = {name: job["concurrency"]["group"] for workflow in (apply, reconcile)
              for name, job in workflow["jobs"].items() if "concurrency" in job}
    assert groups == {"apply": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "apply-fresh": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "reconcile": "reconciler-reconcile-${{ matrix.shard.name || 'default' }}"}
    assert all(not job["concurrency"]["cancel-in-progress"] for w in (apply, reconcile)
               for job in w["jobs"].values() if "concurrency" in job)


def test_the_templates_install_this_project_pinned_and_refuse_a_bare_name(tmp_path):
    """"reconciler" on the public index is an unrelated project: a job holding the credentials
    installs only this project's distribution, pinned to a version or a commit."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "sh-batch-reconciler" and project["scripts"] == {"reconciler": "reconciler.cli:console"}
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pip").write_text('#!/bin/sh\necho "$@" > "$PIP_LOG"\n')
    (fake / "pip").chmod(0o755)
    for name in TEMPLATES:
        workflow = load(name)
        assert workflow["env"]["PACKAGE"] == f"${{{{ vars.RECONCILER_PACKAGE || 'sh-batch-reconciler=={project['version']}' }}}}"
        installs = [s for s in steps(workflow) if s.get("name", "").startswith("Install reconciler")]
        assert installs and len({s["run"] for s in installs}) == 1
        for package, ok in (("reconciler", False), ("sh-batch-reconciler", False), ("sh-batch-reconciler>=0.1", False),
                            ("sh-batch-reconciler==0.1.0", True),
                            ("sh-batch-reconciler @ git+https://github.com/owner/repo@0123abc", True),
                            ("sh-batch-reconciler @ git+https://github.com/owner/repo", False)):
            log = tmp_path / "pip.log"
            log.unlink(missing_ok=True)
            env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PACKAGE": package, "PIP_LOG": str(log)}
            result = subprocess.run(["bash", "-e", "-c", installs[0]["run"]], env=env, capture_output=True, text=True)
            assert (result.returncode == 0) is ok, (name, package, result.stdout)
            assert (log.read_text().strip() == f"install {package}") if ok else not log.exists()


def test_apply_and_reconcile_restore_no_cache():
    for name in ("apply.yml", "reconcile.yml"):
        assert not any(s.get("uses", "").startswith("actions/cache") for s in steps(load(name))), name
