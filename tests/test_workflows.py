"""The GitHub workflows: valid against the GitHub workflow schema (check-jsonschema's vendored
copy, offline), and wired as the README says: plan on pull requests with a sticky comment and an
artifact, apply on main in one concurrency group, reconcile on a schedule; secrets only in env."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(path):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_reach_environment_variables(path):
    for line in path.read_text().splitlines():
        if "secrets." in line:
            assert re.fullmatch(r"\s+[A-Z_]+: \$\{\{ secrets\.[A-Z_]+ \}\}", line), line


def load(name: str) -> dict:
    return YAML(typ="safe").load((ROOT / ".github" / "workflows" / name).read_text())


def test_the_templates_are_wired_as_documented():
    plan, apply, reconcile = load("plan.yml"), load("apply.yml"), load("reconcile.yml")
    assert "pull_request" in plan["on"] and plan["permissions"]["pull-requests"] == "write"
    uses = [step.get("uses", "") for step in plan["jobs"]["plan"]["steps"]]
    assert any(u.startswith("marocchino/sticky-pull-request-comment@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert apply["on"]["push"]["branches"] == ["main"]
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    assert "--lock-timeout" in apply["jobs"]["apply"]["steps"][-1]["run"]
    assert reconcile["on"]["schedule"] and "workflow_dispatch" in reconcile["on"]
    assert "$GITHUB_STEP_SUMMARY" in reconcile["jobs"]["reconcile"]["steps"][-1]["run"]
    assert reconcile["concurrency"]["group"] == apply["concurrency"]["group"]  # never alongside an apply


def test_the_templates_install_this_project_pinned_and_refuse_a_bare_name(tmp_path):
    """"reconciler" on the public index is an unrelated project: a job holding the credentials
    installs only this project's distribution, pinned to a version or a commit."""
    import os
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "sh-batch-reconciler" and project["scripts"] == {"reconciler": "reconciler.cli:main"}
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pip").write_text('#!/bin/sh\necho "$@" > "$PIP_LOG"\n')
    (fake / "pip").chmod(0o755)
    for name in ("plan.yml", "apply.yml", "reconcile.yml"):
        jobs = load(name)["jobs"]
        [step] = [s for job in jobs.values() for s in job["steps"] if s.get("name", "").startswith("Install reconciler")]
        assert step["env"]["PACKAGE"] == f"${{{{ vars.RECONCILER_PACKAGE || 'sh-batch-reconciler=={project['version']}' }}}}"
        for package, ok in (("reconciler", False), ("sh-batch-reconciler", False), ("sh-batch-reconciler>=0.1", False),
                            ("sh-batch-reconciler==0.1.0", True),
                            ("sh-batch-reconciler @ git+https://github.com/owner/repo@0123abc", True),
                            ("sh-batch-reconciler @ git+https://github.com/owner/repo", False)):
            log = tmp_path / "pip.log"
            log.unlink(missing_ok=True)
            env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PACKAGE": package, "PIP_LOG": str(log)}
            result = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True)
            assert (result.returncode == 0) is ok, (name, package, result.stdout)
            assert (log.read_text().strip() == f"install {package}") if ok else not log.exists()


def test_apply_and_reconcile_restore_no_cache():
    for name, job in (("apply.yml", "apply"), ("reconcile.yml", "reconcile")):
        uses = [step.get("uses", "") for step in load(name)["jobs"][job]["steps"]]
        assert not any(u.startswith("actions/cache") for u in uses), name
