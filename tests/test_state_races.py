"""Races on the sandbox S3 (which serialises conditional writes, like S3), with real processes:
the lease has exactly one holder at a time, read-modify-write cycles on the lockfile lose no
update and number them 1..N, and runs that record through the journal under the lease never
conflict. A write latency widens every race window."""

from __future__ import annotations

import queue
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import SandboxProcess, forked
from tests.state_helpers import STATE_BUCKET

PROCESSES = 8
LEASE_ROUNDS = 100
WRITES_EACH = 6  # read-modify-write cycles per process
SESSIONS_EACH = 2  # lease + journal + compact sessions per process
LATENCY = "0.01"


@pytest.fixture(scope="module")
def slow_s3(tmp_path_factory):
    process = SandboxProcess(tmp_path_factory.mktemp("state-races"), "--s3-write-latency", LATENCY)
    yield process.env
    process.stop()


def _store(env: dict):
    from reconciler.state.objects import S3Store
    from tests.state_helpers import s3_client

    return S3Store(STATE_BUCKET, s3_client(env))


def _run(worker, *args) -> list:
    """Start PROCESSES workers `worker(index, barrier, results, *args)`; return what they put. Each
    is forked from a server process that imported boto3 and the state package once (tests/conftest.py
    preloads them): a spawned one imports them all again, which took most of this file's time."""
    context = forked()
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=worker, args=(i, barrier, results, *args)) for i in range(PROCESSES)]
    for w in workers:
        w.start()
    collected, deadline = [], time.monotonic() + 120
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        collected += _drain(results, 0.2)  # drain while they run: a full pipe would block them
    for w in workers:
        w.join(timeout=10)
        if w.is_alive():
            w.kill()
    collected += _drain(results, 0.5)
    assert [w.exitcode for w in workers] == [0] * PROCESSES, [r for r in collected if r[0] == "error"]
    return collected


def _drain(results, wait: float) -> list:
    """Everything in the queue, until nothing came for `wait` seconds."""
    got = []
    while True:
        try:
            got.append(results.get(timeout=wait))
        except queue.Empty:
            return got


def _report_errors(results, index: int):
    import traceback

    return lambda: results.put(("error", index, traceback.format_exc()))


# --- (a) one holder per round --------------------------------------------------------------------

def _lease_contender(index: int, barrier, results, env: dict, key: str) -> None:
    from reconciler.errors import LeaseHeld
    from reconciler.state.lease import Lease

    store = _store(env)
    try:
        for round_ in range(LEASE_ROUNDS):
            barrier.wait(timeout=60)
            try:
                lease = Lease.acquire(store, key, operation="race", who=f"racer-{index}", timeout=0)
                results.put(("won", round_, index, lease.info.id))
            except LeaseHeld as e:
                lease = None
                results.put(("held", round_, index, e.message, e.exit_code))
            barrier.wait(timeout=60)
            if lease:
                lease.release()
    except Exception:
        _report_errors(results, index)()
        raise


def test_eight_processes_one_lease_holder_per_round(slow_s3):
    key = f"races/{uuid.uuid4().hex}/state.json"
    results = _run(_lease_contender, slow_s3, key)
    winners = {}
    for kind, round_, index, *rest in results:
        if kind == "won":
            assert round_ not in winners, f"round {round_}: racers {winners[round_][0]} and {index} both hold the lease"
            winners[round_] = (index, rest[0])
    assert sorted(winners) == list(range(LEASE_ROUNDS))
    held = [r for r in results if r[0] == "held"]
    assert len(held) == LEASE_ROUNDS * (PROCESSES - 1)
    for _, round_, index, message, exit_code in held:
        holder, lease_id = winners[round_]
        assert exit_code == 3 and f"racer-{holder}" in message and lease_id in message and index != holder
    assert len({index for index, _ in winners.values()}) > 1  # a real race, not one fast process
    assert _store(slow_s3).get(f"{key}.lease") is None


# --- (b) no lost update, serials 1..N ------------------------------------------------------------

