"""The contract of recorded state, run over every store (DESIGN §3): S3 (the sandbox's moto, one per
module, a fresh key prefix per test) and a local directory. Objects (conditional writes and
deletes, listing), the capability probe, StateFile (serials, lost races), the journal (O(1)
recording, merge, compaction, crash leftovers, lineage), the format (versions, garbage), the lease
(on an injected clock), and that no secret from a manifest reaches any stored object."""

from __future__ import annotations

import hashlib
import json
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.errors import LeaseHeld, LeaseLost, StateConflict, StateError
from reconciler.state import format as state_format
from reconciler.state import objects
from reconciler.state.format import decode, encode
from reconciler.state.lease import Lease, force_unlock, lease_key, read_lease, whoami
from reconciler.state.model import CURRENT_VERSION, HISTORY_LIMIT, HistoryEntry, Intent, JobState, Lockfile
from reconciler.state.objects import (
    UNSAFE_STORE_HINT,
    LocalStore,
    ObjectStore,
    PreconditionFailed,
    S3Store,
    open_store,
    require_conditional_writes,
)
from reconciler.state.statefile import StateFile
from tests.conftest import SandboxProcess
from tests.state_helpers import (
    STATE_BUCKET,
    CallLog,
    Crash,
    FakeClock,
    raw_local_objects,
    raw_s3_objects,
    s3_client,
)

ENTRY_LIMIT = 4096  # bytes one journal entry may take, whatever the size of the lockfile
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_sandbox(tmp_path_factory):
    process = SandboxProcess(tmp_path_factory.mktemp("state-contract"))
    yield process
    process.stop()


@dataclass
class Backend:
    """One store under test, a fresh namespace in it, and a way to see its bytes around it."""

    kind: str
    store: ObjectStore
    prefix: str
    raw: Callable[[], dict[str, bytes]]  # every stored object (key → bytes), read around `store`
    empty_namespace: Callable[[], ObjectStore]  # a store that holds nothing yet, next to other things

    @property
    def key(self) -> str:
        return f"{self.prefix}state.json"

    def state(self, store: ObjectStore | None = None) -> StateFile:
        return StateFile(store or self.store, self.key)


@pytest.fixture(params=["s3", "local"])
def backend(request, tmp_path) -> Backend:
    if request.param == "s3":
        client = s3_client(request.getfixturevalue("s3_sandbox").env)
        prefix = f"contract/{uuid.uuid4().hex}/"

        def empty_s3() -> ObjectStore:
            bucket = f"empty-{uuid.uuid4().hex[:20]}"
            client.create_bucket(Bucket=bucket)
            return S3Store(bucket, client)

        return Backend("s3", S3Store(STATE_BUCKET, client), prefix,
                       lambda: raw_s3_objects(client, STATE_BUCKET, prefix), empty_s3)

    root = tmp_path / "store"

    def empty_local() -> ObjectStore:
        project = tmp_path / f"project-{uuid.uuid4().hex[:8]}"  # the state folder sits among other files
        (project / "manifests").mkdir(parents=True)
        (project / "manifests" / "job.yaml").write_text("kind: BatchJob\n")
        return LocalStore(project / ".reconciler")

    return Backend("local", LocalStore(root), "t/", lambda: raw_local_objects(root) if root.exists() else {},
                   empty_local)


def job(i: int, *, status: str = "DONE", history: int = 1) -> JobState:
    events = [HistoryEntry(at=T0 + timedelta(minutes=k), who="ci", action="create", result="ok",
                           requestId=f"req-{i:06d}") for k in range(history)]
    return JobState(id=f"req-{i:06d}", api="v2", specHash=hashlib.sha256(str(i).encode()).hexdigest(), status=status,
                    observedAt=T0, history=events)


def event(action: str, *, at: datetime = T0, request_id: str | None = None) -> HistoryEntry:
    return HistoryEntry(at=at, who="https://github.com/acme/jobs/actions/runs/123456789012", action=action, result="ok",
                        requestId=request_id, revision="0123456789abcdef0123456789abcdef01234567")


def seed(backend: Backend, jobs: dict[str, JobState]):
    """A stored lockfile holding `jobs`; returns the snapshot of that write."""
    state = backend.state()
    snapshot = state.read()
    return state.write(snapshot.lockfile.model_copy(update={"jobs": jobs}), snapshot)


# --- objects -------------------------------------------------------------------------------------

def test_get_of_a_missing_key_is_none(backend):
    assert backend.store.get(f"{backend.prefix}missing.json") is None


def test_put_get_round_trip_and_etags_follow_content(backend):
    key, store = f"{backend.prefix}object.json", backend.store
    first = store.put(key, b'{"a": 1}')
    blob = store.get(key)
    assert (blob.data, blob.etag) == (b'{"a": 1}', first)
    second = store.put(key, b'{"a": 2}')
    assert second != first
    assert store.get(key).data == b'{"a": 2}' and store.get(key).etag == second
    assert store.put(key, b'{"a": 1}') != second


