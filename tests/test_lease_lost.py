"""A lease lost while held (DESIGN §3, §5): broken by `force-unlock` or taken over by another run, it
is noticed by the next heartbeat renewal (a conditional write over a deleted or replaced object is
refused by both stores), and from then on `check()` raises LeaseLost, which exits 3. Over the real
stores: the sandbox's S3 (moto) and a local folder, on the real clock (short ttl, waits on conditions)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from reconciler.errors import LeaseLost, StateError
from reconciler.state.lease import Lease, force_unlock, read_lease
from reconciler.state.objects import LocalStore, ObjectStore, S3Store
from tests.state_helpers import STATE_BUCKET, s3_client

TTL = 1.5
INTERVAL = TTL / 3  # the heartbeat renews this often
MARGIN = 1.0  # thread scheduling and store round trips on a loaded machine


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path) -> tuple[ObjectStore, str]:
    if request.param == "s3":
        client = s3_client(request.getfixturevalue("sandbox").env)
        return S3Store(STATE_BUCKET, client), f"lease-lost/{uuid.uuid4().hex}/state.json"
    return LocalStore(tmp_path / "store"), "state.json"


def _eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _lost(lease: Lease) -> LeaseLost | None:
    try:
        lease.check()
    except LeaseLost as e:
        return e
    return None


def _break(store: ObjectStore, key: str, lease_id: str) -> bool:
    # A renewal between force_unlock's read and its delete makes it refuse ("the lease changed"): try again.
    try:
        force_unlock(store, key, lease_id)
        return True
    except StateError:
        return False


@pytest.fixture
def held(store) -> Iterator[tuple[ObjectStore, str, Lease]]:
    backend, key = store
    with Lease.acquire(backend, key, operation="apply", ttl=TTL, who="alice") as lease:
        first = read_lease(backend, key)[0].expires
        assert _eventually(lambda: read_lease(backend, key)[0].expires != first, TTL)  # the heartbeat runs
        lease.check()
        yield backend, key, lease
    assert not any(t.name == "lease-heartbeat" and t.is_alive() for t in threading.enumerate())


def _noticed_within_one_heartbeat(lease: Lease, since: float) -> LeaseLost:
    assert _eventually(lambda: _lost(lease) is not None, INTERVAL + MARGIN)
    error = _lost(lease)
    assert time.monotonic() - since < INTERVAL + MARGIN + 0.1
    # noticed by a refused renewal, not by waiting for the lease to expire
    assert error.message == (f"the lease {lease.info.id} was lost (it was broken by force-unlock or taken over by "
                             "another run while held): nothing more was started")
    assert error.exit_code == 3 and "lock status" in error.hint
    return error


def test_a_force_unlock_is_noticed_by_the_next_renewal_and_check_fails_from_then_on(held):
    backend, key, lease = held
    assert _eventually(lambda: _break(backend, key, lease.info.id), TTL)
    _noticed_within_one_heartbeat(lease, time.monotonic())
    assert read_lease(backend, key) is None  # the renewal over the deleted lease did not bring it back
    for call in (lease.check, lease.renew, lease.check):
        with pytest.raises(LeaseLost) as again:
            call()
        assert again.value.exit_code == 3 and "nothing more was started" in again.value.message


def test_a_takeover_is_noticed_by_the_next_renewal_and_the_new_holder_keeps_its_lease(held):
    backend, key, lease = held
    assert _eventually(lambda: _break(backend, key, lease.info.id), TTL)
    other = Lease.acquire(backend, key, operation="apply", ttl=600, who="bob")
    _noticed_within_one_heartbeat(lease, time.monotonic())
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()  # the old holder's exit must not touch bob's lease
    assert read_lease(backend, key)[0] == other.info
    other.release()


def test_lease_lost_exits_3():
    assert LeaseLost("the lease x was lost").exit_code == 3


def test_a_lease_whose_times_have_no_offset_is_unreadable_not_judged_in_the_readers_zone(tmp_path):
    store = LocalStore(tmp_path / "store")
    naive = {"id": "x", "operation": "apply", "who": "w", "created": "2026-12-07T10:00:00", "expires": "2026-12-07T10:10:00"}
    store.put("state.json.lease", json.dumps(naive).encode(), if_none_match=True)
    with pytest.raises(StateError, match="unreadable .*no offset"):
        read_lease(store, "state.json")
