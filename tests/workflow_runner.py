"""A small runner of this project's GitHub workflow templates, for tests: it runs a workflow's jobs
in order (`needs`), expands a matrix, fills `${{ … }}` expressions as GitHub would for the event,
and runs every `run:` step with bash in a workspace of its own (never the repository itself), with
the real `jq` and a fake `gh`. It plays the actions the templates use: checkout clones the local
repository at a commit (`ref`, default the event's sha) into the workspace or a sub-folder (`path`);
setup-python and AWS credentials are no-ops; artifacts are folders. GitHub's side is `FakeGitHub`:
workflow runs (which workflow file, event, branch and conclusion made each), their artifacts,
comments per pull request, the pull requests a merge came from, environments (their secrets reach
only a job that names them, and only on the branches they allow). So a template change that breaks
a real run, or that would pick an artifact by its name alone, fails `make test` without GitHub."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ruamel.yaml import YAML

EXPRESSION = re.compile(r"\$\{\{((?:(?!\}\}).)*)\}\}", re.S)
ROOT = Path(__file__).resolve().parent.parent
CONCLUSIONS = {"success", "failure", "cancelled", "skipped", "neutral", "timed_out", "action_required", "stale"}
COMMENTS_PER_PAGE = 2  # small, so that a template that reads one page only misses comments


class Context(dict):
    """An expression context: `a.b.c` reads nested keys; anything missing is '' (as in GitHub)."""

    def __getattr__(self, name: str) -> Any:
        value = self.get(name, "")
        return Context(value) if isinstance(value, dict) else value


def evaluate(text: str, scope: dict[str, Any]) -> Any:
    """`${{ … }}` filled in; a text that is one whole expression gives its value (a list, say)."""
    whole = EXPRESSION.fullmatch(text.strip())
    if whole:
        return _value(whole.group(1), scope)
    return EXPRESSION.sub(lambda m: _text(_value(m.group(1), scope)), text)


def _value(expression: str, scope: dict[str, Any]) -> Any:
    python = (expression.replace("||", " or ").replace("&&", " and ").replace("!=", " ≠ ").replace("!", " not ")
              .replace(" ≠ ", " != ").replace("fromJSON", "_json").replace("always()", "True")
              .replace("inputs.", "inputs_."))
    names = {k: (Context(v) if isinstance(v, dict) else v) for k, v in scope.items()}
    names["inputs_"] = names.pop("inputs", Context())
    return eval(python, {"_json": json.loads, "True": True, "False": False}, names)  # noqa: S307 — test-only


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


class FakeGitHub:
    """GitHub's side, kept in `folder` (one JSON file, artifacts as folders), shared by the runner
    and the fake `gh` it puts on PATH."""

    def __init__(self, folder: Path, repository: str):
        self.folder, self.repository = folder, repository
        self.file = folder / "github.json"
        if not self.file.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self._save({"next": 1, "runs": [], "artifacts": [], "comments": {}, "pulls": {}, "downloads": []})

    def _load(self) -> dict:
        return json.loads(self.file.read_text())

    def _save(self, data: dict) -> None:
        self.file.write_text(json.dumps(data, indent=1))

    def _next(self, data: dict) -> int:
        data["next"] += 1
        return data["next"] - 1

    # what the runner (and a test) records

    def start_run(self, workflow: str, event: str, branch: str, sha: str) -> int:
        """A run of `.github/workflows/<workflow>` for `event` on `branch` (GitHub's head_branch:
        for pull_request_target, the base branch), in progress."""
        data = self._load()
        run = self._next(data)
        data["runs"].append({"id": run, "path": f".github/workflows/{workflow}", "event": event, "head_branch": branch,
                             "head_sha": sha, "status": "in_progress", "conclusion": None,
                             "created_at": f"2025-01-01T00:00:00.{run:06d}Z",
                             "repository": {"full_name": self.repository},
                             "head_repository": {"full_name": self.repository}})
        self._save(data)
        return run

    def finish_run(self, run: int, conclusion: str) -> None:
        data = self._load()
        for record in data["runs"]:
            if record["id"] == run:
                record.update(status="completed", conclusion=conclusion)
        self._save(data)

    def add_artifact(self, run: int, name: str, files: Path, expired: bool = False) -> None:
        data = self._load()
        if any(a["run"] == run and a["name"] == name for a in data["artifacts"]):
            raise RuntimeError(f"an artifact {name} exists in run {run} already (upload-artifact v4 refuses it)")
        artifact = self._next(data)
        shutil.copytree(files, self.folder / "artifacts" / str(artifact))
        data["artifacts"].append({"id": artifact, "name": name, "run": run, "expired": expired})
        self._save(data)

    def plant(self, name: str, files: Path, workflow: str = "plan.yml", event: str = "pull_request_target",
              branch: str = "main", conclusion: str = "success", expired: bool = False) -> int:
        """An artifact `name` in a finished run of the given workflow file, event, branch and
        conclusion (by default, as plan.yml makes one for a pull request): what a test plants."""
        run = self.start_run(workflow, event, branch, "0" * 40)
        self.add_artifact(run, name, files, expired)
        self.finish_run(run, conclusion)
        return run

    def merged(self, merge_sha: str, head_sha: str, number: int, base: str = "main") -> None:
        """Commit `merge_sha` on `base` is the merge of pull request `number`, whose head was `head_sha`."""
        data = self._load()
        data["pulls"][merge_sha] = [{"number": number, "merged_at": "2025-01-01T00:00:00Z", "base": {"ref": base},
                                     "head": {"sha": head_sha}}]
        self._save(data)

    def comment(self, pr: int, body: str) -> None:
        """Someone's comment on pull request `pr`."""
        data = self._load()
        data["comments"].setdefault(str(pr), []).append({"id": self._next(data), "body": body})
        self._save(data)

    def artifacts_of(self, run: int) -> list[tuple[str, Path]]:
        return [(a["name"], self.folder / "artifacts" / str(a["id"])) for a in self._load()["artifacts"]
                if a["run"] == run]

    def comments(self, pr: int) -> list[str]:
        return [c["body"] for c in self._load()["comments"].get(str(pr), [])]

    def downloads(self) -> list[tuple[int, str]]:
        """Which (run, artifact name) `gh run download` handed out, in order."""
        return [(run, name) for run, name in self._load()["downloads"]]

    # what the fake `gh` answers

    def gh(self, args: list[str]) -> int:
        if args[:1] == ["api"]:
            return self._api(args[1:])
        if args[:2] == ["run", "download"]:
            return self._download(args[2:])
        return _refuse(f"fake gh: {args} is not a call the templates make")

    def _api(self, args: list[str]) -> int:
        method, paginate, fields, positional = "GET", False, {}, []
        rest = list(args)
        while rest:
            arg = rest.pop(0)
            if arg in ("--method", "-X"):
                method = rest.pop(0)
            elif arg == "--paginate":
                paginate = True
            elif arg in ("-F", "-f", "--field", "--raw-field"):
                key, _, value = rest.pop(0).partition("=")
                fields[key] = Path(value[1:]).read_text() if value.startswith("@") and arg in ("-F", "--field") else value
            elif arg.startswith("-"):  # --jq and --template among them: gh's --jq takes no --arg
                return _refuse(f"fake gh api: option {arg} is not played (pipe the output into jq instead)")
            else:
                positional.append(arg)
        url = urlsplit(positional[0])
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        prefix = f"repos/{self.repository}/"
        if not url.path.startswith(prefix):
            return _refuse(f"fake gh api: 404 for {url.path} (the repository is {self.repository})")
        return self._route(method, url.path.removeprefix(prefix), query, fields, paginate)

    def _route(self, method: str, path: str, query: dict, fields: dict, paginate: bool) -> int:
        data = self._load()
        if method == "GET" and (m := re.fullmatch(r"commits/(\w+)/pulls", path)):
            return _answer(data["pulls"].get(m.group(1), []))
        if method == "GET" and (m := re.fullmatch(r"actions/workflows/([\w.-]+)/runs", path)):
            runs = [r for r in data["runs"] if r["path"] == f".github/workflows/{m.group(1)}"
                    and r["event"] == query.get("event", r["event"]) and r["head_branch"] == query.get("branch", r["head_branch"])
                    and (query.get("status") is None or query["status"] in (r["status"], r["conclusion"]))]
            runs = sorted(runs, key=lambda r: r["created_at"], reverse=True)[:int(query.get("per_page", 30))]
            return _answer({"total_count": len(runs), "workflow_runs": runs})
        if method == "GET" and (m := re.fullmatch(r"actions/runs/(\d+)/artifacts", path)):
            run = next((r for r in data["runs"] if r["id"] == int(m.group(1))), None)
            if run is None:
                return _refuse(f"fake gh api: 404 for run {m.group(1)}")
            found = [{"id": a["id"], "name": a["name"], "expired": a["expired"],
                      "workflow_run": {"id": run["id"], "head_branch": run["head_branch"], "head_sha": run["head_sha"]}}
                     for a in data["artifacts"] if a["run"] == run["id"] and a["name"] == query.get("name", a["name"])]
            return _answer({"total_count": len(found), "artifacts": found})
        if m := re.fullmatch(r"issues/(\d+)/comments", path):
            comments = data["comments"].setdefault(m.group(1), [])
            if method == "GET":
                pages = [comments[i:i + COMMENTS_PER_PAGE] for i in range(0, len(comments), COMMENTS_PER_PAGE)] or [[]]
                print("".join(json.dumps(page) for page in (pages if paginate else pages[:1])))
                return 0
            if method == "POST":
                comments.append({"id": self._next(data), "body": fields["body"]})
                self._save(data)
                return _answer(comments[-1])
        if method == "PATCH" and (m := re.fullmatch(r"issues/comments/(\d+)", path)):
            for comment in (c for cs in data["comments"].values() for c in cs if c["id"] == int(m.group(1))):
                comment["body"] = fields["body"]
                self._save(data)
                return _answer(comment)
            return _refuse(f"fake gh api: 404 for comment {m.group(1)}")
        return _refuse(f"fake gh api: {method} {path} is not a call the templates make")

    def _download(self, args: list[str]) -> int:
        run, options = int(args[0]), dict(zip(args[1::2], args[2::2]))
        if options.get("--repo") != self.repository:
            return _refuse(f"fake gh run download: {options.get('--repo')} is not {self.repository}")
        data = self._load()
        found = [a for a in data["artifacts"] if a["run"] == run and a["name"] == options["--name"] and not a["expired"]]
        if not found:
            return _refuse(f"fake gh run download: no valid artifact {options['--name']} in run {run}")
        shutil.copytree(self.folder / "artifacts" / str(found[0]["id"]), options["--dir"], dirs_exist_ok=True)
        data["downloads"].append([run, options["--name"]])
        self._save(data)
        return 0