def test_if_none_match_refuses_an_existing_object(backend):
    key, store = f"{backend.prefix}create-only.json", backend.store
    etag = store.put(key, b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put(key, b"second", if_none_match=True)
    assert store.get(key).data == b"first" and store.get(key).etag == etag


def test_if_match_refuses_a_stale_etag_and_a_missing_object(backend):
    key, store = f"{backend.prefix}cas.json", backend.store
    first = store.put(key, b"v1")
    second = store.put(key, b"v2", if_match=first)
    with pytest.raises(PreconditionFailed):
        store.put(key, b"v3", if_match=first)
    assert store.get(key).data == b"v2" and store.get(key).etag == second
    missing = f"{backend.prefix}never-written.json"
    with pytest.raises(PreconditionFailed):
        store.put(missing, b"v1", if_match=second)
    assert store.get(missing) is None


def test_conditional_delete_refuses_a_stale_etag(backend):
    key, store = f"{backend.prefix}delete.json", backend.store
    first = store.put(key, b"v1")
    second = store.put(key, b"v2")
    with pytest.raises(PreconditionFailed):
        store.delete(key, if_match=first)
    assert store.get(key).data == b"v2"
    store.delete(key, if_match=second)
    assert store.get(key) is None
    with pytest.raises(PreconditionFailed):
        store.delete(key, if_match=second)


def test_delete_many_removes_every_key_and_ignores_absent_ones(backend):
    p, store = backend.prefix, backend.store
    keys = [f"{p}many/{i:04d}.json" for i in range(1005)]  # more than one S3 DeleteObjects call (1,000 keys)
    present = keys[:2] + keys[998:1003]  # in both calls; the other keys are absent
    for key in present:
        store.put(key, b"{}")
    assert store.list(f"{p}many/") == present
    store.put(f"{p}many-kept.json", b"{}")
    store.delete_many(keys)
    assert store.list(f"{p}many/") == []
    assert store.get(f"{p}many-kept.json") is not None


def test_list_by_prefix(backend):
    p, store = backend.prefix, backend.store
    keys = [f"{p}a.json", f"{p}a.json.journal/000000000001.json", f"{p}a.json.journal/000000000002.json",
            f"{p}ab/c.json", f"{p}b.json"]
    for key in reversed(keys):
        store.put(key, b"{}")
    assert store.list(f"{p}a.json.journal/") == keys[1:3]
    assert store.list(f"{p}a") == keys[:4]
    assert store.list(p) == keys
    assert store.list(f"{p}zzz") == [] and store.list(f"{p}nothing/") == []


def test_list_of_everything(backend, request):
    store = backend.empty_namespace()
    store.put("state.json", b"{}")
    store.put("state.json.journal/000000000001.json", b"{}")
    assert store.list("") == ["state.json", "state.json.journal/000000000001.json"]


def test_storage_failures_are_state_errors(backend, tmp_path):
    if backend.kind == "s3":
        broken = S3Store(f"no-such-bucket-{uuid.uuid4().hex[:12]}", backend.store._s3)
    else:
        (tmp_path / "not-a-folder").write_text("a file where the state folder should be")
        broken = LocalStore(tmp_path / "not-a-folder")
    with pytest.raises(StateError) as info:
        broken.get("state.json")
    assert type(info.value) is StateError and info.value.exit_code == 1
    with pytest.raises(StateError):
        broken.put("state.json", b"{}")


def test_an_unreachable_s3_endpoint_is_a_state_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = s3_client({"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    with pytest.raises(StateError, match="cannot reach S3"):
        S3Store(STATE_BUCKET, client).get("state.json")


def test_open_store_maps_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store, key = open_store("s3://bucket/team/state.json")
    assert isinstance(store, S3Store) and store.bucket == "bucket" and key == "team/state.json"
    assert store.url(key) == "s3://bucket/team/state.json"
    for bad in ("s3://bucket", "s3://bucket/", "s3://bucket/folder/", "s3:///state.json"):
        with pytest.raises(StateError):
            open_store(bad)
    (tmp_path / "sub").mkdir()
    store, key = open_store(f"file://{tmp_path}/sub/state.json")
    assert isinstance(store, LocalStore) and store.directory == tmp_path / "sub" and key == "state.json"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".reconciler").mkdir()
    store, key = open_store(".reconciler/state.json")
    assert store.directory == tmp_path / ".reconciler" and key == "state.json"
    with pytest.raises(StateError, match="folder"):
        open_store(str(tmp_path))


@pytest.mark.parametrize("location", ["s3:/bucket/key.json", "S3://bucket/key.json", "gs://bucket/key.json",
                                      "s3//bucket/key.json", "https://bucket.s3.amazonaws.com/key.json"])
def test_a_mistyped_or_foreign_url_is_refused_before_anything_is_touched(tmp_path, monkeypatch, run_cli, location):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError, match="neither s3://bucket/key, file://path nor a local path"):
        open_store(location)
    code, _, err = run_cli("state", "list", "--state", location)
    assert code == 1 and "neither s3://" in err
    assert list(tmp_path.iterdir()) == []  # no ./s3:/bucket/key.json made


def test_a_local_lockfile_in_a_missing_folder_is_an_error_not_an_empty_state(tmp_path):
    with pytest.raises(StateError, match="does not exist"):
        open_store(str(tmp_path / "typo" / "state.json"))
    assert not (tmp_path / "typo").exists()


# --- the capability probe ------------------------------------------------------------------------

@dataclass
class Unconditional:
    """A store that takes `if_match`/`if_none_match` and writes anyway (some S3-compatible stores do),
    or ignores only the conditions named in `ignores`."""

    inner: ObjectStore
    ignores: tuple[str, ...] = ("if_match", "if_none_match")
    enforces_conditions = False

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        kept = {"if_match": if_match, "if_none_match": if_none_match}
        return self.inner.put(key, data, **{k: v for k, v in kept.items() if k not in self.ignores})

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture
def fresh_run(monkeypatch):
    """No store proven yet: as at the start of a process."""
    monkeypatch.setattr(objects, "_proven", set())


def test_the_probe_passes_leaves_nothing_and_runs_once_per_run(backend, fresh_run):
    log = CallLog(backend.store)
    require_conditional_writes(log, backend.key)
    require_conditional_writes(log, backend.key)
    require_conditional_writes(log, f"{backend.prefix}other/state.json")  # the same store: proven already
    if backend.kind == "local":
        assert log.calls == []  # flock + link/rename: honoured by construction, nothing to prove
    else:
        probes = {c.key for c in log.calls}
        assert len(probes) == 1 and probes.pop().startswith(f"{backend.key}.probe/")
        assert [(c.op, c.if_none_match, c.if_match is not None) for c in log.calls] == [
            ("put", True, False), ("put", True, False), ("put", False, True), ("delete", False, False)]
    assert backend.raw() == {}


@pytest.mark.parametrize("ignores, named", [
    (("if_match", "if_none_match"), ["If-None-Match: *", "If-Match"]),
    (("if_none_match",), ["If-None-Match: *"]),
    (("if_match",), ["If-Match"]),
])
def test_a_store_that_ignores_conditions_is_refused_and_left_clean(backend, fresh_run, ignores, named):
    store = Unconditional(backend.store, ignores)
    for _ in range(2):  # a refusal is not remembered as proof
        with pytest.raises(StateError) as info:
            require_conditional_writes(store, backend.key)
        error = info.value
        assert error.exit_code == 1 and "\n" not in error.message and error.hint == UNSAFE_STORE_HINT
        assert backend.store.endpoint() in error.message and backend.store.url(backend.key) in error.message
        assert [header for header in ("If-None-Match: *", "If-Match") if f"{header} (" in error.message] == named
    assert {k: v for k, v in backend.raw().items() if not k.endswith(".flock")} == {}  # the local store's lock stays


# --- StateFile -----------------------------------------------------------------------------------

def test_first_write_is_create_only_and_gives_serial_1(backend):
    log = CallLog(backend.store)
    state = backend.state(log)
    snapshot = state.read()
    assert (snapshot.etag, snapshot.stored_serial, snapshot.lockfile.serial, snapshot.lockfile.jobs) == (None, 0, 0, {})
    log.clear()
    written = state.write(snapshot.lockfile.model_copy(update={"jobs": {"a": job(1)}}), snapshot)
    [put] = log.of("put")
    assert (put.key, put.if_none_match, put.if_match) == (backend.key, True, None)
    assert written.lockfile.serial == 1 and written.stored_serial == 1
    stored = decode(backend.store.get(backend.key).data, "test")
    assert stored.serial == 1 and stored.lineage == snapshot.lockfile.lineage and set(stored.jobs) == {"a"}


def test_a_first_write_loses_to_a_concurrent_create(backend):
    mine, theirs = backend.state().read(), backend.state().read()
    backend.state().write(theirs.lockfile.model_copy(update={"jobs": {"theirs": job(2)}}), theirs)
    before = backend.store.get(backend.key).data
    with pytest.raises(StateConflict):
        backend.state().write(mine.lockfile.model_copy(update={"jobs": {"mine": job(1)}}), mine)
    assert backend.store.get(backend.key).data == before


def test_every_write_bumps_serial_by_exactly_one(backend):
    log = CallLog(backend.store)
    state = backend.state(log)
    lineage = None
    for serial in range(1, 6):
        snapshot = state.read()
        log.clear()
        jobs = {**snapshot.lockfile.jobs, f"j{serial}": job(serial)}
        forged = snapshot.lockfile.model_copy(update={"serial": 1000, "jobs": jobs})
        written = state.write(forged, snapshot)  # the serial in the document does not matter: the stored one does
        [put] = log.of("put")
        assert (put.if_match, put.if_none_match) == ((snapshot.etag, False) if serial > 1 else (None, True))
        stored = decode(backend.store.get(backend.key).data, "test")
        assert written.lockfile.serial == stored.serial == serial
        lineage = lineage or stored.lineage
        assert stored.lineage == lineage and len(stored.jobs) == serial


def test_a_write_over_a_stale_snapshot_conflicts_and_changes_nothing(backend):
    seed(backend, {"a": job(1)})
    stale, fresh = backend.state().read(), backend.state().read()
    backend.state().write(fresh.lockfile.model_copy(update={"jobs": {"a": job(1), "b": job(2)}}), fresh)
    before = backend.raw()
    with pytest.raises(StateConflict) as info:
        backend.state().write(stale.lockfile.model_copy(update={"jobs": {}}), stale)
    assert info.value.exit_code == 1 and "serial 1" in info.value.message and backend.key in info.value.message
    assert backend.raw() == before
    assert decode(backend.store.get(backend.key).data, "test").serial == 2


# --- the journal ---------------------------------------------------------------------------------

def test_recording_writes_one_small_object_per_action(backend):
    seed(backend, {f"job-{i}": job(i) for i in range(3)})
    log = CallLog(backend.store)
    state = backend.state(log)
    journal = state.journal(state.read())
    log.clear()
    sizes = [journal.record(f"job-{i % 3}", job(i % 3, status="PROCESSING"), event("start", request_id=f"req-{i}"))
             for i in range(5)]
    assert [c.op for c in log.calls] == ["put"] * 5
    assert all(c.if_none_match and c.key.startswith(state.journal_prefix) for c in log.calls)
    assert [c.size for c in log.calls] == sizes and max(sizes) <= ENTRY_LIMIT
    entries = {k: v for k, v in backend.raw().items() if k.startswith(state.journal_prefix)}
    assert len(entries) == 5 and sorted(len(v) for v in entries.values()) == sorted(sizes)


def test_entry_size_is_independent_of_the_lockfile_size(backend):
    sizes, lockfile_sizes = {}, {}
    for count in (10, 1_000, 10_000):
        state = StateFile(backend.store, f"{backend.prefix}{count}/state.json")
        snapshot = state.read()
        jobs = {f"job-{i:05d}": job(i) for i in range(count)}
        stored = state.write(snapshot.lockfile.model_copy(update={"jobs": jobs}), snapshot)
        log = CallLog(backend.store)
        journal = StateFile(log, state.key).journal(stored)
        sizes[count] = journal.record("job-00005", job(5, status="PROCESSING"), event("start", request_id="req-000005"))
        assert [(c.op, c.key.startswith(state.journal_prefix)) for c in log.calls] == [("put", True)]
        lockfile_sizes[count] = len(backend.store.get(state.key).data)
    assert len(set(sizes.values())) == 1 and sizes[10] <= ENTRY_LIMIT, sizes
    assert lockfile_sizes[10_000] > 1_000_000  # the lockfile itself is large; the entry is not


def test_read_merges_lockfile_and_journal(backend):
    base = seed(backend, {"a": job(1), "b": job(2)})
    journal = backend.state().journal(base)
    journal.record("a", job(1, status="PROCESSING"), event("start", request_id="req-000001"))
    journal.record("c", job(3, status="CREATED", history=0), event("create", request_id="req-000003"))
    journal.record("a", None, event("note"))  # an event alone keeps the job's state
    journal.remove("b")
    merged = backend.state().read()
    assert merged.stored_serial == base.stored_serial == 1 and merged.etag == base.etag
    assert len(merged.journal) == 4 and merged.lockfile.journalSeq == 4
    jobs = merged.lockfile.jobs
    assert set(jobs) == {"a", "c"}
    assert jobs["a"].status == "PROCESSING" and [e.action for e in jobs["a"].history] == ["create", "start", "note"]
    assert jobs["c"].id == "req-000003" and [e.action for e in jobs["c"].history] == ["create"]
    assert merged.lockfile == journal.view


def test_compact_folds_the_journal_in_with_one_write_and_deletes_the_entries(backend):
    base = seed(backend, {"a": job(1)})
    log = CallLog(backend.store)
    state = backend.state(log)
    journal = state.journal(base)
    for i in range(3):
        journal.record("a", job(1, status=f"S{i}"), event(f"step-{i}"))
    view = journal.view
    log.clear()
    compacted = journal.compact()
    writes = [c for c in log.calls if c.op == "put"]
    assert [(c.key, c.if_match) for c in writes] == [(backend.key, base.etag)]
    lineage = base.lockfile.lineage[:8]
    expected = [f"{state.journal_prefix}{seq:012d}-{lineage}.json" for seq in (1, 2, 3)]
    assert sorted(c.key for c in log.of("delete")) == expected
    assert [k for k in backend.raw() if k.startswith(state.journal_prefix)] == []
    assert compacted.lockfile.serial == 2 and compacted.lockfile.journalSeq == 3
    reread = backend.state().read()
    assert reread.journal == () and reread.lockfile == compacted.lockfile
    assert reread.lockfile.jobs == view.jobs and len(reread.lockfile.jobs["a"].history) == 4


def test_noted_observations_reach_only_the_final_lockfile_write(backend):
    base = seed(backend, {"a": job(1), "b": job(2)})
    log = CallLog(backend.store)
    journal = backend.state(log).journal(base)
    journal.record("a", job(1, status="S1"), event("start"))
    log.clear()
    journal.note("a", job(1, status="PROCESSING"), event("observe"))
    journal.note("b", job(2, status="DONE"), event("observe"))
    assert log.calls == []  # nothing stored per observation
    compacted = journal.compact()
    assert len(log.of("put")) == 1
    reread = backend.state().read().lockfile
    assert reread == compacted.lockfile and reread.journalSeq == 1
    assert (reread.jobs["a"].status, reread.jobs["b"].status) == ("PROCESSING", "DONE")
    assert [h.action for h in reread.jobs["a"].history][-2:] == ["start", "observe"]


def test_compact_from_a_fresh_read(backend):
    """Entries left by a run that died before compacting are folded in by the next one."""
    journal = backend.state().journal(seed(backend, {}))
    journal.record("a", job(1), event("create"))
    journal.record("b", job(2), event("create"))
    state = backend.state()
    snapshot = state.read()
    compacted = state.compact(snapshot)
    assert compacted.lockfile.serial == 2 and set(compacted.lockfile.jobs) == {"a", "b"}
    assert backend.store.list(state.journal_prefix) == []
    log = CallLog(backend.store)
    again = backend.state(log).compact(backend.state(log).read())
    assert log.of("put") == [] and again.lockfile == compacted.lockfile  # nothing to fold: no write


def test_entries_already_folded_in_are_skipped(backend):
    """A crash between the compacting write and the deletes leaves entries with seq ≤ journalSeq."""
    journal = backend.state().journal(seed(backend, {"a": job(1)}))
    for i in range(3):
        journal.record("a", job(1, status=f"S{i}"), event(f"step-{i}"))
    crashing = CallLog(backend.store, crash_on=lambda call: call.op == "delete")
    journal.state = backend.state(crashing)
    with pytest.raises(Crash):
        journal.compact()
    state = backend.state()
    leftovers = backend.store.list(state.journal_prefix)
    assert len(leftovers) == 3  # the deletes never happened
    stored = decode(backend.store.get(backend.key).data, "test")
    assert stored.serial == 2 and stored.journalSeq == 3 and len(stored.jobs["a"].history) == 4
    after = state.read()
    assert after.lockfile == stored  # not applied twice
    assert sorted(after.journal) == sorted(leftovers)  # but listed, so the next write deletes them
    journal = state.journal(after)
    journal.record("a", job(1, status="DONE"), event("done"))
    assert f"{state.journal_prefix}{4:012d}-{stored.lineage[:8]}.json" in backend.store.list(state.journal_prefix)
    final = journal.compact().lockfile
    assert final.serial == 3 and final.journalSeq == 4
    assert [e.action for e in final.jobs["a"].history] == ["create", "step-0", "step-1", "step-2", "done"]
    assert state.read().lockfile == final


def test_entries_already_folded_in_are_cleaned_up_by_the_next_compaction(backend):
    journal = backend.state().journal(seed(backend, {"a": job(1)}))
    journal.record("a", job(1, status="S0"), event("step-0"))
    journal.state = backend.state(CallLog(backend.store, crash_on=lambda call: call.op == "delete"))
    with pytest.raises(Crash):
        journal.compact()
    state = backend.state()
    journal = state.journal(state.read())
    journal.record("a", job(1, status="DONE"), event("done"))
    journal.compact()
    assert backend.store.list(state.journal_prefix) == []


def _foreign_entry(backend: Backend, seq: int) -> None:
    entry = {"seq": seq, "lineage": str(uuid.uuid4()), "name": "intruder",
             "job": job(9, history=0).as_json()}
    backend.store.put(f"{backend.key}.journal/{seq:012d}.json", json.dumps(entry).encode(), if_none_match=True)


def test_entries_of_another_lineage_are_ignored(backend):
    seed(backend, {"a": job(1)})
    _foreign_entry(backend, 1)
    _foreign_entry(backend, 2)
    snapshot = backend.state().read()
    assert set(snapshot.lockfile.jobs) == {"a"} and snapshot.lockfile.journalSeq == 0  # not merged
    assert len(snapshot.journal) == 2  # but listed, so the next write deletes them
    compacted = backend.state().compact(snapshot)
    assert compacted.lockfile.jobs == snapshot.lockfile.jobs and backend.store.list(f"{backend.key}.journal/") == []


def test_a_leftover_entry_of_another_lineage_does_not_block_recording(backend):
    seed(backend, {"a": job(1)})
    _foreign_entry(backend, 1)
    journal = backend.state().journal(backend.state().read())
    journal.record("a", job(1, status="PROCESSING"), event("start"))
    assert backend.state().read().lockfile.jobs["a"].status == "PROCESSING"


def test_an_unreadable_journal_entry_is_a_state_error(backend):
    seed(backend, {})
    backend.store.put(f"{backend.key}.journal/{1:012d}.json", b"\x00 not an entry")
    with pytest.raises(StateError, match="journal entry"):
        backend.state().read()


def test_a_journal_on_an_empty_store_stores_the_lockfile_first(backend):
    state = backend.state()
    journal = state.journal(state.read())
    stored = decode(backend.store.get(backend.key).data, "test")
    assert stored.serial == 1 and stored.lineage == journal.view.lineage
    journal.record("a", job(1), event("create"))
    assert set(state.read().lockfile.jobs) == {"a"}


def test_history_is_capped_through_the_journal(backend):
    journal = backend.state().journal(seed(backend, {"a": job(1, history=0)}))
    for i in range(HISTORY_LIMIT + 5):
        journal.record("a", None, event(f"e{i}"))
    history = backend.state().read().lockfile.jobs["a"].history
    assert len(history) == HISTORY_LIMIT and history[-1].action == f"e{HISTORY_LIMIT + 4}" and history[0].action == "e5"


# --- the format ----------------------------------------------------------------------------------

def test_encoding_is_stable_and_round_trips():
    lockfile = Lockfile(serial=7, journalSeq=3, jobs={"b": job(2), "a": job(1, history=2)})
    data = encode(lockfile)
    assert decode(data, "x") == lockfile and encode(decode(data, "x")) == data
    document = json.loads(data)
    assert list(document) == sorted(document) and list(document["jobs"]) == ["a", "b"]
    assert document["version"] == CURRENT_VERSION


def test_a_newer_version_is_refused(backend):
    document = json.loads(encode(Lockfile(jobs={"a": job(1)})))
    backend.store.put(backend.key, json.dumps({**document, "version": CURRENT_VERSION + 1}).encode())
    before = backend.raw()
    with pytest.raises(StateError) as info:
        backend.state().read()
    assert f"version {CURRENT_VERSION + 1}" in info.value.message and "upgrade reconciler" in info.value.hint
    assert backend.raw() == before


@pytest.mark.parametrize("garbage", [
    b"", b"not json", b"\x00\xff\xfe garbage", b"\xff" * 64, b"[]", b"{}", b'{"version": "1"}', b"null",
    b'{"version": 1, "serial": "many"}', b'{"version": 1, "jobs": {"a": {"api": "v9", "specHash": "x"}}}',
    b'{"version": 1, "unknown": true}', b'{"version": 0}', b'{"version": -5}',
    encode(Lockfile())[:-20],  # truncated
    encode(Lockfile()).replace(b'"serial": 0', b'"serial": "7"'), encode(Lockfile()).replace(b'"serial": 0', b'"serial": -5'),
    encode(Lockfile()).replace(b'"serial": 0', b'"serial": 1' + b"0" * 40), encode(Lockfile()).replace(b'"version": %d' % CURRENT_VERSION, b'"version": true'),
    encode(Lockfile()).replace(b'"serial": 0', b'"serial": true'), b'{"version": 2, "jobs": {}, "serial": 0, "journalSeq": 0}',

], ids=lambda g: repr(g[:24]))
def test_garbage_is_a_state_error(garbage):
    with pytest.raises(StateError):
        decode(garbage, "s3://bucket/state.json")


def test_garbage_in_the_store_is_a_state_error(backend):
    backend.store.put(backend.key, b"\x89PNG\r\n\x1a\n not a lockfile")
    with pytest.raises(StateError, match="state.json"):
        backend.state().read()


def test_deeply_nested_garbage_is_a_state_error():
    with pytest.raises(StateError):
        decode(b"[" * 100_000, "state.json")


def test_older_versions_are_upgraded_one_step_at_a_time(monkeypatch):
    current = json.loads(encode(Lockfile(jobs={"a": job(1)})))
    old = {**current, "version": CURRENT_VERSION - 2, "machines": current["jobs"]}
    del old["jobs"]
    steps = []
    monkeypatch.setitem(state_format.UPGRADES, CURRENT_VERSION - 2,
                        lambda d: steps.append(d["version"]) or {**{k: v for k, v in d.items() if k != "machines"},
                                                                 "jobs": d["machines"], "version": d["version"] + 1})
    monkeypatch.setitem(state_format.UPGRADES, CURRENT_VERSION - 1,
                        lambda d: steps.append(d["version"]) or {**d, "version": d["version"] + 1})
    lockfile = decode(json.dumps(old).encode(), "x")
    assert steps == [CURRENT_VERSION - 2, CURRENT_VERSION - 1] and lockfile.version == CURRENT_VERSION
    assert lockfile.jobs == {"a": job(1)}


# --- the lease -----------------------------------------------------------------------------------

def _acquire(backend: Backend, clock: FakeClock, who: str, *, ttl: float = 60.0, timeout: float = 0.0,
             store: ObjectStore | None = None) -> Lease:
    return Lease.acquire(store or backend.store, backend.key, operation="apply", ttl=ttl, timeout=timeout, who=who,
                         clock=clock, sleep=clock.sleep)


def test_acquire_creates_the_lease_only_when_absent(backend):
    clock, log = FakeClock(), CallLog(backend.store)
    lease = _acquire(backend, clock, "alice", store=log)
    [put] = log.of("put")
    assert (put.key, put.if_none_match) == (lease_key(backend.key), True)
    info, etag = read_lease(backend.store, backend.key)
    assert info == lease.info and etag == lease.etag
    assert (info.who, info.operation) == ("alice", "apply")
    assert datetime.fromisoformat(info.expires) - datetime.fromisoformat(info.created) == timedelta(seconds=60)
    assert datetime.fromisoformat(info.created).timestamp() == pytest.approx(clock.now, abs=0.001)


def test_a_second_acquire_is_lease_held_naming_holder_and_id(backend):
    clock = FakeClock()
    lease = _acquire(backend, clock, "alice@laptop")
    before = backend.store.get(lease_key(backend.key))
    with pytest.raises(LeaseHeld) as info:
        _acquire(backend, clock, "bob")
    error = info.value
    assert error.exit_code == 3
    assert "alice@laptop" in error.message and lease.info.id in error.message
    assert f"force-unlock {lease.info.id}" in error.hint
    assert backend.store.get(lease_key(backend.key)) == before and clock.sleeps == []


def test_acquire_with_a_timeout_waits_and_gets_the_lease_once_released(backend):
    clock = FakeClock()
    holder = _acquire(backend, clock, "alice")
    clock.on_sleep = lambda seconds: holder.release() if len(clock.sleeps) == 3 else None
    started = clock.now
    lease = _acquire(backend, clock, "bob", timeout=300)
    assert clock.sleeps == [0.25, 0.5, 1.0] and clock.now - started == pytest.approx(1.75)
    assert read_lease(backend.store, backend.key)[0] == lease.info and lease.info.who == "bob"


def test_acquire_gives_up_after_its_timeout_with_capped_backoff(backend):
    clock = FakeClock()
    holder = _acquire(backend, clock, "alice", ttl=600)
    with pytest.raises(LeaseHeld):
        _acquire(backend, clock, "bob", timeout=45)
    assert clock.sleeps[:6] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0] and max(clock.sleeps) == 10.0
    assert sum(clock.sleeps) == pytest.approx(45)
    assert read_lease(backend.store, backend.key)[0] == holder.info


