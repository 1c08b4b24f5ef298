"""A small runner of GitHub workflows, for tests: it runs a workflow's jobs in order (`needs`),
expands a matrix, fills `${{ … }}` expressions as GitHub would for the event, and runs every
`run:` step with bash in a workspace of its own (never a repository itself), with the real `jq`,
a fake `gh` and a fake `python` that records what pip would install.

It plays what the callers in examples/github/ and this repository's reusable workflows use:
- `workflow_call`: a job `uses: OWNER/REPO/.github/workflows/FILE@REF` runs that file as it is at
  REF in the local repository registered for OWNER/REPO, with its `inputs` (declared, typed,
  defaulted), the secrets the caller passes (declared; an environment's secret reaches a called
  job only under a name the caller passed, as on GitHub), the `job.workflow_*` identity of the
  called file, and permissions no wider than the calling job grants (else the run does not start);
- composite actions: `uses: ./PATH` (a folder of the workspace) or `uses: OWNER/REPO/PATH@REF` run
  the action's `runs.steps` (each `run:` step names its shell), with `github.action_path` and
  GITHUB_ACTION_PATH pointing at the action's folder of that checkout;
- actions/checkout clones a registered repository at `ref` (default: the event's commit for the
  repository of the run, else that repository's HEAD) into the workspace or a folder in it,
  emptying it first; a ref the repository does not have fails the step;
- setup-python and AWS credentials are no-ops; artifacts are folders;
- environments: their secrets reach only a job that names them, only on the branches they allow,
  and one with required reviewers waits for the test's `approve` callback (which sees the run so far);
- GitHub's side is `FakeGitHub`: workflow runs (which workflow file, event, branch and conclusion
  made each), their artifacts, comments, issues, the pull requests a merge came from, and a token
  per job that can do only what the job's permissions allow.
So a workflow change that breaks a real run, picks an artifact by its name alone, installs from an
index or from the manifests, or asks for a permission its caller does not grant, fails `make test`
without GitHub."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PAGE = 2  # items per page of a listing: small, so that a workflow that reads one page only misses some
BOT = "github-actions[bot]"  # the author of what a job's token writes
ISSUE_NUMBERS = 100  # issues opened here are numbered from this, apart from the tests' pull requests
LEVELS = {"none": 0, "read": 1, "write": 2}
SCOPES = ("actions", "checks", "contents", "deployments", "id-token", "issues", "packages", "pages",
          "pull-requests", "repository-projects", "security-events", "statuses")
RESTRICTED = {"contents": "read", "packages": "read"}  # a job that declares no permissions anywhere
NO_OP_ACTIONS = ("actions/setup-python", "aws-actions/configure-aws-credentials")


# ── expressions ────────────────────────────────────────────────────────────────────────────────

EXPRESSION = re.compile(r"\$\{\{((?:(?!\}\}).)*)\}\}", re.S)
_TOKENS = re.compile(r"""(?P<string>'(?:[^']|'')*')|(?P<name>[A-Za-z_][\w-]*(?:\.[\w*-]+)*)(?P<call>\s*\()?"""
                     r"""|(?P<op>&&|\|\||==|!=|<=|>=|!|[()<>,])|(?P<number>\d+(?:\.\d+)?)|(?P<space>\s+)""")
STATUS_FUNCTIONS = re.compile(r"\b(?:success|failure|always|cancelled)\s*\(")


def evaluate(text: Any, scope: dict[str, Any]) -> Any:
    """`${{ … }}` filled in; a text that is one whole expression gives its value (a list, say)."""
    if not isinstance(text, str):
        return text
    whole = EXPRESSION.fullmatch(text.strip())
    if whole:
        return expression(whole.group(1), scope)
    return EXPRESSION.sub(lambda m: _text(expression(m.group(1), scope)), text)


def condition(text: Any, scope: dict[str, Any]) -> bool:
    """An `if:` (with or without `${{ }}`), with GitHub's implicit `success() &&` when it names
    no status function."""
    if text is None:
        text = "success()"
    text = str(text).strip()
    whole = EXPRESSION.fullmatch(text)
    inner = whole.group(1) if whole else text
    if not STATUS_FUNCTIONS.search(inner):
        inner = f"success() && ({inner})"
    return _true(expression(inner, scope))


def expression(source: str, scope: dict[str, Any]) -> Any:
    """One GitHub expression, translated token by token into Python: context paths (`a.b-c.d`)
    are looked up in `scope` (missing: null), `&&`/`||`/`!` keep GitHub's meaning."""
    python, at = [], 0
    while at < len(source):
        token = _TOKENS.match(source, at)
        if token is None:
            raise ValueError(f"expression not understood at {source[at:]!r}: {source!r}")
        at = token.end()
        if token.group("string") is not None:
            python.append(repr(token.group("string")[1:-1].replace("''", "'")))
        elif token.group("name") is not None:
            name = token.group("name")
            if token.group("call"):
                python.append(f"_fn[{name!r}](")
            else:
                python.append({"true": "True", "false": "False", "null": "None"}.get(name, f"_ctx({name!r})"))
        elif token.group("op") is not None:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(token.group("op"), f" {token.group('op')} "))
        else:
            python.append(token.group(0))
    return eval("".join(python), {"_ctx": lambda path: _lookup(scope, path), "_fn": _functions(scope)})  # noqa: S307


