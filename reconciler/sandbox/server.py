"""Assembles the sandbox: the S3 server, the Batch API server, the worker, the env file.

`Sandbox` is a context manager (tests, demo) and `serve()` runs it until SIGINT/SIGTERM
(`reconciler sandbox serve`). With `manual_clock` no worker thread runs: sandbox time and jobs
move only through `POST /sandbox/clock` (see `clock`).
"""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, make_server

from reconciler.atomic import atomic_write
from reconciler.sandbox.auth import TokenIssuer
from reconciler.sandbox.clock import ManualClock, advance
from reconciler.sandbox.delivery import buckets_of
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.s3 import SHUTDOWN_POLL, S3Server
from reconciler.sandbox.seed import seed
from reconciler.sandbox.store import SandboxState
from reconciler.sandbox.worker import Timing, Worker

if TYPE_CHECKING:
    from reconciler.sandbox.app import Context

STATE_BUCKET = "reconciler-state"
STATE_KEY = "reconciler.json"
REGION = "us-east-1"
SENTINELHUB_PROFILE = "reconciler-sandbox"


@dataclass
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 0
    s3_port: int = 0
    client_id: str | None = None  # generated (and kept in --data-dir) when not given
    client_secret: str | None = field(default=None, repr=False)
    token_ttl: int = 3600
    timing: Timing = field(default_factory=Timing)
    faults: Faults = field(default_factory=Faults)
    s3_write_latency: float = 0.0
    s3_ignore_conditions: bool = False  # S3 accepts If-Match/If-None-Match writes without checking them
    data_dir: Path | None = None
    manual_clock: bool = False  # sandbox time moves only through POST /sandbox/clock
    seed_jobs: int = 0  # ready jobs made at start, their manifests written to `seed_dir` (sandbox.seed)
    seed_dir: Path | None = None