def test_an_expired_lease_is_taken_over(backend):
    clock = FakeClock()
    crashed = _acquire(backend, clock, "alice", ttl=60)
    clock.advance(59.9)
    with pytest.raises(LeaseHeld):
        _acquire(backend, clock, "bob")
    clock.advance(0.2)
    lease = _acquire(backend, clock, "bob")
    assert lease.info.id != crashed.info.id and clock.sleeps == []
    assert read_lease(backend.store, backend.key)[0] == lease.info
    with pytest.raises(LeaseLost):
        crashed.renew()
    crashed.release()  # the old holder wakes up: it must not touch the new lease
    assert read_lease(backend.store, backend.key)[0] == lease.info


def test_renew_moves_expires(backend):
    clock = FakeClock()
    lease = _acquire(backend, clock, "alice", ttl=60)
    first_etag, created = lease.etag, lease.info.created
    clock.advance(45)
    lease.renew()
    info, etag = read_lease(backend.store, backend.key)
    assert info == lease.info and etag == lease.etag != first_etag
    assert info.created == created and info.expires_at() == pytest.approx(clock.now + 60, abs=0.001)
    clock.advance(45)  # past the first expiry, not the renewed one
    with pytest.raises(LeaseHeld):
        _acquire(backend, clock, "bob")
    lease.check()


