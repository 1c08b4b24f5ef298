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