def _lockfile_writer(index: int, barrier, results, env: dict, key: str) -> None:
    from reconciler.errors import StateConflict
    from reconciler.state.model import JobState
    from reconciler.state.statefile import StateFile

    state = StateFile(_store(env), key)
    try:
        barrier.wait(timeout=60)
        conflicts = 0
        for k in range(WRITES_EACH):
            name = f"p{index}-w{k}"
            while True:
                snapshot = state.read()
                jobs = {**snapshot.lockfile.jobs, name: JobState(api="v2", specHash=f"{index}:{k}")}
                try:
                    written = state.write(snapshot.lockfile.model_copy(update={"jobs": jobs}), snapshot)
                except StateConflict:
                    conflicts += 1
                    continue
                results.put(("wrote", index, name, snapshot.stored_serial, written.lockfile.serial))
                break
        results.put(("conflicts", index, conflicts))
    except Exception:
        _report_errors(results, index)()
        raise


def test_concurrent_read_modify_write_loses_no_update(slow_s3):
    from reconciler.state.statefile import StateFile

    key = f"races/{uuid.uuid4().hex}/state.json"
    results = _run(_lockfile_writer, slow_s3, key)
    writes = [r for r in results if r[0] == "wrote"]
    total = PROCESSES * WRITES_EACH
    assert len(writes) == total
    assert all(after == before + 1 for _, _, _, before, after in writes)
    assert sorted(after for *_, after in writes) == list(range(1, total + 1))  # each serial produced exactly once
    final = StateFile(_store(slow_s3), key).read().lockfile
    assert final.serial == total
    assert set(final.jobs) == {f"p{i}-w{k}" for i in range(PROCESSES) for k in range(WRITES_EACH)}
    assert sum(r[2] for r in results if r[0] == "conflicts") > 0  # they did collide


# --- (c) journal sessions under the lease never conflict -----------------------------------------

def _journal_session(index: int, barrier, results, env: dict, key: str) -> None:
    from reconciler.state.lease import Lease
    from reconciler.state.model import HistoryEntry, JobState
    from reconciler.state.statefile import StateFile

    store = _store(env)
    state = StateFile(store, key)
    try:
        barrier.wait(timeout=60)
        for session in range(SESSIONS_EACH):
            # the backoff (up to 10 s) would make this test wait more than race: poll every 0.2 s instead
            with Lease.acquire(store, key, operation="apply", who=f"run-{index}", timeout=60, ttl=30,
                               sleep=lambda seconds: time.sleep(min(seconds, 0.2))) as lease:
                start = time.time()
                journal = state.journal(state.read())
                name = f"p{index}-s{session}"
                lease.check()
                journal.record(name, JobState(api="v2", specHash=name),
                               HistoryEntry(at=datetime.now(UTC), who=lease.info.who, action="create",
                                            result="ok"))
                serial = journal.compact().lockfile.serial
                end = time.time()
            results.put(("session", index, name, start, end, serial))
    except Exception:
        _report_errors(results, index)()
        raise


def test_journal_sessions_under_the_lease_never_conflict(slow_s3):
    from reconciler.state.statefile import StateFile

    key = f"races/{uuid.uuid4().hex}/state.json"
    results = _run(_journal_session, slow_s3, key)  # a StateConflict would have failed a worker
    sessions = sorted((r for r in results if r[0] == "session"), key=lambda r: r[3])
    assert len(sessions) == PROCESSES * SESSIONS_EACH
    for before, after in zip(sessions, sessions[1:], strict=False):
        assert before[4] <= after[3], f"{before[2]} and {after[2]} held the lease at once"
    total = len(sessions)
    assert [r[5] for r in sessions] == list(range(2, total + 2))  # the first session also created the lockfile
    final = StateFile(_store(slow_s3), key).read()
    assert final.journal == () and final.lockfile.serial == total + 1 and final.lockfile.journalSeq == total
    assert set(final.lockfile.jobs) == {r[2] for r in sessions}