def test_renew_after_the_lease_was_broken_raises_lease_lost(backend):
    clock = FakeClock()
    lease = _acquire(backend, clock, "alice")
    force_unlock(backend.store, backend.key, lease.info.id)
    with pytest.raises(LeaseLost):
        lease.renew()
    with pytest.raises(LeaseLost):
        lease.check()
    with pytest.raises(LeaseLost):
        lease.renew()
    other = _acquire(backend, clock, "bob")
    lease.release()
    assert read_lease(backend.store, backend.key)[0] == other.info


def test_renew_after_a_takeover_raises_lease_lost(backend):
    clock = FakeClock()
    lease = _acquire(backend, clock, "alice", ttl=10)
    clock.advance(11)
    _acquire(backend, clock, "bob", ttl=10)
    with pytest.raises(LeaseLost):
        lease.renew()
    with pytest.raises(LeaseLost):
        lease.check()


def test_release_deletes_only_our_own_version(backend):
    clock, log = FakeClock(), CallLog(backend.store)
    lease = _acquire(backend, clock, "alice", store=log)
    clock.advance(1)
    lease.renew()
    log.clear()
    lease.release()
    assert [(c.op, c.key, c.if_match) for c in log.calls] == [("delete", lease_key(backend.key), lease.etag)]
    assert read_lease(backend.store, backend.key) is None
    lease.release()  # twice is harmless
    again = _acquire(backend, clock, "bob")
    lease.release()
    assert read_lease(backend.store, backend.key)[0] == again.info