class Sandbox:
    def __init__(self, options: SandboxOptions | None = None):
        self.options = options or SandboxOptions()
        self.client_id, self.client_secret = _credentials(self.options)
        self.state = SandboxState(self.options.data_dir)
        self._s3_server = S3Server(self.options.host, self.options.s3_port, self.options.s3_write_latency,
                                   ignore_conditions=self.options.s3_ignore_conditions)
        self._api_server: BaseWSGIServer | None = None
        self._api_thread: threading.Thread | None = None
        self._worker: Worker | None = None
        self._context: Context | None = None  # the routes' context, once started
        self.s3: Any = None  # boto3's S3 client once started (boto3 ships no types)

    @property
    def base_url(self) -> str:
        assert self._api_server is not None, "the sandbox is not started"
        host, port = self._api_server.server_address[:2]
        assert isinstance(host, str)  # an IP address: bytes only name a Unix socket
        return f"http://{host}:{port}"

    @property
    def s3_url(self) -> str:
        return self._s3_server.url

    def start(self) -> Sandbox:
        import boto3

        from reconciler.sandbox.app import Context, create_app

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._s3_server.start()
        self.s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name=REGION,
                               aws_access_key_id="sandbox", aws_secret_access_key="sandbox-secret")
        self.ensure_bucket(STATE_BUCKET)
        o = self.options
        if o.seed_jobs:
            assert o.seed_dir is not None, "seeded jobs need a folder for their manifests"
            seed(self.state, o.seed_jobs, o.seed_dir, time.time(), o.faults.seed)
        kept = {bucket for job in self.state.jobs() for bucket in buckets_of(job.request)}
        for bucket in sorted(kept):  # S3 lives in memory: give kept jobs their buckets back
            self.ensure_bucket(bucket)
        issuer = TokenIssuer(self.client_id, self.client_secret, issuer="reconciler-sandbox", ttl=o.token_ttl)
        app = create_app(self._clocked(Context(self.state, o.faults, lambda: o.timing.analysis, self.ensure_bucket)),
                         issuer)
        self._api_server = make_server(o.host, o.port, app, threaded=True)
        self._api_thread = threading.Thread(target=self._api_server.serve_forever, name="sandbox-api", daemon=True,
                                            kwargs={"poll_interval": SHUTDOWN_POLL})
        self._api_thread.start()
        if not o.manual_clock:
            assert self._worker is not None  # made by _clocked
            self._worker.start()
        for url in (self.base_url, self.s3_url):
            _wait_accepting(url)
        return self

    def _clocked(self, context: Context) -> Context:
        """The worker, on real time or on a manual clock the context's `advance` steps."""
        o = self.options
        if o.manual_clock:
            clock = ManualClock()
            worker = self._worker = Worker(self.state, self.s3, o.timing, o.faults, clock=clock, sweep_each_step=True)
            context.clock, context.advance = clock, lambda seconds: advance(clock, worker, seconds)
        else:
            self._worker = Worker(self.state, self.s3, o.timing, o.faults)
        context.faults_changed = self._faults_changed
        self._context = context
        return context

    def _faults_changed(self, faults: Faults) -> None:
        assert self._worker is not None
        self._worker.faults = faults
        self.state.changed.set()  # a sleeping worker looks again (e.g. for stale jobs)

    def advance(self, seconds: float) -> float:
        """In-process `POST /sandbox/clock`: with `manual_clock`, move sandbox time and every job on."""
        if self._context is None or self._context.advance is None:
            raise RuntimeError("the sandbox clock is the real time; start it with SandboxOptions(manual_clock=True)")
        return self._context.advance(seconds)

    def stop(self) -> None:
        if self._worker:
            self._worker.stop()
        if self._api_server:
            self._api_server.shutdown()
            self._api_server.server_close()
        self._s3_server.stop()
        self.state.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def ensure_bucket(self, name: str) -> None:
        existing = {b["Name"] for b in self.s3.list_buckets().get("Buckets", [])}
        if name not in existing:
            self.s3.create_bucket(Bucket=name)

    def environment(self, sentinelhub_home: Path | None = None) -> dict[str, str]:
        """The variables a client needs (README, "The sandbox"); with `sentinelhub_home`, also what makes
        sentinelhub-py's SHConfig find the sandbox (it reads URLs only from its config file)."""
        from reconciler.sandbox.app import TOKEN_PATH

        env = {
            "SH_BASE_URL": self.base_url,
            "SH_TOKEN_URL": self.base_url + TOKEN_PATH,
            "SH_CLIENT_ID": self.client_id,
            "SH_CLIENT_SECRET": self.client_secret,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox-secret",
            "AWS_DEFAULT_REGION": REGION,
            "RECONCILER_STATE": f"s3://{STATE_BUCKET}/{STATE_KEY}",
            # oauthlib refuses plain http unless told; the sandbox serves http on loopback only
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
        }
        if sentinelhub_home is not None:
            env["XDG_CONFIG_HOME"] = str(sentinelhub_home)
            env["SH_PROFILE"] = SENTINELHUB_PROFILE
        return env

    def write_env_file(self, path: Path) -> None:
        """Write the env file (and sentinelhub-py's config beside it), atomically: a reader that
        sees the file sees all of it, and both servers already accept connections."""
        home = path.parent / f".{path.name}.config"
        config = home / "sentinelhub" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(config, f'[{SENTINELHUB_PROFILE}]\nsh_base_url = "{self.base_url}"\n'
                                  f'sh_token_url = "{self.environment()["SH_TOKEN_URL"]}"\n')
        lines = [f"{k}={v}" for k, v in self.environment(home.resolve()).items()]
        _write_atomically(path, "\n".join(lines) + "\n", mode=0o600)


def _credentials(options: SandboxOptions) -> tuple[str, str]:
    """The flags' credentials; else those kept in the data dir (a restart keeps its clients
    working); else new ones, kept there when there is a data dir."""
    import json

    kept = options.data_dir / "credentials.json" if options.data_dir else None
    saved = json.loads(kept.read_text()) if kept and kept.exists() else {}
    client_id = options.client_id or saved.get("client_id") or f"sandbox-{secrets.token_hex(4)}"
    client_secret = options.client_secret or saved.get("client_secret") or secrets.token_urlsafe(24)
    if kept:
        kept.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(kept, json.dumps({"client_id": client_id, "client_secret": client_secret}), mode=0o600)
    return client_id, client_secret


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write(path, text.encode(), mode)


def _wait_accepting(url: str, timeout: float = 10.0) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def serve(options: SandboxOptions, env_file: Path | None, announce) -> None:
    """Run until SIGINT or SIGTERM; the env file is removed again on a clean stop.

    The signals are blocked (in the servers' threads too, which inherit the mask) and taken with
    sigwait: one that arrives while the servers start waits until they are up, and no handler runs
    at a random point (an Event set from a handler deadlocks when the signal lands inside wait())."""
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with Sandbox(options) as sandbox:
            if env_file is not None:
                sandbox.write_env_file(env_file)
            announce(sandbox)
            try:
                signal.sigwait(stop_signals)
            finally:
                if env_file is not None:
                    env_file.unlink(missing_ok=True)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