def _lookup(scope: dict[str, Any], path: str) -> Any:
    value: Any = scope
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _functions(scope: dict[str, Any]) -> dict[str, Callable]:
    status = scope.get("_status", {"success": True, "failure": False})
    return {"fromJSON": json.loads, "toJSON": json.dumps, "always": lambda: True, "cancelled": lambda: False,
            "success": lambda: status["success"], "failure": lambda: status["failure"],
            "contains": lambda a, b: b in a, "startsWith": lambda a, b: str(a).lower().startswith(str(b).lower()),
            "endsWith": lambda a, b: str(a).lower().endswith(str(b).lower()),
            "format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda m: _text(a[int(m.group(1))]), f),
            "join": lambda a, sep=",": sep.join(_text(x) for x in a)}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _true(value: Any) -> bool:
    return value not in (False, "", 0, None)


# ── GitHub's side ──────────────────────────────────────────────────────────────────────────────

class FakeGitHub:
    """GitHub's side, kept in `folder` (one JSON file, artifacts as folders), shared by the runner
    and the fake `gh` it puts on PATH."""

    def __init__(self, folder: Path, repository: str):
        self.folder, self.repository = folder, repository
        self.file = folder / "github.json"
        if not self.file.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self._save({"next": 1, "runs": [], "artifacts": [], "comments": {}, "issues": [], "pulls": {},
                        "downloads": [], "tokens": {}})

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

    def add_token(self, token: str, permissions: dict[str, str]) -> None:
        """`token` (a job's github.token) may do what `permissions` grant, nothing more."""
        data = self._load()
        data["tokens"][token] = permissions
        self._save(data)

    def add_artifact(self, run: int, name: str, files: Path, expired: bool = False) -> None:
        data = self._load()
        if any(a["run"] == run and a["name"] == name for a in data["artifacts"]):
            raise RuntimeError(f"an artifact {name} exists in run {run} already (upload-artifact v4 refuses it)")
        if not files.is_dir():
            raise RuntimeError(f"upload-artifact: {files} does not exist")
        artifact = self._next(data)
        shutil.copytree(files, self.folder / "artifacts" / str(artifact))
        data["artifacts"].append({"id": artifact, "name": name, "run": run, "expired": expired})
        self._save(data)

    def plant(self, name: str, files: Path, workflow: str = "reconciler-plan.yml", event: str = "pull_request_target",
              branch: str = "main", conclusion: str = "success", expired: bool = False) -> int:
        """An artifact `name` in a finished run of the given workflow file, event, branch and
        conclusion (by default, as the planning caller makes one for a pull request)."""
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

    def comment(self, number: int, body: str, user: str = "reviewer") -> None:
        """Someone's comment on pull request (or issue) `number`."""
        data = self._load()
        data["comments"].setdefault(str(number), []).append({"id": self._next(data), "body": body, "user": {"login": user}})
        self._save(data)

    def open_issue(self, title: str, body: str, user: str = "reviewer", pull_request: bool = False) -> int:
        """Someone's open issue (or, as the issues listing shows them too, pull request)."""
        data = self._load()
        number = ISSUE_NUMBERS + len(data["issues"])
        data["issues"].append({"number": number, "title": title, "body": body, "state": "open", "state_reason": None,
                               "user": {"login": user}, **({"pull_request": {}} if pull_request else {})})
        self._save(data)
        return number

    def artifacts_of(self, run: int) -> list[tuple[str, Path]]:
        return [(a["name"], self.folder / "artifacts" / str(a["id"])) for a in self._load()["artifacts"]
                if a["run"] == run]

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self._load()["comments"].get(str(number), [])]

    def issues(self) -> list[dict]:
        """Every issue: number, title, body, state, user; with `comments`, the bodies of its comments."""
        data = self._load()
        return [{**issue, "comments": [c["body"] for c in data["comments"].get(str(issue["number"]), [])]}
                for issue in data["issues"]]

    def downloads(self) -> list[tuple[int, str]]:
        """Which (run, artifact name) `gh run download` handed out, in order."""
        return [(run, name) for run, name in self._load()["downloads"]]

    # what the fake `gh` answers

    def gh(self, args: list[str], token: str) -> int:
        granted = self._load()["tokens"].get(token)
        if granted is None:
            return _refuse("fake gh: HTTP 401: Bad credentials (GH_TOKEN is not a token of this run)")
        if args[:1] == ["api"]:
            return self._api(args[1:], granted)
        if args[:2] == ["run", "download"]:
            return self._download(args[2:], granted)
        return _refuse(f"fake gh: {args} is not a call the workflows make")

    def _api(self, args: list[str], granted: dict) -> int:
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
        return self._route(method, url.path.removeprefix(prefix), query, fields, paginate, granted)

    def _route(self, method: str, path: str, query: dict, fields: dict, paginate: bool, granted: dict) -> int:
        data = self._load()
        if method == "GET" and (m := re.fullmatch(r"commits/(\w+)/pulls", path)):
            return _allowed(granted, "pull-requests", "read") or _answer(data["pulls"].get(m.group(1), []))
        if method == "GET" and (m := re.fullmatch(r"actions/workflows/([\w.-]+)/runs", path)):
            runs = [r for r in data["runs"] if r["path"] == f".github/workflows/{m.group(1)}"
                    and r["event"] == query.get("event", r["event"]) and r["head_branch"] == query.get("branch", r["head_branch"])
                    and (query.get("status") is None or query["status"] in (r["status"], r["conclusion"]))]
            runs = sorted(runs, key=lambda r: r["created_at"], reverse=True)[:int(query.get("per_page", 30))]
            return _allowed(granted, "actions", "read") or _answer({"total_count": len(runs), "workflow_runs": runs})
        if method == "GET" and (m := re.fullmatch(r"actions/runs/(\d+)/artifacts", path)):
            run = next((r for r in data["runs"] if r["id"] == int(m.group(1))), None)
            if run is None:
                return _refuse(f"fake gh api: 404 for run {m.group(1)}")
            found = [{"id": a["id"], "name": a["name"], "expired": a["expired"],
                      "workflow_run": {"id": run["id"], "head_branch": run["head_branch"], "head_sha": run["head_sha"]}}
                     for a in data["artifacts"] if a["run"] == run["id"] and a["name"] == query.get("name", a["name"])]
            return _allowed(granted, "actions", "read") or _answer({"total_count": len(found), "artifacts": found})
        if path == "issues":
            return self._issues(data, method, query, fields, paginate, granted)
        if m := re.fullmatch(r"issues/(\d+)", path):
            return self._issue(data, int(m.group(1)), method, fields, granted)
        if m := re.fullmatch(r"issues/(\d+)/comments", path):
            scope = "issues" if any(i["number"] == int(m.group(1)) for i in data["issues"]) else "pull-requests"
            comments = data["comments"].setdefault(m.group(1), [])
            if method == "GET":
                return _allowed(granted, scope, "read") or _pages(comments, paginate)
            if method == "POST":
                if refused := _allowed(granted, scope, "write"):
                    return refused
                comments.append({"id": self._next(data), "body": fields["body"], "user": {"login": BOT}})
                self._save(data)
                return _answer(comments[-1])
        if method == "PATCH" and (m := re.fullmatch(r"issues/comments/(\d+)", path)):
            for number, comment in ((n, c) for n, cs in data["comments"].items() for c in cs if c["id"] == int(m.group(1))):
                scope = "issues" if any(i["number"] == int(number) for i in data["issues"]) else "pull-requests"
                if refused := _allowed(granted, scope, "write"):
                    return refused
                if comment["user"]["login"] != BOT:
                    return _refuse(f"fake gh api: 403: comment {comment['id']} is not this token's to edit")
                comment["body"] = fields["body"]
                self._save(data)
                return _answer(comment)
            return _refuse(f"fake gh api: 404 for comment {m.group(1)}")
        return _refuse(f"fake gh api: {method} {path} is not a call the workflows make")

    def _issues(self, data: dict, method: str, query: dict, fields: dict, paginate: bool, granted: dict) -> int:
        if method == "GET":
            state = query.get("state", "open")
            return _allowed(granted, "issues", "read") or _pages(
                [i for i in data["issues"] if state in ("all", i["state"])], paginate)
        if method == "POST":
            if refused := _allowed(granted, "issues", "write"):
                return refused
            _bounded(fields)
            issue = {"number": ISSUE_NUMBERS + len(data["issues"]), "title": fields["title"], "body": fields.get("body", ""),
                     "state": "open", "state_reason": None, "user": {"login": BOT}}
            data["issues"].append(issue)
            self._save(data)
            return _answer(issue)
        return _refuse(f"fake gh api: {method} issues is not a call the workflows make")

    def _issue(self, data: dict, number: int, method: str, fields: dict, granted: dict) -> int:
        issue = next((i for i in data["issues"] if i["number"] == number), None)
        if issue is None or method != "PATCH":
            return _refuse(f"fake gh api: {method} issues/{number}: 404 or not a call the workflows make")
        if refused := _allowed(granted, "issues", "write"):
            return refused
        if issue["user"]["login"] != BOT:
            return _refuse(f"fake gh api: issue {number} is someone else's: the workflows edit only their own")
        _bounded(fields)
        unknown = set(fields) - {"body", "title", "state", "state_reason"}
        if unknown or fields.get("state", "open") not in ("open", "closed"):
            return _refuse(f"fake gh api: 422 for fields {sorted(fields)}")
        issue.update(fields)
        self._save(data)
        return _answer(issue)

    def _download(self, args: list[str], granted: dict) -> int:
        run, options = int(args[0]), dict(zip(args[1::2], args[2::2], strict=False))
        if refused := _allowed(granted, "actions", "read"):
            return refused
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