def test_check_fails_once_the_lease_expired_even_if_no_renewal_was_refused(backend):
    clock = FakeClock()
    partitioned = CallLog(backend.store, failure=lambda call: StateError("cannot reach S3"))
    lease = _acquire(backend, clock, "alice", ttl=60, store=partitioned)
    partitioned.crash_on = lambda call: call.op != "get"
    clock.advance(61)
    with pytest.raises(StateError):
        lease.renew()
    other = _acquire(backend, clock, "bob")  # from a machine that can reach S3: the lease expired, so bob takes it
    assert read_lease(backend.store, backend.key)[0] == other.info
    with pytest.raises(LeaseLost):
        lease.check()


def test_check_fails_no_later_than_another_run_may_take_the_lease_over(backend):
    clock = FakeClock()
    slow = CallLog(backend.store, before=lambda call: clock.advance(5) if call.op == "put" else None)
    lease = _acquire(backend, clock, "alice", ttl=60, store=slow)  # the create took 5 s (retries)
    clock.now = lease.info.expires_at()
    other = _acquire(backend, clock, "bob")  # expired by the lease's own word: taken over
    assert read_lease(backend.store, backend.key)[0] == other.info
    with pytest.raises(LeaseLost):
        lease.check()


def test_check_fails_no_later_than_others_may_take_a_renewed_lease_over(backend):
    clock = FakeClock()
    slow = CallLog(backend.store)
    lease = _acquire(backend, clock, "alice", ttl=60, store=slow)
    slow.before = lambda call: clock.advance(5) if call.op == "put" else None
    clock.advance(30)
    lease.renew()  # took 5 s
    clock.now = lease.info.expires_at()
    _acquire(backend, clock, "bob")
    with pytest.raises(LeaseLost):
        lease.check()