def _answer(value: Any) -> int:
    print(json.dumps(value))
    return 0


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


# The fake `gh` the steps find on PATH: this module's FakeGitHub, run by this interpreter. Its own
# folder is the first entry of its sys.path, never the step's working directory.
FAKE_GH = """#!{python}
import os, sys
sys.path.insert(0, {root!r})
from tests.workflow_runner import FakeGitHub
from pathlib import Path
sys.exit(FakeGitHub(Path(os.environ["FAKE_GH_STATE"]), os.environ["FAKE_GH_REPO"]).gh(sys.argv[1:]))
"""


class NotTriggered(Exception):
    """The workflow does not run for this event."""


@dataclass
class Run:
    """One run of a workflow: what each job's steps printed, and what they left behind."""

    id: int = 0
    jobs: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)  # job → [(step, exit, output)]
    workspaces: dict[str, Path] = field(default_factory=dict)  # job → its workspace
    summary: str = ""
    conclusion: str = ""

    def failed(self) -> list[tuple[str, str, str]]:
        return [(job, step, out) for job, results in self.jobs.items() for step, code, out in results if code]

    def output(self, job: str) -> str:
        return "".join(out for _, _, out in self.jobs[job])


class Runner:
    """Runs templates for events on `repo` (a local git repository, never a step's working
    directory), with `state` the folder GitHub's side and the workspaces live in."""

    def __init__(self, workflows: Path, repo: Path, state: Path, env: dict[str, str],
                 repository: str = "team/manifests"):
        if shutil.which("jq") is None:
            raise RuntimeError("jq is not installed: the templates use it, as GitHub's runners have it (apt-get install jq)")
        self.workflows, self.repo, self.state, self.env = workflows, repo, state, env
        self.github = FakeGitHub(state / "github", repository)
        bin_dir = state / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "gh").write_text(FAKE_GH.format(python=sys.executable, root=str(ROOT)))
        (bin_dir / "pip").write_text("#!/bin/sh\nexit 0\n")  # the package under test is installed already
        for tool in ("gh", "pip"):
            (bin_dir / tool).chmod(0o755)
        self.path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"

    def run(self, name: str, event: dict[str, Any]) -> Run:
        """Run workflow file `name` for `event` (see tests/test_workflow_runs.py's `event`)."""
        workflow = _load(self.workflows / name)
        github = event["github"]
        _check_trigger(workflow, github)
        run_id = self.github.start_run(name, github["event_name"], github["ref_name"], github["sha"])
        outcome, results = Run(id=run_id), {}
        event = {**event, "github": {**github, "run_id": str(run_id), "token": "fake-token-for-this-run"}}
        summary = self.state / f"summary-{run_id}.md"
        summary.write_text("")
        for job_name, job in workflow["jobs"].items():  # the templates list jobs in the order `needs` runs them
            needs = {n: results.get(n, {"result": "skipped", "outputs": {}}) for n in _list(job.get("needs"))}
            scope = {**event, "needs": needs}
            if not _true(evaluate(job.get("if", "true"), scope)) or any(
                    needs[n]["result"] != "success" for n in needs) and "always()" not in job.get("if", ""):
                results[job_name] = {"result": "skipped", "outputs": {}}
                continue
            matrix = evaluate(str(job.get("strategy", {}).get("matrix", {}).get("shard", "${{ [None] }}")), scope)
            results[job_name] = self._job(job_name, job, workflow, scope, matrix if matrix else [None], outcome, summary)
        outcome.summary = summary.read_text()
        outcome.conclusion = "failure" if any(r["result"] == "failure" for r in results.values()) else "success"
        self.github.finish_run(run_id, outcome.conclusion)
        return outcome

    def _job(self, name, job, workflow, scope, matrix, outcome, summary) -> dict:
        result, outputs = "success", {}
        for shard in matrix:
            key = f"{name}[{(shard or {}).get('name') or 'default'}]" if shard is not None else name
            workspace = self.state / "work" / str(outcome.id) / key
            workspace.mkdir(parents=True)
            outcome.workspaces[key], outcome.jobs[key] = workspace, []
            job_scope = {**scope, "matrix": {"shard": shard or {}}, "steps": {},
                         "github": {**scope["github"], "workspace": str(workspace)}}
            refused = self._environment(job, job_scope)
            if refused:
                outcome.jobs[key].append(("environment", 1, refused))
                result = "failure"
                continue
            env = {**{k: _text(evaluate(str(v), job_scope)) for k, v in workflow.get("env", {}).items()}}
            env.update({k: _text(evaluate(str(v), {**job_scope, "env": env})) for k, v in job.get("env", {}).items()})
            for index, step in enumerate(job["steps"]):
                step_scope = {**job_scope, "env": env}
                if "if" in step and not _true(evaluate(step["if"], step_scope)):
                    continue
                code, out, step_outputs = self._step(step, step_scope, env, summary, workspace, outcome.id)
                outcome.jobs[key].append((step.get("name", step.get("uses", f"step {index}")), code, out))
                job_scope["steps"][step.get("id", f"s{index}")] = {"outputs": step_outputs}
                if code:
                    result = "failure"
                    break
            outputs.update({k: _text(evaluate(str(v), job_scope)) for k, v in job.get("outputs", {}).items()})
        return {"result": result, "outputs": outputs}

    def _environment(self, job: dict, scope: dict) -> str:
        """The job's secrets: the repository's, and its environment's when the branch may use it
        (deployment branch rules); a refusal message otherwise."""
        name = job.get("environment")
        environment = scope.get("environments", {}).get(name, {}) if name else {}
        branch = scope["github"]["ref_name"]
        if environment.get("branches") is not None and branch not in environment["branches"]:
            return f"Branch {branch!r} is not allowed to deploy to {name} due to environment protection rules."
        scope["secrets"] = {**scope.get("secrets", {}), **environment.get("secrets", {})}
        return ""

    def _step(self, step, scope, env, summary, workspace: Path, run_id: int) -> tuple[int, str, dict]:
        uses = step.get("uses", "")
        inputs = {k: _text(evaluate(str(v), scope)) for k, v in step.get("with", {}).items()}
        if uses.startswith("actions/checkout@"):
            return self._checkout(workspace / inputs.get("path", ""), inputs.get("ref") or scope["github"]["sha"])
        if uses.startswith("actions/upload-artifact@"):
            self.github.add_artifact(run_id, inputs["name"], workspace / inputs["path"])
            return 0, "", {}
        if uses.startswith("actions/download-artifact@"):  # this run's artifacts, each into a folder of its name
            for name, folder in self.github.artifacts_of(run_id):
                if fnmatch.fnmatchcase(name, inputs["pattern"]):
                    shutil.copytree(folder, workspace / inputs["path"] / name, dirs_exist_ok=True)
            return 0, "", {}
        if uses:  # setup-python, AWS credentials: nothing to do here
            return 0, "", {}
        output_file = workspace.parent / f"{workspace.name}.output"
        output_file.write_text("")
        github = scope["github"]
        step_env = {**self.env, **env, **{k: _text(evaluate(str(v), {**scope, "env": env}))
                                          for k, v in step.get("env", {}).items()},
                    "PATH": self.path, "CI": "true", "GITHUB_WORKSPACE": str(workspace),
                    "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary),
                    "GITHUB_REPOSITORY": github["repository"], "GITHUB_SHA": github["sha"],
                    "GITHUB_EVENT_NAME": github["event_name"], "GITHUB_REF_NAME": github["ref_name"],
                    "RUNNER_TEMP": str(workspace.parent / f"{workspace.name}.tmp"),
                    "FAKE_GH_STATE": str(self.github.folder), "FAKE_GH_REPO": self.github.repository}
        Path(step_env["RUNNER_TEMP"]).mkdir(exist_ok=True)
        script = evaluate(step["run"], {**scope, "env": step_env})
        cwd = workspace / step.get("working-directory", "")
        if not cwd.is_dir():
            return 1, f"working-directory {cwd} does not exist", {}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                              env=step_env, capture_output=True, text=True, timeout=600)
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        return done.returncode, done.stdout + done.stderr, outputs

    def _checkout(self, target: Path, ref: str) -> tuple[int, str, dict]:
        """actions/checkout: the repository at `ref` in `target` (emptied first, as the action does)."""
        if target.exists():
            shutil.rmtree(target)
        done = subprocess.run(f"git clone -q --no-checkout {_quote(self.repo)} {_quote(target)} && "
                              f"git -C {_quote(target)} checkout -q --detach {_quote(ref)}",
                              shell=True, capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr, {}


def _quote(value: Any) -> str:
    return shlex.quote(str(value))


def _load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def _check_trigger(workflow: dict, github: dict) -> None:
    """GitHub starts a workflow only for an event its `on:` names, on a branch its filter allows
    (for pull_request_target, the base branch)."""
    triggers = workflow["on"]
    if github["event_name"] not in triggers:
        raise NotTriggered(f"{github['event_name']} is not among {list(triggers)}")
    settings = triggers[github["event_name"]]
    branches = settings.get("branches") if isinstance(settings, dict) else None
    if branches is not None and not any(fnmatch.fnmatchcase(github["ref_name"], b) for b in branches):
        raise NotTriggered(f"branch {github['ref_name']} is not among {branches}")


def _list(value: Any) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _true(value: Any) -> bool:
    return value not in (False, "", "false", 0, None)
