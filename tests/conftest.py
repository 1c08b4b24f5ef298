"""Shared fixtures: paths of the project and a way to run the CLI in-process."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "manifests"
# The load cache of manifests stays out of the home folder; children (CLI, sandbox) inherit it.
if "RECONCILER_CACHE_DIR" not in os.environ:
    os.environ["RECONCILER_CACHE_DIR"] = tempfile.mkdtemp(prefix="reconciler-cache-")
    atexit.register(shutil.rmtree, os.environ["RECONCILER_CACHE_DIR"], ignore_errors=True)


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


class SandboxProcess:
    """A `reconciler sandbox serve` subprocess on free ports, and the settings from its env file."""

    def __init__(self, tmp: Path, *args: str):
        import subprocess
        import sys
        import time

        self.env_file = tmp / "sandbox.env"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "serve", "--env-file", str(self.env_file), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while not self.env_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"sandbox did not start: {self.process.communicate()}")
            time.sleep(0.05)
        self.env = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)

    def stop(self) -> int:
        import signal

        self.process.send_signal(signal.SIGTERM)
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
    process.stop()


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
        process.stop()


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