def test_force_unlock_refuses_a_wrong_id_and_breaks_the_right_one(backend):
    clock = FakeClock()
    with pytest.raises(StateError, match="no lease"):
        force_unlock(backend.store, backend.key, "whatever")
    lease = _acquire(backend, clock, "alice")
    before = backend.store.get(lease_key(backend.key))
    wrong = str(uuid.uuid4())
    with pytest.raises(StateError) as info:
        force_unlock(backend.store, backend.key, wrong)
    assert lease.info.id in info.value.message and wrong in info.value.message and "alice" in info.value.hint
    assert backend.store.get(lease_key(backend.key)) == before
    assert force_unlock(backend.store, backend.key, lease.info.id) == lease.info
    assert read_lease(backend.store, backend.key) is None


def test_an_unreadable_lease_is_a_state_error(backend):
    backend.store.put(lease_key(backend.key), b"{not json")
    with pytest.raises(StateError, match="lease"):
        read_lease(backend.store, backend.key)


def test_the_heartbeat_renews_and_notices_a_broken_lease(backend):
    with Lease.acquire(backend.store, backend.key, operation="apply", ttl=0.3, who="alice") as lease:
        first = read_lease(backend.store, backend.key)[0].expires
        assert _eventually(lambda: read_lease(backend.store, backend.key)[0].expires != first)
        lease.check()
        # a renewal between force_unlock's read and its delete makes it refuse ("the lease changed"): try again
        assert _eventually(lambda: not _raises(lambda: force_unlock(backend.store, backend.key, lease.info.id),
                                               StateError))
        assert _eventually(lambda: _raises(lease.check, LeaseLost))
        other = Lease.acquire(backend.store, backend.key, operation="apply", who="bob")
    assert read_lease(backend.store, backend.key)[0] == other.info  # leaving the block kept bob's lease
    assert not any(t.name == "lease-heartbeat" and t.is_alive() for t in threading.enumerate())