def _allowed(granted: dict, scope: str, level: str) -> int:
    """0 when the token's permissions give `scope` at `level`; else GitHub's 403, refused."""
    if LEVELS[granted.get(scope, "none")] >= LEVELS[level]:
        return 0
    return _refuse(f"fake gh: HTTP 403: Resource not accessible by integration (needs {scope}: {level})")


def _bounded(fields: dict) -> None:
    if len(fields.get("body", "")) > 65536:
        raise SystemExit(_refuse("fake gh api: HTTP 422: body is too long (maximum is 65536 characters)"))


def _pages(items: list, paginate: bool) -> int:
    pages = [items[i:i + PAGE] for i in range(0, len(items), PAGE)] or [[]]
    print("".join(json.dumps(page) for page in (pages if paginate else pages[:1])))
    return 0


def _answer(value: Any) -> int:
    print(json.dumps(value))
    return 0


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


# ── the fake tools on PATH ─────────────────────────────────────────────────────────────────────

# Each runs this module with this interpreter; its own folder is the first entry of its sys.path,
# never the step's working directory.
FAKE_TOOL = """#!{python}
import os, sys
sys.path.insert(0, {root!r})
from tests.workflow_runner import {function}
sys.exit({function}(sys.argv[1:]))
"""


def fake_gh(args: list[str]) -> int:
    github = FakeGitHub(Path(os.environ["FAKE_GH_STATE"]), os.environ["FAKE_GH_REPO"])
    return github.gh(args, os.environ.get("GH_TOKEN", ""))


