"""The GitHub workflows: this project's CI (ci.yml), its reusable workflows (plan.yml, apply.yml,
reconcile.yml: `on: workflow_call`), the composite action that installs the reconciler
(.github/actions/install), and the three short callers a team copies (examples/github/). Checked:
valid against GitHub's workflow and action schemas (check-jsonschema's vendored copies, offline),
clean under zizmor (offline) and shellcheck, and hardened as DESIGN §8 says: every action pinned to
a commit; the reconciler installed from the reusable workflow's own commit of this repository
(checked out at job.workflow_sha, installed by its own action with `python -I -m pip`) before
anything else is checked out, or from a pinned release only when asked; secrets passed by name
by the callers, resolved from GitHub environments, and reaching only the steps that run the
reconciler; nothing from a checkout executed (no `python` but `python -I`, no make, no pip of a
checkout); values reaching jq only as `--arg`; the plan of a pull request made by the base
branch's caller (`pull_request_target`) with the pull request's files as data; apply taking only
the planning caller's artifacts of a successful pull_request_target run; a plan with anything
blocked failing the check with the blocked actions named; the fresh apply applying the saved plan
a reviewer approved; drift issues written by a job holding no secret. (That the steps work, in
order, against the sandbox: tests/test_workflow_runs.py.)"""

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
from tests.workflow_runner import InvalidWorkflow, Runner

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CALLERS = sorted((ROOT / "examples" / "github").glob("*.yml"))
ACTION = ROOT / ".github" / "actions" / "install" / "action.yml"
REUSABLE = ("plan.yml", "apply.yml", "reconcile.yml")
CALLED_BY = {"reconciler-plan.yml": "plan.yml", "reconciler-apply.yml": "apply.yml",
             "reconciler-reconcile.yml": "reconcile.yml"}
# name → required: none, since a caller passes each by name from a level where it may be empty (the
# values live in the called job's environment, which GitHub resolves there); the reconciler says what is missing
SECRETS = {"SH_CLIENT_ID": False, "SH_CLIENT_SECRET": False, "RECONCILER_PLAN_KEY": False, "AWS_ACCESS_KEY_ID": False,
           "AWS_SECRET_ACCESS_KEY": False, "RECONCILER_MANIFEST_ENV": False}
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d[\w.]*")
LOCAL_INSTALL = "./reconciler-source/.github/actions/install"
PLACEHOLDER = "0" * 40
# A comment, or a shell word as written (quotes kept), or a run of operators: enough to read the
# workflows' scripts.
WORD = re.compile(r"""(?P<comment>(?<![^\s;&|()])#[^\n]*)|(?P<word>(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s|;&()<>'"])+|[|;&()<>]+)""")


def load(path: Path | str) -> dict:
    path = ROOT / ".github" / "workflows" / path if isinstance(path, str) else path
    return YAML(typ="safe").load(path.read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


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


def action_script() -> str:
    (step,) = YAML(typ="safe").load(ACTION.read_text())["runs"]["steps"]
    return step["run"]


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


def step_named(workflow: str, job: str, prefix: str) -> dict:
    return next(s for s in load(workflow)["jobs"][job]["steps"] if s.get("name", "").startswith(prefix))


@pytest.mark.parametrize("path", WORKFLOWS + CALLERS, ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(path):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_install_action_is_valid_against_the_github_action_schema():
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions",
                             str(ACTION)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS + CALLERS + [ACTION], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path):
    """Pinned to a full commit, the tag in a comment; the one local action is the reconciler's own,
    from the checkout of this workflow's commit (see the next test)."""
    uses = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines()
            if re.match(r"\s*(- )?uses:", line)]
    remote = [u for u in uses if not u.startswith(f"{LOCAL_INSTALL} ")]
    assert all(PINNED.fullmatch(u) for u in remote), [u for u in remote if not PINNED.fullmatch(u)]
    assert uses or path.name == "action.yml"


