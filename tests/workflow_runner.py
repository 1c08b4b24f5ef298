"""A small runner of this project's GitHub workflow templates, for tests: it runs a workflow's jobs
in order (`needs`), expands a matrix, fills `${{ … }}` expressions as GitHub would for the event,
runs every `run:` step with bash in a local repository, and plays the few actions the templates use
(checkout, setup-python and cache are no-ops here; artifacts are folders) and the `gh` CLI (a fake
on PATH that keeps comments and artifacts in folders). So a template change that breaks a real run
fails `make test`, without GitHub."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

EXPRESSION = re.compile(r"\$\{\{((?:(?!\}\}).)*)\}\}", re.S)


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


FAKE_GH = r'''#!/usr/bin/env python3
"""A fake `gh` for the workflow runner: the calls the templates make, against folders."""
import json, os, shutil, sys
from pathlib import Path
state = Path(os.environ["FAKE_GH_STATE"])
args = sys.argv[1:]
comments = state / "comments"
artifacts = state / "artifacts"
comments.mkdir(parents=True, exist_ok=True)
if args[:1] == ["api"]:
    method = args[args.index("--method") + 1] if "--method" in args else "GET"
    rest, positional = args[1:], []
    while rest:
        arg = rest.pop(0)
        if arg in ("--method", "--jq", "-F", "-f"):
            rest.pop(0)
        elif not arg.startswith("-"):
            positional.append(arg)
    path = positional[0]
    if "/commits/" in path and path.endswith("/pulls"):
        merged = path.split("/commits/")[1].split("/")[0]
        print(json.loads((state / "pulls.json").read_text()).get(merged, ""))
    elif "/actions/artifacts" in path:
        name = path.split("name=")[1]
        print("4242" if (artifacts / name).is_dir() else "")
    elif path.endswith("/comments") and method == "GET":
        marker = next(a for a in args if a.startswith(".[]")).split('startswith("')[1].split('")')[0]
        for item in sorted(comments.iterdir()):
            if item.read_text().startswith(marker):
                print(item.name)
    elif method in ("POST", "PATCH"):
        body = Path(next(a for a in args if a.startswith("body=@")).removeprefix("body=@")).read_text()
        target = comments / (path.rsplit("/", 1)[1] if method == "PATCH" else str(len(list(comments.iterdir())) + 1))
        target.write_text(body)
elif args[:2] == ["run", "download"]:
    name, folder = args[args.index("--name") + 1], args[args.index("--dir") + 1]
    shutil.copytree(artifacts / name, folder, dirs_exist_ok=True)
else:
    sys.exit(f"fake gh: {args} is not a call the templates make")
'''


@dataclass
class Run:
    """One run of a workflow: what each job's steps printed, and what they left behind."""

    jobs: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)  # job → [(step, exit, output)]
    summary: str = ""

    def failed(self) -> list[tuple[str, str, str]]:
        return [(job, step, out) for job, results in self.jobs.items() for step, code, out in results if code]


class Runner:
    """Runs templates in `repo` (a git work tree), with `state` the folder the fake GitHub keeps."""

    def __init__(self, workflows: Path, repo: Path, state: Path, env: dict[str, str]):
        self.workflows, self.repo, self.state, self.env = workflows, repo, state, env
        bin_dir = state / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "gh").write_text(FAKE_GH.replace("#!/usr/bin/env python3", f"#!{sys.executable}"))
        (bin_dir / "pip").write_text("#!/bin/sh\nexit 0\n")  # the package under test is installed already
        for tool in ("gh", "pip"):
            (bin_dir / tool).chmod(0o755)
        self.path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
        (state / "artifacts").mkdir(exist_ok=True)
        if not (state / "pulls.json").exists():
            (state / "pulls.json").write_text("{}")

    def run(self, name: str, event: dict[str, Any]) -> Run:
        workflow = YAML(typ="safe").load((self.workflows / name).read_text())
        outcome, results = Run(), {}
        summary = self.state / "summary.md"
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
        return outcome

    def _job(self, name, job, workflow, scope, matrix, outcome, summary) -> dict:
        result, outputs = "success", {}
        for shard in matrix:
            key = f"{name}[{(shard or {}).get('name') or 'default'}]" if shard is not None else name
            job_scope = {**scope, "matrix": {"shard": shard or {}}, "steps": {}}
            env = {**{k: _text(evaluate(str(v), job_scope)) for k, v in workflow.get("env", {}).items()}}
            env.update({k: _text(evaluate(str(v), {**job_scope, "env": env})) for k, v in job.get("env", {}).items()})
            outcome.jobs[key] = []
            for index, step in enumerate(job["steps"]):
                step_scope = {**job_scope, "env": env}
                if "if" in step and not _true(evaluate(step["if"], step_scope)):
                    continue
                code, out, step_outputs = self._step(step, step_scope, env, summary)
                outcome.jobs[key].append((step.get("name", step.get("uses", f"step {index}")), code, out))
                job_scope["steps"][step.get("id", f"s{index}")] = {"outputs": step_outputs}
                if code:
                    result = "failure"
                    break
            outputs.update({k: _text(evaluate(str(v), job_scope)) for k, v in job.get("outputs", {}).items()})
        return {"result": result, "outputs": outputs}

    def _step(self, step, scope, env, summary) -> tuple[int, str, dict]:
        uses = step.get("uses", "")
        inputs = {k: _text(evaluate(str(v), scope)) for k, v in step.get("with", {}).items()}
        artifacts = self.state / "artifacts"
        if uses.startswith("actions/upload-artifact@"):
            shutil.copytree(self.repo / inputs["path"], artifacts / inputs["name"], dirs_exist_ok=True)
            return 0, "", {}
        if uses.startswith("actions/download-artifact@"):
            prefix = inputs["pattern"].rstrip("*")
            for found in artifacts.iterdir():
                if found.name.startswith(prefix):
                    shutil.copytree(found, self.repo / inputs["path"] / found.name, dirs_exist_ok=True)
            return 0, "", {}
        if uses:  # checkout, setup-python, cache, AWS credentials: nothing to do in a local work tree
            return 0, "", {}
        output_file = self.state / "output"
        output_file.write_text("")
        step_env = {**self.env, **env, **{k: _text(evaluate(str(v), {**scope, "env": env}))
                                          for k, v in step.get("env", {}).items()},
                    "PATH": self.path, "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary),
                    "FAKE_GH_STATE": str(self.state)}
        script = evaluate(step["run"], {**scope, "env": step_env})
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=self.repo, env=step_env,
                              capture_output=True, text=True, timeout=600)
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        return done.returncode, done.stdout + done.stderr, outputs


def _list(value: Any) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _true(value: Any) -> bool:
    return value not in (False, "", "false", 0, None)
