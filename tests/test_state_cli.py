"""The `state`, `lock status` and `force-unlock` commands, on a local lockfile and on the
sandbox's S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reconciler.state.lease import Lease
from reconciler.state.model import HistoryEntry, JobState
from reconciler.state.operations import open_state


def seed(location: str, names=("corsica", "zarr")) -> None:
    state = open_state(location)
    journal = state.journal(state.read())
    for i, name in enumerate(names):
        journal.record(name, JobState(api="v2", specHash=f"hash{i}", id=f"id-{i}", status="DONE"),
                       HistoryEntry(at=datetime(2026, 11, 1, tzinfo=UTC), who="ci@runner", action="create",
                                    result="ok", requestId=f"id-{i}", revision="0123456789abcdef"))
    journal.compact()


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path, monkeypatch):
    if request.param == "local":
        (tmp_path / "state").mkdir()
        return str(tmp_path / "state" / "reconciler.json")
    sandbox = request.getfixturevalue("sandbox")
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    return f"s3://reconciler-state/cli-{tmp_path.name}/reconciler.json"


def test_list_show_pull(location, run_cli):
    code, out, _ = run_cli("state", "list", "--state", location)
    assert code == 0 and "no lockfile yet" in out
    assert run_cli("state", "pull", "--state", location)[0] == 1
    seed(location)
    code, out, _ = run_cli("state", "list", "--state", location)
    assert code == 0 and "serial 2" in out and "corsica  v2   id-0" in out and "create ok 2026-11-01" in out
    code, out, _ = run_cli("state", "list", "--state", location, "--format", "json")
    assert set(json.loads(out)) == {"corsica", "zarr"}
    code, out, _ = run_cli("state", "show", "corsica", "--state", location)
    assert code == 0 and "v2 request id-0" in out and "ci@runner" in out and "0123456789ab" in out
    code, _, err = run_cli("state", "show", "nope", "--state", location)
    assert code == 1 and "no job named 'nope'" in err and "known: corsica, zarr" in err
    code, out, _ = run_cli("state", "pull", "--state", location)
    pulled = json.loads(out)
    assert pulled["serial"] == 2 and set(pulled["jobs"]) == {"corsica", "zarr"}


def test_rm_and_push(location, run_cli, tmp_path):
    seed(location)
    pulled = tmp_path / "pulled.json"
    pulled.write_text(run_cli("state", "pull", "--state", location)[1])
    code, out, _ = run_cli("state", "rm", "zarr", "--state", location)
    assert code == 0 and "Forgot zarr; its request id-1 is left as it is." in out
    assert set(open_state(location).read().lockfile.jobs) == {"corsica"}

    code, _, err = run_cli("state", "push", str(pulled), "--state", location)
    assert code == 1 and "not newer" in err  # the state moved on (serial 3) since the pull (serial 2)
    code, out, _ = run_cli("state", "push", "--force", str(pulled), "--state", location)
    assert code == 0 and "serial 4" in out
    assert set(open_state(location).read().lockfile.jobs) == {"corsica", "zarr"}

    other = json.loads(pulled.read_text())
    other["lineage"], other["serial"] = "00000000-0000-4000-8000-000000000000", 99
    pulled.write_text(json.dumps(other))
    code, _, err = run_cli("state", "push", str(pulled), "--state", location)
    assert code == 1 and "lineage" in err


def test_a_held_lease_exits_3_naming_holder_and_id_and_can_be_broken(location, run_cli):
    seed(location)
    state = open_state(location)
    held = Lease.acquire(state.store, state.key, operation="apply", who="ci@other-runner", ttl=600)
    code, out, _ = run_cli("lock", "status", "--state", location)
    assert code == 0 and held.info.id in out and "ci@other-runner" in out and "apply" in out
    code, _, err = run_cli("state", "rm", "corsica", "--state", location)
    assert code == 3 and held.info.id in err and "ci@other-runner" in err and "force-unlock" in err
    code, _, err = run_cli("force-unlock", "not-the-id", "--state", location)
    assert code == 1 and f"the lease held is {held.info.id}" in err
    code, out, _ = run_cli("force-unlock", held.info.id, "--state", location)
    assert code == 0 and "Broke lease" in out
    assert "not locked" in run_cli("lock", "status", "--state", location)[1]
    assert run_cli("state", "rm", "corsica", "--state", location)[0] == 0


def test_lock_timeout_waits_then_exits_3(location, run_cli):
    state = open_state(location)
    held = Lease.acquire(state.store, state.key, operation="apply", ttl=600)
    import time

    start = time.monotonic()
    code, _, _ = run_cli("state", "rm", "x", "--state", location, "--lock-timeout", "1s")
    assert code == 3 and time.monotonic() - start >= 1.0
    held.release()


def test_no_state_location_is_a_clear_error(run_cli, monkeypatch):
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    code, _, err = run_cli("state", "list")
    assert code == 1 and "no state location" in err and "RECONCILER_STATE" in err


@pytest.mark.parametrize("lease, problem", [
    ({"id": "x", "operation": "apply", "who": "w", "created": "2026-11-01T00:00:00+00:00", "expires": "not-a-date"},
     "Invalid isoformat string"),
    ({"id": "x", "operation": "apply", "who": "w", "created": "2026-11-01T00:00:00+00:00"}, "missing 1 required"),
    ({"id": 5, "operation": "apply", "who": "w", "created": "c", "expires": "e"}, "not a string"),
    ("[1, 2]", "must be a mapping"),
    (None, "not JSON"),
])
def test_a_malformed_lease_is_one_line_with_a_hint(location, run_cli, lease, problem):
    from reconciler.state.lease import lease_key

    state = open_state(location)
    data = b"{not json" if lease is None else (lease.encode() if isinstance(lease, str) else json.dumps(lease).encode())
    state.store.put(lease_key(state.key), data)
    for args in (("lock", "status"), ("state", "rm", "corsica")):
        code, out, err = run_cli(*args, "--state", location)
        assert code == 1 and "is unreadable" in err and problem in err and "unexpected" not in err, err
        assert "hint: if no run holds it, delete that object by hand" in err


def test_a_lease_holder_with_terminal_escapes_is_shown_escaped(location, run_cli):
    held = Lease.acquire(open_state(location).store, open_state(location).key, operation="apply\x1b[2J",
                         who="evil\x1b]0;title\x07\nsecond line")
    try:
        for args in (("lock", "status"), ("state", "rm", "corsica")):
            code, out, err = run_cli(*args, "--state", location)
            assert "\x1b" not in out + err and "\x07" not in out + err
            assert "evil\\x1b]0;title\\x07\\nsecond line" in out + err
    finally:
        held.release()


@pytest.mark.parametrize("flag", ["999999999d", "366d", "0s", "500ms"])
def test_an_out_of_range_lease_ttl_is_one_line(location, run_cli, flag):
    code, _, err = run_cli("state", "rm", "corsica", "--state", location, "--lease-ttl", flag)
    assert code == 1 and "unexpected" not in err
    assert ("out of range" in err) if flag.endswith("d") else ("at least 1s" in err)


def test_lock_status_as_json_with_and_without_a_holder(location, run_cli):
    code, out, _ = run_cli("lock", "status", "--state", location, "--format", "json")
    assert code == 0 and json.loads(out) == {"formatVersion": 1, "state": location, "holder": None}
    state = open_state(location)
    held = Lease.acquire(state.store, state.key, operation="apply", who="ci@other\x1b[2J", ttl=600)
    try:
        code, out, _ = run_cli("lock", "status", "--state", location, "--format", "json")
        document = json.loads(out)
        assert code == 0 and list(document) == ["formatVersion", "holder", "state"]  # keys sorted
        assert document["holder"] == {"id": held.info.id, "operation": "apply", "who": "ci@other\x1b[2J",
                                      "created": held.info.created, "expires": held.info.expires, "expired": False}
        assert "\x1b" not in out  # JSON escapes it: a terminal showing the document is not driven by it
    finally:
        held.release()
    expired = Lease.acquire(state.store, state.key, operation="apply", ttl=1)
    import time

    time.sleep(1.1)
    document = json.loads(run_cli("lock", "status", "--state", location, "--format", "json")[1])
    assert document["holder"]["id"] == expired.info.id and document["holder"]["expired"] is True
    expired.release()