@pytest.mark.parametrize("name", REUSABLE)
def test_every_job_installs_the_reconciler_of_this_workflows_own_commit_before_any_other_checkout(name):
    """`uses:` of an action must be static, and a reusable workflow cannot name its own commit:
    so each job checks this repository out at job.workflow_sha (job.workflow_repository) into
    reconciler-source/, never at a branch's newest commit (no sha, no checkout), and runs the
    install action from there, before the manifests are checked out (a checkout at the workspace
    root empties it: the source goes, the installed package stays)."""
    for job_name, job in load(name)["jobs"].items():
        found = [s.get("uses", "").split("@")[0] or s.get("name") for s in job["steps"]]
        if not any("checkout" in u or "reconciler" in words(s.get("run", ""))
                   for u, s in zip(found, job["steps"], strict=True)):
            continue  # posts comments or issues, or waits for a reviewer: no reconciler, no checkout
        assert found[:3] == ["actions/setup-python", "actions/checkout", LOCAL_INSTALL], (job_name, found)
        setup, source, install = job["steps"][:3]
        assert setup["with"] == {"python-version": "${{ inputs.python-version }}"}
        assert source["with"] == {"repository": "${{ job.workflow_repository }}",
                                  "ref": "${{ job.workflow_sha || 'job.workflow_sha-is-not-available' }}",
                                  "path": "reconciler-source", "persist-credentials": False}, job_name
        assert install["with"] == {"version": "${{ inputs.reconciler-version }}"}
        assert not any(s.get("uses", "").startswith(LOCAL_INSTALL) for s in job["steps"][3:])