def test_leaving_the_block_releases_the_lease(backend):
    with pytest.raises(RuntimeError):
        with Lease.acquire(backend.store, backend.key, operation="apply", ttl=30, who="alice"):
            raise RuntimeError("the apply failed")
    assert read_lease(backend.store, backend.key) is None


def test_whoami_names_the_ci_run_or_the_user():
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "acme/jobs"}
    assert whoami(environ) == "https://github.com/acme/jobs/actions/runs/42"
    assert "@" in whoami({})


def _eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _raises(call: Callable[[], object], error: type[Exception]) -> bool:
    try:
        call()
    except error:
        return True
    return False


# --- secrets -------------------------------------------------------------------------------------

ENV_SECRET = "AKIAENVSECRET7Q4ZK2XW"
LITERAL_SECRET = "wJalrXUtnFEMI/K7MDENG/LiteralSecret+9d2b"
SECRET_MANIFEST = textwrap.dedent("""\
    apiVersion: reconciler/v1
    kind: BatchJob
    metadata:
      name: secret-job
    spec:
      description: delivered with keys
      request:
        processRequest:
          evalscript: "//VERSION=3\\nfunction setup() { return {}; }"
          input:
            bounds: {bbox: [8.44, 41.31, 9.66, 43.1]}
            data: [{type: sentinel-2-l2a}]
          output:
            responses: [{identifier: default, format: {type: image/tiff}}]
        input: {type: tiling-grid, id: 0, resolution: 60}
        output:
          type: raster
          delivery:
            s3:
              url: s3://results/secret-job
              accessKey: ${env:DELIVERY_ACCESS_KEY}
              secretAccessKey: %s
    """) % LITERAL_SECRET


