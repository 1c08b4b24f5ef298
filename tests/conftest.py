"""Shared fixtures: paths of the project, a way to run the CLI in-process, sandboxes; and the order
in which `make test`'s workers take the tests."""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from reconciler.cli import OPENBLAS_THREADS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "manifests"
# As the console script runs (reconciler.cli.OPENBLAS_THREADS): the workers, and the sandboxes forked
# from them, import numpy too. Set before any test module imports it.
os.environ.setdefault(*OPENBLAS_THREADS)
# The load cache of manifests stays out of the home folder; children (CLI, sandbox) inherit it.
if "RECONCILER_CACHE_DIR" not in os.environ:
    os.environ["RECONCILER_CACHE_DIR"] = tempfile.mkdtemp(prefix="reconciler-cache-")
    atexit.register(shutil.rmtree, os.environ["RECONCILER_CACHE_DIR"], ignore_errors=True)


# -- The order of `make test`'s tests ----------------------------------------------------------
# pytest-xdist's worksteal hands each of N workers an equal count of tests, in collection order,
# and lets a worker that runs dry take the second half of the longest queue. In file order the
# long files (workflow runs, state races, pre-commit, the demo …) may share one worker or start
# last, and the run waits for them. So the files are dealt out by the time their tests took before
# (pytest's cache, written after every run): longest first, each to the share with the least time
# so far, every share holding as many tests as xdist gives it and running its longest files first,
# so what is left to steal at the end is quick. A file is split only to fill a share's count, and
# its tests keep their order. A fresh clone (CI) has no cache: it deals by tests/durations.json, the
# figures of an earlier run kept in the repository (`make durations`), which the cache's overrule.
DURATIONS = "reconciler/durations"
KEPT_DURATIONS = Path(__file__).with_name("durations.json")
_took: dict[str, float] = defaultdict(float)


def _known_durations(config) -> dict[str, float]:
    kept = json.loads(KEPT_DURATIONS.read_text()) if KEPT_DURATIONS.exists() else {}
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    return {**kept, **(cache.get(DURATIONS, {}) if cache is not None else {})}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist, in the controller: every worker deals from the same figures, read once."""
    node.workerinput[DURATIONS] = _known_durations(node.config)


def pytest_collection_modifyitems(config, items):
    worker = getattr(config, "workerinput", None)
    if worker is not None and worker.get(DURATIONS) and worker["workercount"] > 1:
        items[:] = dealt(items, worker["workercount"], worker[DURATIONS])


def dealt(items: list, workers: int, known: dict[str, float]) -> list:
    """`items` in `workers` consecutive shares of xdist's sizes, balanced by `known` seconds."""
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    usual = statistics.median(known.values())  # a test not timed yet

    def cost(group: list) -> float:
        return sum(known.get(item.nodeid, usual) for item in group)

    room, left = [], len(items)
    for share in range(workers):  # xdist sends each worker in turn len(pending) // workers left
        room.append(left // (workers - share))
        left -= room[-1]
    shares: list[list[list]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for group in sorted(files.values(), key=cost, reverse=True):
        while group:
            fitting = [s for s in range(workers) if room[s] >= len(group)]
            share = min(fitting, key=load.__getitem__) if fitting else max(range(workers), key=room.__getitem__)
            piece, group = group[:room[share]], group[room[share]:]
            shares[share].append(piece)
            room[share] -= len(piece)
            load[share] += cost(piece)
    return [item for share in shares for piece in sorted(share, key=cost, reverse=True) for item in piece]


def pytest_runtest_logreport(report):
    _took[report.nodeid] += report.duration  # setup, call and teardown


def pytest_sessionfinish(session):
    """In the controller (or a run without workers): keep this run's figures for the next."""
    cache = getattr(session.config, "cache", None)
    if cache is not None and _took and not hasattr(session.config, "workerinput"):
        cache.set(DURATIONS, {**_known_durations(session.config), **{k: round(v, 3) for k, v in _took.items()}})


@pytest.fixture(autouse=True)
def _inside_tmp_path(tmp_path, monkeypatch):
    """Each test runs in its own folder, as a user runs the tool in a repository: manifests are
    read only from inside the repository (the git top-level, else the current directory). And
    with no secret value known from an earlier test, as a run starts."""
    from reconciler import redaction

    monkeypatch.chdir(tmp_path)
    redaction.forget()
    for name in ("GITHUB_RUN_ID", "GITHUB_ACTIONS"):  # when the suite itself runs in CI: outputs as anywhere else
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_cli(capsys):
    """Run `reconciler ARGS…` in-process; return (exit code, stdout, stderr)."""
    from reconciler.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run


# Sandboxes (and the processes of the race tests) are forked from one server process per test worker
# that has imported what they need once: a fresh interpreter spends about a second of CPU importing
# moto, boto3, flask and the reconciler before a sandbox answers, and the suite starts some fifty.
# Set here, before any test starts that server; the race tests rely on it too.
FORKSERVER_PRELOAD = ["tests.conftest", "tests.state_helpers", "reconciler.cli", "reconciler.sandbox.server",
                      "reconciler.sandbox.app", "moto.moto_server.werkzeug_app", "reconciler.state.lease",
                      "reconciler.state.statefile", "reconciler.state.objects", "boto3", "botocore.exceptions"]
multiprocessing.set_forkserver_preload(FORKSERVER_PRELOAD)
_IN_FORKSERVER = "RECONCILER_TESTS_FORKSERVER"  # set while the server starts: it preloads this module too
_forkserver_lock = threading.Lock()
if os.environ.get(_IN_FORKSERVER):  # in the server: boto3's S3 model read once, not by every fork
    import boto3

    boto3.client("s3", region_name="us-east-1")


def forked():
    """multiprocessing's forkserver context, its server (one per worker) started with FORKSERVER_PRELOAD."""
    from multiprocessing import forkserver

    with _forkserver_lock:
        os.environ[_IN_FORKSERVER] = "1"
        try:
            forkserver.ensure_running()
        finally:
            os.environ.pop(_IN_FORKSERVER, None)
    return multiprocessing.get_context("forkserver")


def _serve_sandbox(args: list[str], environ: dict[str, str], cwd: str, log: str) -> None:
    """In the forked process: `reconciler sandbox serve ARGS…` as the console script runs it, in the
    environment and folder of the test that started it (as a subprocess would be), output to `log`."""
    import signal
    import sys

    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
    sys.argv = ["reconciler", "sandbox", "serve", *args]
    from reconciler.cli import console

    console()


class _Forked:
    """What the tests use of a Popen (poll, send_signal, wait, kill), for a forked process."""

    def __init__(self, process):
        self._process, self.pid = process, process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("reconciler sandbox serve", timeout)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()
        self._process.join(5)


_stopping: list[_Forked] = []  # sandboxes told to stop, not waited for


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    for process in _stopping:
        if process.poll() is None:
            process.kill()


class SandboxProcess:
    """A `reconciler sandbox serve` process on free ports, and the settings from its env file."""

    def __init__(self, tmp: Path, *args: str):
        import time

        tmp.mkdir(parents=True, exist_ok=True)
        self.env_file, self.log = tmp / "sandbox.env", tmp / "sandbox.log"
        process = forked().Process(
            target=_serve_sandbox, args=(["--env-file", str(self.env_file), *args], dict(os.environ), os.getcwd(),
                                         str(self.log)),
            daemon=True)  # stopped, not waited for, if a test leaves it running when its worker ends
        process.start()
        self.process = _Forked(process)
        deadline = time.monotonic() + 30
        while not self.env_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"sandbox did not start: {self.log.read_text() if self.log.exists() else ''}")
            time.sleep(0.02)
        self.env = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)

    def stop(self, wait: bool = True) -> int | None:
        """SIGTERM; with `wait`, its exit code once it has stopped. Without, it stops while the next
        test runs (its servers take a second to notice) and is killed at the end of the session if
        it has not: for a sandbox whose end no test looks at."""
        import signal

        self.process.send_signal(signal.SIGTERM)
        if not wait:
            _stopping.append(self.process)
            return None
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def token(self) -> str:
        import requests

        response = requests.post(self.env["SH_TOKEN_URL"], data={
            "grant_type": "client_credentials", "client_id": self.env["SH_CLIENT_ID"],
            "client_secret": self.env["SH_CLIENT_SECRET"]}, timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]

    def http(self):
        """A requests session authenticated against the sandbox, with URLs relative to its base."""
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token()}"
        base = self.env["SH_BASE_URL"]
        original = session.request
        session.request = lambda method, url, **kw: original(method, base + url if url.startswith("/") else url, timeout=30, **kw)
        return session

    def advance(self, seconds: float) -> float:
        """Step a `--manual-clock` sandbox: its time moves on by `seconds` and, before this returns,
        every job as far as that takes it. Returns the new sandbox time (epoch seconds)."""
        import requests

        response = requests.post(self.env["SH_BASE_URL"] + "/sandbox/clock", json={"advance": seconds}, timeout=60)
        response.raise_for_status()
        return response.json()["now"]

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL_S3"], region_name=self.env["AWS_DEFAULT_REGION"],
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """One fast sandbox shared by the integration tests."""
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox"), "--speed", "10")
    yield process
    process.stop(wait=False)