def run_install(tmp_path, action_path: Path, version: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """The install action's script with a `python` and `reconciler` that only record their arguments."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    for tool in ("python", "reconciler"):
        (fake / tool).write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "$LOG"\n')
        (fake / tool).chmod(0o755)
    log = tmp_path / f"log-{len(list(tmp_path.glob('log-*')))}"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "VERSION": version, "LOG": str(log),
           "GITHUB_ACTION_PATH": str(action_path)}
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", action_script()], env=env, capture_output=True, text=True,
                            cwd=tmp_path)
    return result, [line.split(" ") for line in log.read_text().splitlines()] if log.exists() else []


def test_the_install_action_installs_its_own_checkout_or_a_pinned_release_and_nothing_else(tmp_path):
    """"reconciler" on the public index is an unrelated project: the action installs the tree it
    came from (its folder's ../../..), isolated (`python -I`), or, given a version, exactly that
    release of this project's distribution; anything else fails before pip runs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "sh-batch-reconciler" and project["scripts"] == {"reconciler": "reconciler.cli:console"}
    result, calls = run_install(tmp_path, ACTION.parent, "")
    assert result.returncode == 0, result.stderr
    assert calls == [["python", "-I", "-m", "pip", "install", "--disable-pip-version-check", str(ROOT)],
                     ["reconciler", "--version"]]
    for version, ok in (("0.1.0", True), ("1.2.3rc1", True), ("reconciler", False), (">=0.1", False),
                        ("0.1.0 other", False), ("0.1.0; rm -rf /", False), ("0.1.*", False),
                        ("git+https://github.com/owner/repo", False)):
        result, calls = run_install(tmp_path, ACTION.parent, version)
        assert (result.returncode == 0) is ok, (version, result.stderr)
        assert calls[:1] == ([["python", "-I", "-m", "pip", "install", "--disable-pip-version-check",
                               f"sh-batch-reconciler=={version}"]] if ok else []), version
    elsewhere = tmp_path / "not-a-checkout" / ".github" / "actions" / "install"
    elsewhere.mkdir(parents=True)
    result, calls = run_install(tmp_path, elsewhere, "")
    assert result.returncode == 1 and calls == [] and "is not a checkout of the reconciler" in result.stdout


def test_no_workflow_or_action_restores_a_cache():
    """A pull_request_target run's cache could be written while planning one pull request and read
    while planning another (zizmor: cache-poisoning); apply and reconcile read everything afresh."""
    for name in REUSABLE:
        assert not any(s.get("uses", "").startswith("actions/cache") for s in steps(load(name))), name
        assert not any("cache" in s.get("with", {}) for s in steps(load(name))), name  # setup-python's own
    assert "cache" not in ACTION.read_text().replace("--no-cache", "")


@pytest.mark.parametrize("name", REUSABLE)
def test_secrets_reach_only_the_steps_that_run_the_reconciler(name):
    workflow = load(name)
    assert "secrets." not in repr(workflow.get("env", {}))
    for job in workflow["jobs"].values():
        assert "secrets." not in repr(job.get("env", {}))  # not the checkout, install, artifact or OIDC steps
        for step in job["steps"]:
            if "secrets." in repr(step):
                assert "uses" not in step and "reconciler " in step["run"], step.get("name")
    assert "secrets" not in ACTION.read_text()


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: p.name)
def test_a_caller_is_short_pinned_and_passes_each_secret_by_name(path):
    """At most 30 lines; one job calling this repository's reusable workflow at a placeholder
    commit (a team writes OWNER/REPO and the commit it pins); the secrets passed one by one by
    name, exactly those the called workflow declares (never `inherit`: GitHub resolves each name
    from the environment the called job names), `with` only its inputs; permissions none at the
    top and, on the job, every permission a called job asks for."""
    assert len(path.read_text().splitlines()) <= 30
    caller = load(path)
    assert caller["permissions"] == {} and list(caller["jobs"]) == [CALLED_BY[path.name].removesuffix(".yml")]
    (job,) = caller["jobs"].values()
    called_name = CALLED_BY[path.name]
    assert job["uses"] == f"OWNER/REPO/.github/workflows/{called_name}@{PLACEHOLDER}"
    called = load(called_name)
    declared = called["on"]["workflow_call"]
    assert job["secrets"] == {name: f"${{{{ secrets.{name} }}}}" for name in declared["secrets"]}
    assert set(job.get("with", {})) <= set(declared["inputs"])
    needed = {scope: level for j in called["jobs"].values() for scope, level in j["permissions"].items()}
    levels = {"read": 1, "write": 2}
    for scope, level in needed.items():
        assert levels[job["permissions"].get(scope, "none")] >= levels[level], (scope, level)
    assert set(job["permissions"]) == set(needed)


def test_the_reusable_workflows_take_inputs_and_secrets_with_todays_defaults():
    for name in REUSABLE:
        workflow = load(name)
        assert set(workflow["on"]) == {"workflow_call"}, name  # never started on their own, here or anywhere
        declared = workflow["on"]["workflow_call"]
        assert {k: v["required"] for k, v in declared["secrets"].items()} == SECRETS, name
        inputs = {k: v.get("default") for k, v in declared["inputs"].items()}
        assert {"shards": "", "python-version": "3.11", "reconciler-version": ""}.items() <= inputs.items(), name
        assert workflow["permissions"] == {"contents": "read"}  # more only where a job needs it
        assert "fromJSON(needs.shards.outputs.matrix)" in repr(workflow)  # a matrix over the shards
    assert load("plan.yml")["on"]["workflow_call"]["inputs"]["environment"]["default"] == "reconciler-plan"
    assert {k: v["default"] for k, v in load("apply.yml")["on"]["workflow_call"]["inputs"].items()
            if "environment" in k or k in ("plan-workflow", "fresh")} == {
        "environment": "reconciler-apply", "plan-environment": "reconciler-plan",
        "approval-environment": "reconciler-approval", "plan-workflow": "reconciler-plan.yml", "fresh": False}
    assert load("reconcile.yml")["on"]["workflow_call"]["inputs"]["environment"]["default"] == "reconciler-apply"
    # the default planning workflow file is the planning caller's name
    assert (ROOT / "examples" / "github" / load("apply.yml")["on"]["workflow_call"]["inputs"]["plan-workflow"]["default"]).is_file()


def test_the_workflows_are_wired_as_documented():
    plan, apply, reconcile = (load(name) for name in REUSABLE)
    callers = {path.name: load(path) for path in CALLERS}
    assert list(plan["jobs"]) == ["shards", "plan", "comment"]  # forks are planned like any other
    assert plan["jobs"]["comment"]["permissions"] == {"pull-requests": "write"}
    assert callers["reconciler-plan.yml"]["concurrency"] == {
        "group": "reconciler-plan-${{ github.event.pull_request.number }}", "cancel-in-progress": True}
    apply_caller = callers["reconciler-apply.yml"]
    assert apply_caller["on"]["push"]["branches"] == ["main"] and apply_caller["on"]["workflow_dispatch"]["inputs"]["fresh"]
    assert apply_caller["jobs"]["apply"]["with"] == {"fresh": "${{ inputs.fresh == true }}"}
    reconcile_caller = callers["reconciler-reconcile.yml"]
    assert reconcile_caller["on"]["schedule"] and "workflow_dispatch" in reconcile_caller["on"]
    assert reconcile_caller["jobs"]["reconcile"]["with"] == {"detect-only": "${{ inputs.detect_only == true }}"}
    groups = {name: job["concurrency"]["group"] for workflow in (apply, reconcile)
              for name, job in workflow["jobs"].items() if "concurrency" in job}
    assert groups == {"apply": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "apply-fresh": "reconciler-apply-${{ matrix.shard.name || 'default' }}",
                      "reconcile": "reconciler-reconcile-${{ matrix.shard.name || 'default' }}"}
    assert all(not job["concurrency"]["cancel-in-progress"] for w in (apply, reconcile)
               for job in w["jobs"].values() if "concurrency" in job)
    for name in REUSABLE:  # shards listed by the reconciler, narrowed by the input with jq --arg
        listing = [s for s in steps(load(name)) if s.get("id") == "list"]
        assert listing and all(s["run"].startswith("listing=$(reconciler shards --format json)\n") for s in listing)
        assert all(s["env"]["ONLY"] == "${{ inputs.shards }}" for s in listing)


def test_a_fresh_apply_is_planned_shown_approved_then_exactly_that_file_applied():
    """plan-fresh saves and shows each shard's plan; approve (an environment with reviewers and
    no secrets) waits after it; apply-fresh applies this run's saved file and never plans itself."""
    jobs = load("apply.yml")["jobs"]
    fresh = "${{ github.event_name == 'workflow_dispatch' && inputs.fresh }}"
    assert jobs["apply"]["if"] == "${{ !inputs.fresh }}"
    assert jobs["plan-fresh"]["if"] == jobs["approve"]["if"] == jobs["apply-fresh"]["if"] == fresh
    assert jobs["plan-fresh"]["environment"] == "${{ inputs.plan-environment }}"
    assert jobs["approve"]["needs"] == "plan-fresh" and "approve" in jobs["apply-fresh"]["needs"]
    assert jobs["approve"]["environment"] == "${{ inputs.approval-environment }}"
    assert jobs["approve"]["permissions"] == {} and "secrets." not in repr(jobs["approve"])
    planned = next(s["run"] for s in jobs["plan-fresh"]["steps"] if "secrets." in repr(s))
    assert "reconciler plan \"${shard[@]}\" --out fresh/reconciler.plan" in planned
    assert 'cat fresh/plan.md >> "$GITHUB_STEP_SUMMARY"' in planned
    kept = next(s for s in jobs["plan-fresh"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    fetched = next(s for s in jobs["apply-fresh"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert kept["with"]["name"] == fetched["with"]["name"] == "reconciler-fresh-${{ matrix.shard.name || 'default' }}"
    applying = next(s["run"] for s in jobs["apply-fresh"]["steps"] if "secrets." in repr(s))
    assert 'reconciler apply approved/reconciler.plan "${shard[@]}"' in applying
    assert "reconciler plan" not in applying and '"$commit" != "$GITHUB_SHA"' in applying


def test_only_the_drift_job_writes_issues_and_it_holds_no_secret():
    for name in REUSABLE:
        for job_name, job in load(name)["jobs"].items():
            if (name, job_name) != ("reconcile.yml", "drift"):
                assert "issues" not in job.get("permissions", {}), (name, job_name)
    drift = load("reconcile.yml")["jobs"]["drift"]
    assert drift["permissions"] == {"issues": "write"} and "environment" not in drift
    assert "secrets." not in repr(drift)
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in drift["steps"])
    assert drift["if"] == "${{ !cancelled() && needs.shards.result == 'success' }}"


@pytest.mark.parametrize("path", WORKFLOWS + CALLERS, ids=lambda p: p.name)
def test_no_workflow_a_pull_request_starts_references_a_secret(path):
    workflow = YAML(typ="safe").load(path.read_text())
    if "pull_request" in workflow["on"]:
        assert "secrets." not in path.read_text()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_checkout_keeps_the_token(path):
    checkouts = [s for s in steps(YAML(typ="safe").load(path.read_text())) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)


@pytest.mark.parametrize("name", REUSABLE)
def test_nothing_from_a_checkout_is_executed(name):
    """A job holding secrets runs the installed reconciler, jq, gh and bash builtins: no interpreter
    that would import a module of the working directory (only `python -I`), no make, no pip (the
    install action alone runs it, isolated, on its own checkout), no script of a checkout."""
    for script in [*scripts(name), action_script()]:
        tokens = words(script)
        for index, token in enumerate(tokens):
            if re.fullmatch(r"(.*/)?python[\d.]*", token):
                assert tokens[index + 1:index + 5] == ["-I", "-m", "pip", "install"], script
            assert token != "pip" or tokens[index - 2:index] == ["-I", "-m"], script
        assert not {"make", "source", ".", "sh", "bash", "eval", "exec"} & set(tokens), script
        assert not any(token.startswith("./") for token in tokens), script
    assert not any("pip" in words(script) for script in scripts(name))


@pytest.mark.parametrize("name", REUSABLE)
def test_jq_takes_every_value_as_an_argument(name):
    """Values (shard names, markers, shas, the shards input) reach a jq program only through
    --arg/--argjson: a program is single-quoted, so the shell splices nothing into it, and names
    only what it is given. gh's own --jq takes no --arg, so it is not used."""
    programs = [program for script in scripts(name) for program in jq_programs(script)]
    assert programs
    for program, given in programs:
        assert re.fullmatch(r"'[^']*'", program), program
        bound = set(re.findall(r"\bas \$(\w+)", program))  # a variable the program binds itself
        assert set(re.findall(r"\$(\w+)", program)) - bound <= given, (program, given)
    assert not any("--jq" in words(script) for script in scripts(name))


def test_the_plan_of_a_pull_request_reads_its_head_as_data_with_the_base_branchs_code():
    caller = load(ROOT / "examples" / "github" / "reconciler-plan.yml")
    assert set(caller["on"]) == {"pull_request_target"}
    assert caller["on"]["pull_request_target"] == {"types": ["opened", "synchronize", "reopened"], "branches": ["main"],
                                                   "paths": ["manifests/**", "reconciler.toml"]}
    trigger = next(line for line in (ROOT / "examples/github/reconciler-plan.yml").read_text().splitlines()
                   if line.strip().startswith("pull_request_target:"))
    assert re.search(r"# zizmor: ignore\[dangerous-triggers\] \S.*", trigger), trigger  # accepted, with a reason
    plan = load("plan.yml")
    for job_name in ("shards", "plan"):
        job = plan["jobs"][job_name]
        uses = [s.get("uses", "").split("@")[0] or s.get("name", "") for s in job["steps"]]
        checkout = uses.index("actions/checkout", 2)  # after the reconciler's own checkout and install
        assert uses.index(LOCAL_INSTALL) < checkout
        assert job["steps"][checkout]["with"] == {"ref": "${{ github.event.pull_request.head.sha }}", "path": "pr",
                                                  "persist-credentials": False}
        for step in job["steps"][checkout + 1:]:  # the reconciler reads the checkout as its working directory
            if "reconciler " in step.get("run", ""):
                assert step["working-directory"] == "pr", step["name"]
    comment = plan["jobs"]["comment"]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in comment["steps"])
    assert "secrets." not in repr(comment)
    assert not any("reconciler" in words(s["run"]) for s in comment["steps"] if "run" in s)


def test_the_comment_is_shows_markdown_as_it_is():
    """The body posted is plan.md (`show --format markdown`, which starts with the shard's marker),
    checked for that marker, never wrapped; only a failed plan gets a notice written here."""
    post = step_named("plan.yml", "comment", "Post the plans")["run"]
    assert 'body="plans/reconciler-plan-$HEAD_SHA-$shard/plan.md"' in post
    assert '"$(head -n 1 "$body")" != "$marker"' in post
    assert post.count('-F "body=@$body"') == 2
    assert 'cat "$dir/plan.md"' not in post and "Saved plan: artifact" not in post  # no header or footer of its own
    notice = post[post.index('body="failed-$shard.md"'):post.index('} > "$body"')]
    assert 'echo "$marker"' in notice and "The plan of this shard failed" in notice


def test_the_apply_takes_only_the_planning_callers_artifacts_of_a_successful_pull_request_target_run():
    """Never an artifact found by its name alone: any workflow, branch or failed run can upload one.
    A run of a called workflow is recorded under its caller's file: the planning caller's name is
    an input (default reconciler-plan.yml), checked to be a bare file name."""
    find = step_named("apply.yml", "apply", "Find the plan")
    assert find["env"]["PLAN_WORKFLOW"] == "${{ inputs.plan-workflow }}"
    run = find["run"]
    assert '[[ ! "$PLAN_WORKFLOW" =~ ^[A-Za-z0-9_.-]+\\.ya?ml$ ]]' in run
    assert "actions/workflows/$PLAN_WORKFLOW/runs?event=pull_request_target&status=success" in run
    assert "actions/runs/$candidate/artifacts?name=$name" in run and 'gh run download "$run"' in run
    assert "actions/artifacts" not in run
    programs = {program: given for program, given in jq_programs(run)}
    runs = next(program for program in programs if "workflow_runs" in program)
    for condition in ('.event == "pull_request_target"', '.conclusion == "success"', ".head_branch == $branch",
                      ".repository.full_name == $repo"):
        assert condition in runs, condition
    assert programs[runs] == {"branch", "repo"}
    assert ".expired == false" in next(program for program in programs if ".artifacts" in program)
    apply_step = step_named("apply.yml", "apply", "Apply")
    assert "reconciler show reviewed/reconciler.plan --format json | jq -r '.saved.commit // empty'" in apply_step["run"]
    assert '"$commit" != "$HEAD_SHA"' in apply_step["run"] and apply_step["env"]["HEAD_SHA"] == "${{ steps.find.outputs.head }}"


ENVIRONMENTS = {("plan.yml", "plan"): "${{ inputs.environment }}", ("apply.yml", "apply"): "${{ inputs.environment }}",
                ("apply.yml", "plan-fresh"): "${{ inputs.plan-environment }}",
                ("apply.yml", "apply-fresh"): "${{ inputs.environment }}",
                ("reconcile.yml", "reconcile"): "${{ inputs.environment }}"}


@pytest.mark.parametrize("name", REUSABLE)
def test_every_job_with_a_secret_has_its_environment_and_every_step_the_plan_key(name):
    """Secrets sit in GitHub environments limited to the default branch (README: "GitHub workflows");
    a step that runs the reconciler with them also has the key that signs and verifies saved plans."""
    for job_name, job in load(name)["jobs"].items():
        secret_steps = [s for s in job["steps"] if "secrets." in repr(s)]
        assert (job.get("environment") == ENVIRONMENTS[name, job_name]) if secret_steps else (name, job_name) not in ENVIRONMENTS
        for step in secret_steps:
            assert step["env"]["RECONCILER_PLAN_KEY"] == "${{ secrets.RECONCILER_PLAN_KEY }}", step["name"]
            assert step["env"]["SH_CLIENT_SECRET"] == "${{ secrets.SH_CLIENT_SECRET }}", step["name"]


def run_step(tmp_path, script: str, env: dict[str, str], runner: Runner | None = None) -> subprocess.CompletedProcess:
    path = f"{runner.path}" if runner else os.environ["PATH"]
    full = {**os.environ, "PATH": path, **env}
    if runner:
        full.update(FAKE_GH_STATE=str(runner.github.folder), FAKE_GH_REPO=runner.github.repository)
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=full,
                          capture_output=True, text=True)


def test_a_plan_with_anything_blocked_fails_the_check_naming_each_blocked_action_and_why(tmp_path):
    """`plan --detailed-exitcode` exits 4: the plan step keeps going (the plan is saved, uploaded and
    posted), then the last step lists the blocked actions in the summary (reasons escaped) and fails."""
    plan_step = step_named("plan.yml", "plan", "Validate and plan")["run"]
    assert 'case "$code" in 0|2|4) ;; *) exit "$code" ;; esac' in plan_step
    assert 'echo "code=$code" >> "$GITHUB_OUTPUT"' in plan_step
    last = load("plan.yml")["jobs"]["plan"]["steps"][-1]
    assert last["env"] == {"CODE": "${{ steps.plan.outputs.code }}"} and "if" not in last
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "plan.md").write_text("<!-- reconciler-plan:agri -->\nthe plan\n")
    (tmp_path / "out" / "plan.json").write_text(json.dumps({"actions": [
        {"kind": "create", "name": "fine", "reasons": ["new"]},
        {"kind": "blocked", "name": "too-dear", "reasons": ["estimate 9.0 PU exceeds maxCostPU 0.1", "<b>raise</b> it"]},
        {"kind": "blocked", "name": "gone", "reasons": ["deleted by the service"]}]}))
    for code, fails in (("0", False), ("2", False), ("4", True)):
        summary = tmp_path / f"summary-{code}.md"
        result = run_step(tmp_path, last["run"], {"CODE": code, "SHARD_KEY": "agri", "GITHUB_STEP_SUMMARY": str(summary)})
        assert (result.returncode == 1) is fails, result.stdout + result.stderr
        text = summary.read_text()
        assert text.endswith("<!-- reconciler-plan:agri -->\nthe plan\n")
        if fails:
            assert "- **too-dear**: estimate 9.0 PU exceeds maxCostPU 0.1 · &lt;b&gt;raise&lt;/b&gt; it" in text
            assert "- **gone**: deleted by the service" in text and "fine" not in text
            assert "policy blocks too-dear, gone in shard agri" in result.stdout
        else:
            assert "Blocked" not in text


def test_a_drift_issue_body_stays_within_githubs_limit(tmp_path):
    """The report goes into the issue as it is, cut by characters (not bytes) with a note when the
    whole would exceed GitHub's 65,536."""
    runner = Runner(tmp_path, tmp_path, tmp_path / "github", {})
    runner.github.add_token("token", {"issues": "write"})
    drift = step_named("reconcile.yml", "drift", "Open, update or close")
    report = tmp_path / "reports" / "reconciler-report-agri"
    report.mkdir(parents=True)
    (report / "report.md").write_text("## Reconcile report · shard agri\n\n" + "é😀 long line\n" * 9000)
    (report / "exit").write_text("2\n")
    env = {"GH_TOKEN": "token", "REPO": "team/manifests", "SHARDS": json.dumps([{"name": "agri"}]),
           "RUN_URL": "https://github.com/team/manifests/actions/runs/7", "BOT": "github-actions[bot]", "LIMIT": "65536"}
    result = run_step(tmp_path, drift["run"], env, runner)
    assert result.returncode == 0, result.stdout + result.stderr
    (issue,) = runner.github.issues()
    assert issue["body"].startswith("<!-- reconciler-drift:agri -->\n") and len(issue["body"]) <= 65536
    assert issue["body"].endswith("(cut here: the whole report is in the job summary of "
                                  "https://github.com/team/manifests/actions/runs/7)")
    assert issue["title"] == "reconciler: shard agri is not converged"


def commit_all(repo: Path) -> str:
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def tiny_runner(tmp_path, upstream_files: dict[str, str], caller: str) -> tuple[Runner, dict, str]:
    """A runner for one caller file (its COMMIT the upstream's), in a repository of nothing, calling
    an upstream repository `up/stream` of `upstream_files`; the event of a schedule; the upstream commit."""
    upstream, team, callers = tmp_path / "upstream", tmp_path / "team", tmp_path / "callers"
    for repo in (upstream, team):
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        (repo / "README").write_text("x\n")
    for name, text in upstream_files.items():
        (upstream / name).parent.mkdir(parents=True, exist_ok=True)
        (upstream / name).write_text(text)
    sha, team_sha = commit_all(upstream), commit_all(team)
    callers.mkdir()
    (callers / "caller.yml").write_text(caller.replace("COMMIT", sha))
    runner = Runner(callers, team, tmp_path / "github", {}, repositories={"up/stream": upstream})
    event = {"github": {"repository": "team/manifests", "server_url": "https://github.com", "sha": team_sha,
                        "event_name": "schedule", "ref_name": "main", "event": {}}, "vars": {}, "secrets": {},
             "environments": {"e": {"branches": ["main"], "secrets": {"PASSED": "12345", "NOT_PASSED": "abc"}}}}
    return runner, event, sha


def test_the_runner_refuses_a_caller_that_grants_less_than_the_called_jobs_need(tmp_path):
    """GitHub does not start a run whose called job asks for more than the calling job grants:
    a caller without `issues: write` is refused before any job runs."""
    caller = (ROOT / "examples/github/reconciler-reconcile.yml").read_text().replace("OWNER/REPO/", "up/stream/")
    caller = caller.replace(PLACEHOLDER, "COMMIT").replace("      issues: write # only its drift job, which holds no secret\n", "")
    runner, event, _ = tiny_runner(tmp_path, {".github/workflows/reconcile.yml": (ROOT / ".github/workflows/reconcile.yml").read_text()},
                                   caller)
    with pytest.raises(InvalidWorkflow, match="'issues: write', but is only allowed 'issues: none'"):
        runner.run("caller.yml", event)
    assert not (tmp_path / "github" / "work").exists()


CALLED = """\
on:
  workflow_call:
    inputs:
      greeting: {type: string, default: hello}
      loud: {type: boolean, default: false}
    secrets:
      PASSED: {required: true}
      NOT_PASSED: {required: false}
jobs:
  show:
    runs-on: ubuntu-latest
    environment: e
    permissions: {}
    steps:
      - uses: up/stream/action@COMMIT_OF_ACTION
      - env:
          PASSED: ${{ secrets.PASSED }}
          NOT_PASSED: ${{ secrets.NOT_PASSED }}
          GREETING: ${{ inputs.greeting }}
          LOUD: ${{ inputs.loud }}
          SHA: ${{ job.workflow_sha }}
          REF: ${{ job.workflow_ref }}
        run: echo "passed=${#PASSED} not-passed=${#NOT_PASSED} $GREETING loud=$LOUD sha=$SHA ref=$REF"
"""
ACTION_YML = """\
name: where am I
description: prints its own folder
runs:
  using: composite
  steps:
    - shell: bash
      env:
        FROM_CONTEXT: ${{ github.action_path }}
      run: echo "action at $GITHUB_ACTION_PATH $FROM_CONTEXT"
"""


def test_the_runner_gives_a_called_workflow_what_github_gives_it(tmp_path):
    """Inputs declared, typed and defaulted; an environment's secret only under a name the caller
    passed (the other stays empty); job.workflow_sha/workflow_ref of the called file; a remote
    composite action run from its own checkout at its ref, github.action_path pointing there."""
    upstream = {"action/action.yml": ACTION_YML, ".github/workflows/called.yml": CALLED}
    caller = """\
on: schedule
permissions: {}
jobs:
  call:
    uses: up/stream/.github/workflows/called.yml@COMMIT
    with:
      loud: true
    secrets:
      PASSED: ${{ secrets.PASSED }}
"""
    runner, event, sha = tiny_runner(tmp_path, upstream, caller)
    called = (tmp_path / "upstream" / ".github/workflows/called.yml")
    called.write_text(CALLED.replace("COMMIT_OF_ACTION", sha))  # the action as it is at the first commit
    sha2 = commit_all(tmp_path / "upstream")
    (tmp_path / "callers" / "caller.yml").write_text(caller.replace("COMMIT", sha2))
    run = runner.run("caller.yml", event)
    assert run.failed() == [], run.failed()
    action_path = tmp_path / "github" / "_actions" / "up" / "stream" / sha / "action"
    assert run.jobs["call/show"][0] == ("up/stream/action@" + sha, 0, f"action at {action_path} {action_path}\n")
    assert run.output("call/show").endswith(
        f"passed=5 not-passed=0 hello loud=true sha={sha2} ref=up/stream/.github/workflows/called.yml@{sha2}\n")
    with pytest.raises(InvalidWorkflow, match="inputs \\['shout'\\] are not defined"):
        (tmp_path / "callers" / "caller.yml").write_text(caller.replace("COMMIT", sha2).replace("loud: true", "shout: true"))
        runner.run("caller.yml", event)
    with pytest.raises(InvalidWorkflow, match="input loud must be a boolean"):
        (tmp_path / "callers" / "caller.yml").write_text(caller.replace("COMMIT", sha2).replace("loud: true", "loud: yes please"))
        runner.run("caller.yml", event)


def test_zizmor_finds_nothing():
    """zizmor (offline, its default persona, no configuration to mute an audit) over the reusable
    workflows, the install action and the callers; each accepted finding carries its reason on the
    line (the callers' pull_request_target trigger; the install action run from the reconciler's
    own pinned checkout, which zizmor takes for a workspace-relative action)."""
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run([str(zizmor), "--offline", "--no-config", "--format", "json", str(ROOT / ".github"),
                             *map(str, CALLERS)], capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr
    ignores = [line for path in [*WORKFLOWS, *CALLERS] for line in path.read_text().splitlines() if "zizmor: ignore" in line]
    assert ignores and all(re.search(r"# zizmor: ignore\[(dangerous-triggers|self-repository)\] \S.*", line)
                           for line in ignores), ignores


def test_shellcheck_finds_nothing_in_any_run_step_or_script(tmp_path):
    """Every `run:` step of every workflow and of the install action (bash, as GitHub runs it;
    expressions stand in as a word) and the project's shell scripts, at shellcheck's warning level."""
    found = [ROOT / "scripts" / "demo.sh", ROOT / ".ci" / "run"]
    runs = [(f"{path.stem}-{job_name}-{index}", step["run"]) for path in WORKFLOWS
            for job_name, job in load(path).get("jobs", {}).items()
            for index, step in enumerate(job.get("steps", [])) if "run" in step]
    runs.append(("install-action", action_script()))
    for name, run in runs:
        script = tmp_path / f"{name}.sh"
        body = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", run, flags=re.S)
        script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
        found.append(script)
    assert len(found) > 15
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([str(shellcheck), "--shell", "bash", "--severity", "warning", *map(str, found)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_shows_the_planning_caller_as_it_is():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## GitHub workflows\n"):readme.index("### pre-commit\n")]
    assert f"```yaml\n{(ROOT / 'examples' / 'github' / 'reconciler-plan.yml').read_text()}```\n" in section
    assert "RECONCILER_ENABLED" not in section and "sh-batch-reconciler==0" not in section