def fake_python(args: list[str]) -> int:
    """`python`: pip is never run for real (the package under test is installed already): an
    install is recorded with what it would install, each local path with its git commit and
    origin; anything else runs the real interpreter."""
    if "pip" not in args[:4]:
        os.execv(sys.executable, [sys.executable, *args])
    log = Path(os.environ["FAKE_INSTALL_LOG"])
    isolated, module, rest = args[:1] == ["-I"], args[1:3] == ["-m", "pip"], args[3:]
    if not (isolated and module and rest[:1] == ["install"]):
        return _refuse(f"fake python: {args}: pip runs only as `python -I -m pip install …` here")
    targets = [_target(arg) for arg in rest[1:] if not arg.startswith("-")]
    with log.open("a") as f:
        f.write(json.dumps({"args": args, "cwd": os.getcwd(), "targets": targets}) + "\n")
    return 0


def fake_pip(args: list[str]) -> int:
    return _refuse(f"fake pip: {args}: the workflows install with `python -I -m pip`, never a bare pip")


def _target(arg: str) -> dict:
    path = Path(arg)
    if not path.exists():
        return {"requirement": arg}
    git = ["git", "-C", str(path)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    origin = subprocess.run([*git, "config", "remote.origin.url"], capture_output=True, text=True).stdout.strip()
    return {"path": str(path.resolve()), "toplevel": top, "commit": commit, "origin": origin}


# ── the runner ─────────────────────────────────────────────────────────────────────────────────

class NotTriggered(Exception):
    """The workflow does not run for this event."""


class InvalidWorkflow(Exception):
    """GitHub would not start the run (a called workflow's inputs, secrets or permissions)."""


@dataclass
class Run:
    """One run of a workflow: what each job's steps printed, and what they left behind."""

    id: int = 0
    jobs: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)  # job → [(step, exit, output)]
    workspaces: dict[str, Path] = field(default_factory=dict)  # job → its workspace
    summaries: dict[str, str] = field(default_factory=dict)  # job → its summary
    approvals: list[tuple[str, str]] = field(default_factory=list)  # (job, environment) a reviewer was asked for
    conclusion: str = ""

    @property
    def summary(self) -> str:
        return "".join(self.summaries.values())

    def failed(self) -> list[tuple[str, str, str]]:
        return [(job, step, out) for job, results in self.jobs.items() for step, code, out in results if code]

    def output(self, job: str) -> str:
        return "".join(out for _, _, out in self.jobs[job])


Approve = Callable[[str, Run], bool]


