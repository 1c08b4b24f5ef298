"""A run holding the lease dies: SIGKILL leaves a lease that blocks until its TTL runs out and is
then taken over; SIGTERM (a cancelled CI job) and SIGINT (Ctrl-C) release it at once. Real
processes (tests/state_helpers/hold_lease.py) over the sandbox S3 and a local folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest

from reconciler.errors import LeaseHeld
from reconciler.state.lease import Lease, read_lease, release_on_signals
from reconciler.state.objects import ObjectStore, S3Store
from tests.conftest import ROOT, SandboxProcess
from tests.state_helpers import STATE_BUCKET, s3_client

TTL = 2.0


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    process = SandboxProcess(tmp_path_factory.mktemp("state-kill"))
    yield process.env
    process.stop()


@dataclass
class Target:
    location: str  # what the helper is given, as RECONCILER_STATE would be
    store: ObjectStore
    key: str
    env: dict


@pytest.fixture(params=["s3", "local"])
def target(request, tmp_path) -> Target:
    if request.param == "s3":
        env = request.getfixturevalue("s3_env")
        key = f"kill/{uuid.uuid4().hex}/state.json"
        return Target(f"s3://{STATE_BUCKET}/{key}", S3Store(STATE_BUCKET, s3_client(env)), key, env)
    from reconciler.state.objects import open_store

    (tmp_path / ".reconciler").mkdir()
    location = str(tmp_path / ".reconciler" / "state.json")
    store, key = open_store(location)
    return Target(location, store, key, {})


class Holder:
    """The helper process, once it has printed the id of the lease it holds."""

    def __init__(self, target: Target, who: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.state_helpers.hold_lease", target.location, "--ttl", str(TTL), "--who", who],
            cwd=ROOT, env={**os.environ, **target.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("LEASE "):
            self.process.kill()
            raise AssertionError(f"the holder did not take the lease: {line!r} {self.process.communicate()}")
        self.lease_id = line.split()[1]

    def kill(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.stderr = self.process.stderr.read()
        return code


def _acquire(target: Target, timeout: float = 0.0) -> Lease:
    return Lease.acquire(target.store, target.key, operation="apply", ttl=30, timeout=timeout, who="next-run")


def test_sigkill_leaves_a_lease_that_blocks_until_its_ttl_then_is_taken_over(target):
    holder = Holder(target, who="killed-run")
    assert holder.kill(signal.SIGKILL) == -signal.SIGKILL
    info, _ = read_lease(target.store, target.key)
    assert info.id == holder.lease_id
    with pytest.raises(LeaseHeld) as held:
        _acquire(target)
    assert held.value.exit_code == 3 and "killed-run" in held.value.message and holder.lease_id in held.value.message
    lease = _acquire(target, timeout=TTL + 10)
    taken_at = time.time()
    assert taken_at >= info.expires_at()  # not a moment before the dead run's lease expired
    assert taken_at - info.expires_at() < 8  # the backoff may overshoot the expiry by a few seconds
    assert lease.info.id != holder.lease_id and read_lease(target.store, target.key)[0] == lease.info
    lease.release()


@pytest.mark.parametrize("signum, exit_code", [
    (signal.SIGTERM, 128 + signal.SIGTERM),  # release_on_signals: SystemExit(128 + signum)
    (signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt: Python ends itself with SIGINT once `finally` ran
], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_release_the_lease_at_once(target, signum, exit_code):
    holder = Holder(target, who="interrupted-run")
    assert read_lease(target.store, target.key)[0].id == holder.lease_id
    assert holder.kill(signum) == exit_code, holder.stderr
    assert read_lease(target.store, target.key) is None
    lease = _acquire(target)  # timeout 0: a lease left behind would raise LeaseHeld, not wait for its TTL
    assert lease.info.id != holder.lease_id
    lease.release()


def test_release_on_signals_turns_sigterm_into_system_exit_and_restores_the_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        with release_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal interrupts this
    assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous
