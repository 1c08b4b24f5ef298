"""What the `state`, `lock` and `force-unlock` commands do, on top of the store, the lockfile
and the lease. Anything that changes the lockfile holds the lease while it does; what only reads
(`state list/show/pull`, `lock status`, and `plan` elsewhere) takes no lease and never probes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from reconciler.errors import LineageMismatch, StateError
from reconciler.state.lease import Lease, LeaseInfo, read_lease, release_on_signals
from reconciler.state.model import JobState, Lockfile
from reconciler.state.objects import open_store, require_conditional_writes
from reconciler.state.statefile import Snapshot, StateFile


@dataclass(frozen=True)
class LeaseOptions:
    ttl: float = 600.0
    timeout: float = 0.0


def open_state(location: str) -> StateFile:
    store, key = open_store(location)
    return StateFile(store, key)


@contextlib.contextmanager
def locked(state: StateFile, operation: str, options: LeaseOptions) -> Iterator[Lease]:
    """Hold the lease for the block, renewed meanwhile, released whatever happens (signals too).
    A store not yet shown in this run to refuse lost races is probed first, and refused if it does not."""
    with release_on_signals():
        require_conditional_writes(state.store, state.key)  # under the handlers: a SIGTERM still cleans up
        with Lease.acquire(state.store, state.key, operation=operation, ttl=options.ttl,
                           timeout=options.timeout) as lease:
            yield lease


def lease_status(state: StateFile, now: float) -> tuple[LeaseInfo | None, bool]:
    current = read_lease(state.store, state.key)
    if current is None:
        return None, False
    return current[0], current[0].expires_at() <= now


def job(state: StateFile, name: str) -> JobState:
    lockfile = state.read().lockfile
    if name not in lockfile.jobs:
        raise StateError(f"no job named {name!r} in {state.location}", _known(lockfile))
    return lockfile.jobs[name]


def forget(state: StateFile, name: str, options: LeaseOptions) -> JobState:
    """Drop `name` from the lockfile; its live request is left as it is (unmanaged from now on)."""
    with locked(state, "state rm", options):
        snapshot = state.read()
        if name not in snapshot.lockfile.jobs:
            raise StateError(f"no job named {name!r} in {state.location}", _known(snapshot.lockfile))
        jobs = dict(snapshot.lockfile.jobs)
        removed = jobs.pop(name)
        state.write(snapshot.lockfile.model_copy(update={"jobs": jobs}), snapshot)
        return removed


def push(state: StateFile, incoming: Lockfile, force: bool, options: LeaseOptions) -> Snapshot:
    """Replace the lockfile with `incoming` (stored as the next serial). Refused when it belongs to
    another lineage or is not newer than what is stored, unless `force`."""
    with locked(state, "state push", options):
        snapshot = state.read()
        current = snapshot.lockfile
        if snapshot.etag is not None and not force:
            if incoming.lineage != current.lineage:
                raise LineageMismatch(f"the file belongs to lineage {incoming.lineage}, the state to {current.lineage}",
                                      "push --force replaces a whole state history; be sure")
            if incoming.serial < current.serial or (incoming.serial == current.serial and incoming.jobs != current.jobs):
                raise StateError(f"the file has serial {incoming.serial}, the state {current.serial}: it is not newer",
                                 "pull the state again, or push --force to overwrite it anyway")
        return state.write(incoming.model_copy(update={"journalSeq": current.journalSeq}), snapshot)


def _known(lockfile: Lockfile) -> str:
    names = sorted(lockfile.jobs)
    return "known: " + ", ".join(names[:20]) + (" …" if len(names) > 20 else "") if names else "the lockfile has no jobs"
