"""The GitHub workflows: valid against the GitHub workflow schema (check-jsonschema's vendored copy,
offline), clean under zizmor (offline), and hardened as DESIGN §8 says: every action pinned to a
commit, secrets only in the steps that run the reconciler and only through GitHub environments, no
secret in a workflow a `pull_request` starts, this project's own distribution installed pinned;
nothing from a checkout executed (no `python` but `python -I`, no make, no `pip install .`), values
reaching jq only as `--arg`; plan.yml planning the pull request's head as data with base-branch code
(`pull_request_target`), apply.yml taking only plan.yml's artifacts of a successful
pull_request_target run; and wired as the README says: plan each shard on pull requests and comment
it, apply the reviewed plans on merge, reconcile on a schedule, in concurrency groups that never
cancel one another. (That their `run:` steps work, in order, against the sandbox:
tests/test_workflow_runs.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TEMPLATES = ("plan.yml", "apply.yml", "reconcile.yml")
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d[\w.]*")
ENVIRONMENTS = {"plan.yml": "reconciler-plan", "apply.yml": "reconciler-apply", "reconcile.yml": "reconciler-apply"}
# A comment, or a shell word as written (quotes kept), or a run of operators: enough to read the
# templates' scripts.
WORD = re.compile(r"""(?P<comment>(?<![^\s;&|()])#[^\n]*)|(?P<word>(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s|;&()<>'"])+|[|;&()<>]+)""")


def load(name: str) -> dict:
    return YAML(typ="safe").load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def words(script: str) -> list[str]:
    """A `run:` script's shell words, quotes kept, comments and line continuations dropped; the
    words of a command substitution inside double quotes follow the word that holds it."""
    found = []
    for match in WORD.finditer(script.replace("\\\n", " ")):
        if word := match.group("word"):
            found.append(word)
            if word.startswith('"'):
                for inner in substitutions(word):
                    found.extend(words(inner))
    return found


def substitutions(text: str) -> list[str]:
    """The `$( … )` in a text, parentheses balanced (quotes inside are not minded: enough here)."""
    found, start = [], text.find("$(")
    while start >= 0:
        depth, at = 0, start + 1
        while at < len(text):
            depth += {"(": 1, ")": -1}.get(text[at], 0)
            if depth == 0:
                break
            at += 1
        found.append(text[start + 2:at])
        start = text.find("$(", at)
    return found


def scripts(name: str) -> list[str]:
    return [step["run"] for step in steps(load(name)) if "run" in step]


def jq_programs(script: str) -> list[tuple[str, set[str]]]:
    """Each jq call of a script: its program as written (quotes kept), and the names --arg/--argjson give it."""
    found, tokens = [], words(script)
    for index, token in enumerate(tokens):
        if token != "jq":
            continue
        given, at = set(), index + 1
        while tokens[at].startswith("-"):
            if tokens[at] in ("--arg", "--argjson", "--slurpfile", "--rawfile"):
                given.add(tokens[at + 1])
                at += 3
            else:
                at += 1
        found.append((tokens[at], given))
    return found


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
    assert list(plan["jobs"]) == ["shards", "plan", "comment"]  # forks are planned like any other
    assert plan["jobs"]["comment"]["permissions"]["pull-requests"] == "write"
    assert plan["concurrency"] == {"group": "reconciler-plan-${{ github.event.pull_request.number }}",
                                   "cancel-in-progress": True}
    assert 'reconciler show "$out/reconciler.plan" --format markdown' in repr(plan)
    assert apply["on"]["push"]["branches"] == ["main"] and apply["on"]["workflow_dispatch"]["inputs"]["fresh"]
    assert apply["jobs"]["apply-fresh"]["environment"] == "reconciler-apply"
    approve = apply["jobs"]["approve"]  # a fresh plan waits for a reviewer of an environment without secrets
    assert approve["environment"] == "reconciler-approval" and "secrets." not in repr(approve)
    assert approve["if"] == apply["jobs"]["apply-fresh"]["if"] == "${{ inputs.fresh }}"
    assert "approve" in apply["jobs"]["apply-fresh"]["needs"]
    assert "reconciler apply reviewed/reconciler.plan" in repr(apply) and "$GITHUB_STEP_SUMMARY" in repr(apply)
    assert reconcile["on"]["schedule"] and "workflow_dispatch" in reconcile["on"]
    groups = {name: job["concurrency"]["group"] for workflow in (apply, reconcile)
              for name, job in workflow["jobs"].items() if "concurrency" in job}
    assert groups == {"apply": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "apply-fresh": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "reconcile": "reconciler-reconcile-${{ matrix.shard.name || 'default' }}"}
    assert all(not job["concurrency"]["cancel-in-progress"] for w in (apply, reconcile)
               for job in w["jobs"].values() if "concurrency" in job)
    for name in TEMPLATES:  # shards listed by the reconciler and jq, nothing else
        listing = [s["run"] for s in steps(load(name)) if s.get("id") == "list"]
        assert listing and all("reconciler shards --format json | jq -c '.shards'" in run for run in listing)


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


def test_no_template_restores_a_cache():
    """A pull_request_target run's cache could be written while planning one pull request and read
    while planning another (zizmor: cache-poisoning); apply and reconcile read everything afresh."""
    for name in TEMPLATES:
        assert not any(s.get("uses", "").startswith("actions/cache") for s in steps(load(name))), name
        assert not any("cache" in s.get("with", {}) for s in steps(load(name))), name  # setup-python's own


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_workflow_a_pull_request_starts_references_a_secret(path):
    workflow = YAML(typ="safe").load(path.read_text())
    if "pull_request" in workflow["on"]:
        assert "secrets." not in path.read_text()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_checkout_keeps_the_token(path):
    checkouts = [s for s in steps(YAML(typ="safe").load(path.read_text())) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)


@pytest.mark.parametrize("name", TEMPLATES)
def test_nothing_from_a_checkout_is_executed(name):
    """A job holding secrets runs the installed reconciler, jq, gh and bash builtins: no interpreter
    that would import a module of the working directory (only `python -I`), no make, no
    `pip install .`/`-e`, no script of the checkout."""
    for script in scripts(name):
        tokens = words(script)
        for index, token in enumerate(tokens):
            if re.fullmatch(r"(.*/)?python[\d.]*", token):
                assert tokens[index + 1] == "-I", script
            if token == "pip":
                assert tokens[index + 1:index + 3] == ["install", '"$PACKAGE"'], script
        assert not {"make", "source", ".", "sh", "bash", "eval", "exec"} & set(tokens), script
        assert not any(token.startswith("./") for token in tokens), script


@pytest.mark.parametrize("name", TEMPLATES)
def test_jq_takes_every_value_as_an_argument(name):
    """Values (shard names, markers, shas) reach a jq program only through --arg/--argjson: a
    program is single-quoted, so the shell splices nothing into it, and names only what it is
    given. gh's own --jq takes no --arg, so it is not used."""
    programs = [program for script in scripts(name) for program in jq_programs(script)]
    assert programs
    for program, given in programs:
        assert re.fullmatch(r"'[^']*'", program), program
        assert set(re.findall(r"\$(\w+)", program)) <= given, (program, given)
    assert not any("--jq" in words(script) for script in scripts(name))


def test_plan_yml_plans_the_pull_requests_head_as_data_with_the_base_branchs_code():
    plan = load("plan.yml")
    assert set(plan["on"]) == {"pull_request_target"}
    assert plan["on"]["pull_request_target"] == {"types": ["opened", "synchronize", "reopened"], "branches": ["main"],
                                                 "paths": ["manifests/**", "reconciler.toml"]}
    trigger = next(line for line in (ROOT / ".github/workflows/plan.yml").read_text().splitlines()
                   if line.strip().startswith("pull_request_target:"))
    assert re.search(r"# zizmor: ignore\[dangerous-triggers\] \S.*", trigger), trigger  # accepted, with a reason
    for job_name in ("shards", "plan"):
        job = plan["jobs"][job_name]
        uses = [s.get("uses", "").split("@")[0] or s.get("name", "") for s in job["steps"]]
        checkout = uses.index("actions/checkout")
        assert uses.index("Install reconciler (pinned)") < checkout  # installed before anything is checked out
        assert job["steps"][checkout]["with"] == {"ref": "${{ github.event.pull_request.head.sha }}", "path": "pr",
                                                  "persist-credentials": False}
        for step in job["steps"][checkout + 1:]:  # the reconciler reads the checkout as its working directory
            if "reconciler " in step.get("run", ""):
                assert step["working-directory"] == "pr", step["name"]
    comment = plan["jobs"]["comment"]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in comment["steps"])
    assert "secrets." not in repr(comment)
    assert not any("reconciler" in words(s["run"]) for s in comment["steps"] if "run" in s)