def spec_hash(body: dict) -> str:
    """What the engine stores for a spec: a digest of the create body, never the body."""
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_no_secret_reaches_the_lockfile_the_journal_or_the_lease(backend, tmp_path):
    from reconciler.manifests.loader import load

    path = tmp_path / "manifests" / "secret-job.yaml"
    path.parent.mkdir()
    path.write_text(SECRET_MANIFEST)
    result = load([path], resolve_env=True, environ={"DELIVERY_ACCESS_KEY": ENV_SECRET})
    assert result.errors == []
    [manifest] = result.manifests
    s3_path = ("spec", "request", "output", "delivery", "s3")
    assert {(*s3_path, "accessKey"), (*s3_path, "secretAccessKey")} <= manifest.sensitive
    assert manifest.body["output"]["delivery"]["s3"] == {  # the secrets are really in what the engine sends
        "url": "s3://results/secret-job", "accessKey": ENV_SECRET, "secretAccessKey": LITERAL_SECRET}
    secrets = [ENV_SECRET.encode(), LITERAL_SECRET.encode()]

    def leaks() -> dict[str, list[bytes]]:
        found = {key: [s for s in secrets if s in data] for key, data in backend.raw().items()}
        return {key: hits for key, hits in found.items() if hits}

    who, digest = whoami(), spec_hash(manifest.body)
    with Lease.acquire(backend.store, backend.key, operation="apply", ttl=30, who=who) as lease:
        state = backend.state()
        journal = state.journal(state.read())
        marker = f"[reconciler:{manifest.name}]"
        intent = Intent(action="create", at=T0, who=who, marker=marker, specHash=digest)
        journal.record(manifest.name, JobState(api="v2", specHash=digest, intent=intent),
                       HistoryEntry(at=T0, who=who, action="create", result="intent", detail=marker))
        created = JobState(id="7d3c9a2e-0000-4000-8000-000000000001", api="v2", specHash=digest, status="CREATED",
                           observedAt=T0)
        journal.record(manifest.name, created,
                       HistoryEntry(at=T0, who=who, action="create", result="ok", requestId=created.id,
                                    detail=f"{manifest.description} {marker}"))
        lease.check()
        stored = backend.raw()
        assert lease_key(backend.key) in stored and any(k.startswith(state.journal_prefix) for k in stored)
        assert leaks() == {}
        compacted = journal.compact()
        assert leaks() == {}
    assert compacted.lockfile.jobs[manifest.name].specHash == digest
    assert backend.state().read().lockfile.jobs[manifest.name].id == created.id
    assert backend.store.get(backend.key) is not None and leaks() == {}


def test_a_local_state_path_under_a_file_says_what_to_check(tmp_path, run_cli):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("state", "list", "--state", str(tmp_path / "file" / "state.json"))
    assert code == 1 and "is a file, not a folder" in err and "hint: check RECONCILER_STATE" in err