class Runner:
    """Runs the workflows in `workflows` for events on `repo` (a local git repository, never a
    step's working directory), with `state` the folder GitHub's side and the workspaces live in.
    `repositories` maps other OWNER/REPO names (of called workflows, actions, checkouts) to local
    git repositories."""

    def __init__(self, workflows: Path, repo: Path, state: Path, env: dict[str, str],
                 repository: str = "team/manifests", repositories: dict[str, Path] | None = None):
        if shutil.which("jq") is None:
            raise RuntimeError("jq is not installed: the workflows use it, as GitHub's runners have it (apt-get install jq)")
        self.workflows, self.repo, self.state, self.env = workflows, repo, state, env
        self.repositories = {repository: repo, **(repositories or {})}
        self.github = FakeGitHub(state / "github", repository)
        self.install_log = state / "installs.jsonl"
        bin_dir = state / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for tool, function in (("gh", "fake_gh"), ("python", "fake_python"), ("python3", "fake_python"), ("pip", "fake_pip")):
            (bin_dir / tool).write_text(FAKE_TOOL.format(python=sys.executable, root=str(ROOT), function=function))
            (bin_dir / tool).chmod(0o755)
        self.path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
        self._tokens = 0

    def installs(self) -> list[dict]:
        """What `python -I -m pip install` was asked for, in order (see `fake_python`)."""
        if not self.install_log.exists():
            return []
        return [json.loads(line) for line in self.install_log.read_text().splitlines()]

    def run(self, name: str, event: dict[str, Any], approve: Approve | None = None) -> Run:
        """Run workflow file `name` for `event` (see tests/test_workflow_runs.py's `event`);
        `approve(job, run)` answers for a reviewer when a job's environment requires one."""
        workflow = _load((self.workflows / name).read_text())
        github = event["github"]
        _check_trigger(workflow, github)
        inputs = _dispatch_inputs(workflow, github, event.get("inputs", {}))
        run_id = self.github.start_run(name, github["event_name"], github["ref_name"], github["sha"])
        outcome = Run(id=run_id)
        identity = {"workflow_ref": f"{github['repository']}/.github/workflows/{name}@refs/heads/{github['ref_name']}",
                    "workflow_sha": github["sha"], "workflow_repository": github["repository"],
                    "workflow_file_path": f".github/workflows/{name}"}
        scope = {**event, "inputs": inputs, "job": identity,
                 "github": {**github, "run_id": str(run_id), "workflow_ref": identity["workflow_ref"],
                            "workflow_sha": github["sha"]}}
        try:
            results = self._jobs(workflow, scope, outcome, "", approve, caller=None)
        except Exception:
            self.github.finish_run(run_id, "failure")
            raise
        failed = any(r["result"] == "failure" for r in results.values())
        outcome.conclusion = "failure" if failed else "success"
        self.github.finish_run(run_id, outcome.conclusion)
        return outcome

    def _jobs(self, workflow: dict, scope: dict, outcome: Run, prefix: str, approve: Approve | None,
              caller: dict | None) -> dict[str, dict]:
        """The jobs of `workflow`, in the order `needs` runs them; `caller` the calling job's
        effective permissions when `workflow` is a called one."""
        results: dict[str, dict] = {}
        for job_name, job in workflow["jobs"].items():
            missing = [n for n in _list(job.get("needs")) if n not in results]
            if missing:
                raise InvalidWorkflow(f"job {job_name} needs {missing}, listed after it (this runner runs jobs in file order)")
            needs = {n: results[n] for n in _list(job.get("needs"))}
            status = {"success": all(n["result"] == "success" for n in needs.values()),
                      "failure": any(n["result"] == "failure" for n in needs.values())}
            job_scope = {**scope, "needs": needs, "_status": status}
            if not condition(job.get("if"), job_scope):
                results[job_name] = {"result": "skipped", "outputs": {}}
                continue
            permissions = _permissions(job, workflow, caller, f"{prefix}{job_name}")
            if "uses" in job:
                results[job_name] = self._call(f"{prefix}{job_name}", job, job_scope, outcome, approve, permissions)
            else:
                results[job_name] = self._job(f"{prefix}{job_name}", job, workflow, job_scope, outcome, approve,
                                              permissions)
        return results

    def _call(self, name: str, job: dict, scope: dict, outcome: Run, approve: Approve | None,
              permissions: dict[str, str]) -> dict:
        """A job that calls a reusable workflow: that file as it is at the ref, in a scope of its own."""
        uses = job["uses"]
        found = re.fullmatch(r"([\w.-]+/[\w.-]+)/(\.github/workflows/[\w.-]+\.ya?ml)@([\w./-]+)", uses)
        if not found:
            raise InvalidWorkflow(f"{name}: uses {uses!r} is not OWNER/REPO/.github/workflows/FILE@REF")
        repository, path, ref = found.groups()
        sha = self._commit(repository, ref)
        called = _load(_git(self._repository(repository), "show", f"{sha}:{path}"))
        if "workflow_call" not in _triggers(called):
            raise InvalidWorkflow(f"{name}: {path} is not a reusable workflow (no on.workflow_call)")
        declared = _triggers(called)["workflow_call"] or {}
        inputs = _typed_inputs(name, declared.get("inputs") or {}, {k: evaluate(v, scope) for k, v in (job.get("with") or {}).items()})
        secrets, passed = self._passed_secrets(name, job, declared.get("secrets") or {}, scope)
        for job_name, called_job in called["jobs"].items():  # checked before any job starts, as GitHub does
            _permissions(called_job, called, permissions, f"{name}/{job_name}")
        identity = {"workflow_ref": f"{repository}/{path}@{ref}", "workflow_sha": sha,
                    "workflow_repository": repository, "workflow_file_path": path}
        called_scope = {"github": scope["github"], "vars": scope.get("vars", {}), "environments": scope.get("environments", {}),
                        "inputs": inputs, "secrets": secrets, "_passed": passed, "job": identity}
        results = self._jobs(called, called_scope, outcome, f"{name}/", approve, caller=permissions)
        failed = any(r["result"] == "failure" for r in results.values())
        return {"result": "failure" if failed else "success", "outputs": {}}

    def _passed_secrets(self, name: str, job: dict, declared: dict, scope: dict) -> tuple[dict, set[str] | None]:
        """The secrets a called workflow sees (values from the caller's scope, where an
        environment-only secret is empty) and the names passed: only those may an environment of
        a called job fill in. `inherit`: every secret, every name."""
        given = job.get("secrets")
        if given == "inherit":
            return dict(scope.get("secrets", {})), None
        given = given or {}
        undeclared = set(given) - set(declared)
        if undeclared:
            raise InvalidWorkflow(f"{name}: secrets {sorted(undeclared)} are not defined in the referenced workflow")
        missing = [s for s, spec in declared.items() if (spec or {}).get("required") and s not in given]
        if missing:
            raise InvalidWorkflow(f"{name}: secrets {missing} are required by the referenced workflow but not passed")
        return {k: _text(evaluate(v, scope)) for k, v in given.items()}, set(given)

    def _job(self, name: str, job: dict, workflow: dict, scope: dict, outcome: Run, approve: Approve | None,
             permissions: dict[str, str]) -> dict:
        result, outputs = "success", {}
        matrix = job.get("strategy", {}).get("matrix", {})
        if len(matrix) > 1:
            raise InvalidWorkflow(f"{name}: this runner plays one-dimensional matrices only")
        key, values = next(iter(matrix.items()), ("", [None]))
        values = evaluate(values, scope)
        if not values:
            raise InvalidWorkflow(f"{name}: the matrix vector {key!r} does not contain any values")
        for value in values:
            label = f"{name}[{(value or {}).get('name') or 'default'}]" if key else name
            workspace = self.state / "work" / str(outcome.id) / label.replace("/", "~")
            workspace.mkdir(parents=True)
            outcome.workspaces[label], outcome.jobs[label] = workspace, []
            summary = workspace.parent / f"{workspace.name}.summary.md"
            summary.write_text("")
            self._tokens += 1
            token = f"ghs_fake{self._tokens:04d}"
            self.github.add_token(token, permissions)
            job_scope = {**scope, "matrix": {key: value} if key else {}, "steps": {},
                         "_status": {"success": True, "failure": False},  # of its steps, from here on
                         "github": {**scope["github"], "workspace": str(workspace), "token": token}}
            refused = self._environment(label, job, job_scope, outcome, approve)
            if refused:
                outcome.jobs[label].append(("environment", 1, refused))
                result = "failure"
                continue
            env = {k: _text(evaluate(v, job_scope)) for k, v in (workflow.get("env") or {}).items()}
            env.update({k: _text(evaluate(v, {**job_scope, "env": env})) for k, v in (job.get("env") or {}).items()})
            if not self._steps(label, job["steps"], job_scope, env, summary, workspace, outcome):
                result = "failure"
            outcome.summaries[label] = summary.read_text()
            outputs.update({k: _text(evaluate(v, job_scope)) for k, v in (job.get("outputs") or {}).items()})
        return {"result": result, "outputs": outputs}

    def _steps(self, label: str, steps: list[dict], scope: dict, env: dict, summary: Path, workspace: Path,
               outcome: Run, action: Path | None = None) -> bool:
        """Run `steps` (a job's, or a composite action's at `action`) in order; False at the first failure."""
        for index, step in enumerate(steps):
            step_scope = {**scope, "env": env}
            if not condition(step.get("if"), step_scope):
                continue
            code, out, step_outputs = self._step(label, step, step_scope, env, summary, workspace, outcome, action)
            outcome.jobs[label].append((step.get("name", step.get("uses", f"step {index}")), code, out))
            scope["steps"][step.get("id", f"s{index}")] = {"outputs": step_outputs}
            if code:
                return False
        return True

    def _environment(self, label: str, job: dict, scope: dict, outcome: Run, approve: Approve | None) -> str:
        """The job's secrets: its workflow's, and its environment's when the branch may use it
        (deployment branch rules) — in a called workflow, only under names the caller passed;
        a refusal message otherwise. A required reviewer is asked (`approve`) first."""
        name = evaluate(job.get("environment"), scope)
        if isinstance(name, dict):
            name = evaluate(name.get("name"), scope)
        environment = scope.get("environments", {}).get(name, {}) if name else {}
        branch = scope["github"]["ref_name"]
        if environment.get("branches") is not None and branch not in environment["branches"]:
            return f"Branch {branch!r} is not allowed to deploy to {name} due to environment protection rules."
        if environment.get("reviewers"):
            outcome.approvals.append((label, name))
            if approve is None:
                raise RuntimeError(f"{label} waits for a reviewer of {name}: pass approve= to Runner.run")
            if not approve(label, outcome):
                return f"A reviewer of {name} rejected this job."
        passed = scope.get("_passed")  # None: every name (a job of the workflow run itself, or `inherit`)
        from_environment = {k: v for k, v in environment.get("secrets", {}).items() if passed is None or k in passed}
        scope["secrets"] = {**scope.get("secrets", {}), **from_environment}
        return ""

    def _step(self, label: str, step: dict, scope: dict, env: dict, summary: Path, workspace: Path, outcome: Run,
              action: Path | None) -> tuple[int, str, dict]:
        uses = step.get("uses", "")
        inputs = {k: _text(evaluate(v, scope)) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/checkout@"):
            return self._checkout(workspace, inputs, scope)
        if uses.startswith("actions/upload-artifact@"):
            self.github.add_artifact(outcome.id, inputs["name"], workspace / inputs["path"])
            return 0, "", {}
        if uses.startswith("actions/download-artifact@"):
            return self._download_artifacts(outcome.id, inputs, workspace)
        if uses.split("@")[0] in NO_OP_ACTIONS:
            return 0, "", {}
        if uses.startswith("./"):
            return self._composite(label, workspace / uses, inputs, scope, env, summary, workspace, outcome)
        if uses:
            found = re.fullmatch(r"([\w.-]+/[\w.-]+)/([\w./-]+)@([\w./-]+)", uses)
            if not found or found.group(1) not in self.repositories:
                return 1, f"runner: the action {uses} is not one this runner plays", {}
            repository, path, ref = found.groups()
            folder = self.state / "_actions" / repository / ref
            if not folder.exists():
                code, out, _ = self._clone(repository, self._commit(repository, ref), folder)
                if code:
                    return code, out, {}
            return self._composite(label, folder / path, inputs, scope, env, summary, workspace, outcome)
        if action is not None and "shell" not in step:
            return 1, "runner: a composite action's run step must name its shell", {}
        return self._run(step, scope, env, summary, workspace, action)

    def _run(self, step: dict, scope: dict, env: dict, summary: Path, workspace: Path,
             action: Path | None) -> tuple[int, str, dict]:
        output_file = workspace.parent / f"{workspace.name}.output"
        output_file.write_text("")
        github = scope["github"]
        step_env = {**self.env, **env, **{k: _text(evaluate(v, {**scope, "env": env}))
                                          for k, v in (step.get("env") or {}).items()},
                    "PATH": self.path, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
                    "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary),
                    "GITHUB_REPOSITORY": github["repository"], "GITHUB_SHA": github["sha"],
                    "GITHUB_EVENT_NAME": github["event_name"], "GITHUB_REF_NAME": github["ref_name"],
                    "GITHUB_SERVER_URL": github["server_url"], "GITHUB_RUN_ID": github["run_id"],
                    "RUNNER_TEMP": str(workspace.parent / f"{workspace.name}.tmp"),
                    "FAKE_GH_STATE": str(self.github.folder), "FAKE_GH_REPO": self.github.repository,
                    "FAKE_INSTALL_LOG": str(self.install_log)}
        if action is not None:
            step_env["GITHUB_ACTION_PATH"] = str(action)
        Path(step_env["RUNNER_TEMP"]).mkdir(exist_ok=True)
        script = evaluate(step["run"], {**scope, "env": step_env})
        cwd = workspace / step.get("working-directory", "")
        if not cwd.is_dir():
            return 1, f"working-directory {cwd} does not exist", {}
        shell = step.get("shell", "bash")
        if shell != "bash":
            return 1, f"runner: shell {shell} is not played", {}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                              env=step_env, capture_output=True, text=True, timeout=600)
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        return done.returncode, done.stdout + done.stderr, outputs

    def _composite(self, label: str, folder: Path, inputs: dict, scope: dict, env: dict, summary: Path,
                   workspace: Path, outcome: Run) -> tuple[int, str, dict]:
        """A composite action in `folder`: its steps, with its inputs and github.action_path."""
        definition = next((folder / n for n in ("action.yml", "action.yaml") if (folder / n).is_file()), None)
        if definition is None:
            return 1, f"runner: no action.yml in {folder}", {}
        action = _load(definition.read_text())
        if action.get("runs", {}).get("using") != "composite":
            return 1, f"runner: {folder} is not a composite action", {}
        declared = action.get("inputs") or {}
        if set(inputs) - set(declared):
            return 1, f"runner: unexpected inputs {sorted(set(inputs) - set(declared))} for {folder}", {}
        values = {k: inputs.get(k, _text((spec or {}).get("default", ""))) for k, spec in declared.items()}
        inner_scope = {**scope, "inputs": values, "steps": {},
                       "github": {**scope["github"], "action_path": str(folder)}}
        before = len(outcome.jobs[label])
        ok = self._steps(label, action["runs"]["steps"], inner_scope, {**env}, summary, workspace, outcome, folder)
        inner = outcome.jobs[label][before:]
        del outcome.jobs[label][before:]
        return (0 if ok else 1), "".join(out for _, _, out in inner), {}

    def _checkout(self, workspace: Path, inputs: dict, scope: dict) -> tuple[int, str, dict]:
        """actions/checkout: a registered repository at `ref` in the workspace or a folder in it."""
        repository = inputs.get("repository") or scope["github"]["repository"]
        target = (workspace / inputs.get("path", "")).resolve()
        if target != workspace.resolve() and workspace.resolve() not in target.parents:
            return 1, f"checkout: {target} is not under the workspace", {}
        if repository not in self.repositories:
            return 1, f"checkout: repository {repository!r} not found", {}
        ref = inputs.get("ref") or (scope["github"]["sha"] if repository == scope["github"]["repository"] else "HEAD")
        try:
            commit = self._commit(repository, ref)
        except InvalidWorkflow as error:
            return 1, f"checkout: {error}", {}
        return self._clone(repository, commit, target)

    def _clone(self, repository: str, commit: str, target: Path) -> tuple[int, str, dict]:
        if target.exists():  # the action empties its folder first
            shutil.rmtree(target)
        done = subprocess.run(["git", "clone", "-q", "--no-checkout", str(self.repositories[repository]), str(target)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            done = subprocess.run(["git", "-C", str(target), "checkout", "-q", "--detach", commit],
                                  capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr, {}

    def _download_artifacts(self, run: int, inputs: dict, workspace: Path) -> tuple[int, str, dict]:
        """This run's artifacts: one by `name` into `path`, or each matching `pattern` into a folder of its name."""
        found = 0
        for name, folder in self.github.artifacts_of(run):
            if "name" in inputs and name == inputs["name"]:
                shutil.copytree(folder, workspace / inputs.get("path", ""), dirs_exist_ok=True)
                found += 1
            elif "pattern" in inputs and fnmatch.fnmatchcase(name, inputs["pattern"]):
                shutil.copytree(folder, workspace / inputs.get("path", "") / name, dirs_exist_ok=True)
                found += 1
        if "name" in inputs and not found:
            return 1, f"download-artifact: Artifact not found for name: {inputs['name']}", {}
        return 0, "", {}

    def _repository(self, repository: str) -> Path:
        if repository not in self.repositories:
            raise InvalidWorkflow(f"repository {repository} is not known here")
        return self.repositories[repository]

    def _commit(self, repository: str, ref: str) -> str:
        done = subprocess.run(["git", "-C", str(self._repository(repository)), "rev-parse", "--verify", "-q",
                               f"{ref}^{{commit}}"], capture_output=True, text=True)
        if done.returncode:
            raise InvalidWorkflow(f"{repository} has no commit, branch or tag {ref!r}")
        return done.stdout.strip()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _load(text: str) -> dict:
    from ruamel.yaml import YAML  # here, not at the top: the fake tools import this module, and never load YAML

    return YAML(typ="safe").load(text)


def _check_trigger(workflow: dict, github: dict) -> None:
    """GitHub starts a workflow only for an event its `on:` names, on a branch its filter allows
    (for pull_request_target, the base branch)."""
    triggers = _triggers(workflow)
    if github["event_name"] not in triggers:
        raise NotTriggered(f"{github['event_name']} is not among {list(triggers)}")
    settings = triggers[github["event_name"]]
    branches = settings.get("branches") if isinstance(settings, dict) else None
    if branches is not None and not any(fnmatch.fnmatchcase(github["ref_name"], b) for b in branches):
        raise NotTriggered(f"branch {github['ref_name']} is not among {branches}")


def _triggers(workflow: dict) -> dict:
    """`on:` as a mapping of event → settings (it may be written as one name or a list of them)."""
    triggers = workflow["on"]
    if isinstance(triggers, str):
        return {triggers: None}
    return {t: None for t in triggers} if isinstance(triggers, list) else triggers


def _dispatch_inputs(workflow: dict, github: dict, given: dict) -> dict:
    """A workflow_dispatch's inputs (declared, defaulted, typed); none for other events."""
    if github["event_name"] != "workflow_dispatch":
        if given:
            raise InvalidWorkflow(f"inputs {given} given for a {github['event_name']} event")
        return {}
    declared = (_triggers(workflow)["workflow_dispatch"] or {}).get("inputs") or {}
    return _typed_inputs("workflow_dispatch", declared, given)


def _typed_inputs(name: str, declared: dict, given: dict) -> dict:
    unknown = set(given) - set(declared)
    if unknown:
        raise InvalidWorkflow(f"{name}: inputs {sorted(unknown)} are not defined")
    values = {}
    for key, spec in declared.items():
        spec = spec or {}
        if key not in given and spec.get("required") and "default" not in spec:
            raise InvalidWorkflow(f"{name}: input {key} is required")
        value = given.get(key, spec.get("default", False if spec.get("type") == "boolean" else ""))
        kind = {"boolean": bool, "number": (int, float), "string": str}.get(spec.get("type", "string"), str)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InvalidWorkflow(f"{name}: input {key} must be a {spec.get('type', 'string')}, not {value!r}")
        values[key] = value
    return values


def _permissions(job: dict, workflow: dict, caller: dict[str, str] | None, name: str) -> dict[str, str]:
    """A job's token permissions: the job's, else its workflow's, else (called) its caller's, else
    GitHub's restricted default; a called job may not exceed what its caller grants."""
    declared = job.get("permissions", workflow.get("permissions"))
    if declared is None:
        effective = dict(caller) if caller is not None else dict(RESTRICTED)
    elif declared in ("read-all", "write-all"):
        effective = {scope: declared.split("-")[0] for scope in SCOPES}
    else:
        effective = {scope: level for scope, level in (declared or {}).items() if level != "none"}
    if caller is not None:
        for scope, level in effective.items():
            if LEVELS[level] > LEVELS[caller.get(scope, "none")]:
                raise InvalidWorkflow(f"the nested job {name} is requesting '{scope}: {level}', but is only allowed "
                                      f"'{scope}: {caller.get(scope, 'none')}'")
    return effective


def _list(value: Any) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)