def test_apply_yml_takes_only_plan_yml_s_artifacts_of_a_successful_pull_request_target_run():
    """Never an artifact found by its name alone: any workflow, branch or failed run can upload one."""
    find = next(s["run"] for s in steps(load("apply.yml")) if s.get("id") == "find")
    assert "actions/workflows/plan.yml/runs?event=pull_request_target&status=success" in find
    assert "actions/runs/$candidate/artifacts?name=$name" in find and 'gh run download "$run"' in find
    assert "actions/artifacts" not in find
    programs = {program: given for program, given in jq_programs(find)}
    runs = next(program for program in programs if "workflow_runs" in program)
    for condition in ('.event == "pull_request_target"', '.conclusion == "success"', ".head_branch == $branch",
                      ".repository.full_name == $repo"):
        assert condition in runs, condition
    assert programs[runs] == {"branch", "repo"}
    assert ".expired == false" in next(program for program in programs if ".artifacts" in program)
    apply_step = next(s for s in steps(load("apply.yml")) if s.get("name") == "Apply")
    assert "reconciler show reviewed/reconciler.plan --format json | jq -r '.saved.commit // empty'" in apply_step["run"]
    assert '"$commit" != "$HEAD_SHA"' in apply_step["run"] and apply_step["env"]["HEAD_SHA"] == "${{ steps.find.outputs.head }}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_job_with_a_secret_has_its_environment_and_every_step_the_plan_key(name):
    """Secrets sit in GitHub environments limited to the default branch (README: "GitHub workflows");
    a step that runs the reconciler with them also has the key that signs and verifies saved plans."""
    for job_name, job in load(name)["jobs"].items():
        secret_steps = [s for s in job["steps"] if "secrets." in repr(s)]
        if secret_steps:
            assert job.get("environment") == ENVIRONMENTS[name], job_name
        for step in secret_steps:
            assert step["env"]["RECONCILER_PLAN_KEY"] == "${{ secrets.RECONCILER_PLAN_KEY }}", step["name"]
            assert step["env"]["SH_CLIENT_SECRET"] == "${{ secrets.SH_CLIENT_SECRET }}", step["name"]


def test_zizmor_finds_nothing():
    """zizmor (offline, its default persona, no configuration to mute an audit); the one accepted
    finding carries its reason on the line (plan.yml's trigger)."""
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run([str(zizmor), "--offline", "--no-config", "--format", "json", str(ROOT / ".github" / "workflows")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


def test_shellcheck_finds_nothing_in_any_run_step_or_script(tmp_path):
    """Every `run:` step of every workflow (bash, as GitHub runs it; expressions stand in as a
    word) and the project's shell scripts, at shellcheck's warning level."""
    scripts = [ROOT / "scripts" / "demo.sh", ROOT / ".ci" / "run"]
    for path in WORKFLOWS:
        for job_name, job in load(path.name)["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    script = tmp_path / f"{path.stem}-{job_name}-{index}.sh"
                    body = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", step["run"], flags=re.S)
                    script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
                    scripts.append(script)
    assert len(scripts) > 10
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([str(shellcheck), "--shell", "bash", "--severity", "warning", *map(str, scripts)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