@pytest.fixture
def workspace(sandbox, tmp_path, monkeypatch):
    """The examples in a fresh folder, a fresh lockfile key, the sandbox's settings in the environment."""
    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECONCILER_STATE", f"s3://reconciler-state/{tmp_path.name}/state.json")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def own_sandbox(tmp_path, monkeypatch):
    """`own_sandbox(*options)`: a sandbox of this test's own (faults, timing), with the environment
    pointed at it; stopped at the end."""
    started: list[SandboxProcess] = []

    def start(*options: str) -> SandboxProcess:
        process = SandboxProcess(tmp_path / f"sandbox-{len(started)}", *options)
        started.append(process)
        for key, value in process.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("NO_COLOR", "1")
        return process

    yield start
    for process in started:
        process.stop(wait=False)


def example_job(folder: Path, policy: str = "") -> Path:
    """The corsica-max-ndvi example (66 tiles) as folder/manifests/job.yaml, its evalscripts beside
    it, with `policy` (YAML lines under `policy:`) instead of its budget."""
    (folder / "manifests").mkdir(exist_ok=True)
    copy_evalscripts(folder / "manifests")
    path = folder / "manifests" / "job.yaml"
    block = f"  policy:\n{policy}" if policy else ""
    path.write_text((EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace("  policy:\n    maxCostPU: 5000\n", block))
    return path


def copy_evalscripts(folder: Path) -> None:
    """The examples' evalscripts beside manifests written in `folder` (files are read only from
    inside the repository, so a test's manifests cannot name the project's own copies)."""
    shutil.copytree(EXAMPLES / "evalscripts", folder / "evalscripts", dirs_exist_ok=True)


def rename_examples(folder, suffix: str) -> None:
    """Example names must be unique in the shared sandbox: markers would pair across tests otherwise."""
    for path in (folder / "manifests").glob("*.yaml"):
        text = path.read_text()
        name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:"))
        path.write_text(text.replace(f"name: {name}", f"name: {name}-{suffix}"))
