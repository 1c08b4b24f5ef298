"""Commands on recorded state: state list|show|rm|pull|push|rebuild, lock status, force-unlock."""

from __future__ import annotations

import click

from reconciler.cli.base import (
    FORMAT,
    LEASE_TTL,
    LOCK_TIMEOUT,
    PATHS,
    SHARD,
    STATE,
    cli,
    for_each,
    lease_options,
    lockfile_at,
    selection_of,
    service_settings,
    units_of,
)


@cli.group()
def state() -> None:
    """Read and repair the lockfile (what the reconciler manages)."""


@state.command("rebuild")
@PATHS
@STATE
@SHARD
@LEASE_TTL
@LOCK_TIMEOUT
def state_rebuild(paths, state_location, shards, lease_ttl, lock_timeout) -> int:
    """Recover the lockfile from the ownership markers of the live requests: those marked for its
    own manifests (its PATHS or shard), and never one another shard's lockfile records."""
    from reconciler.api.client import BatchClient
    from reconciler.operations.adopt import rebuild
    from reconciler.operations.run import load_manifests
    from reconciler.render.status import show_rebuilt
    from reconciler.shards import load_shards

    every = load_shards()

    def one(unit) -> int:
        manifests, _ = load_manifests(selection_of(unit.paths, (), ()))
        state_file = lockfile_at(unit.state)
        others = [lockfile_at(shard.state) for shard in every.values() if lockfile_at(shard.state).location != state_file.location]
        taken = frozenset(record.id for other in others for record in other.read().lockfile.jobs.values() if record.id)
        with BatchClient(service_settings()) as client:
            show_rebuilt(rebuild(client, state_file, manifests, lease_options(lease_ttl, lock_timeout), taken))
        return 0

    return for_each(units_of(paths, state_location, shards), one)


@state.command("list")
@STATE
@FORMAT
def state_list(state_location: str | None, fmt: str) -> int:
    """The managed jobs: name, API, request id, last seen status, last action."""
    from reconciler.render.state import show_jobs

    state_file = lockfile_at(state_location)
    snapshot = state_file.read()
    show_jobs(snapshot.lockfile, state_file.location, fmt, exists=snapshot.etag is not None or bool(snapshot.journal))
    return 0


@state.command("show")
@click.argument("name")
@STATE
@FORMAT
def state_show(name: str, state_location: str | None, fmt: str) -> int:
    """One job's record and its audit trail."""
    from reconciler.render.state import show_job
    from reconciler.state.operations import job

    show_job(name, job(lockfile_at(state_location), name), fmt)
    return 0


@state.command("rm")
@click.argument("name")
@STATE
@LEASE_TTL
@LOCK_TIMEOUT
def state_rm(name: str, state_location: str | None, lease_ttl: float | None, lock_timeout: float) -> int:
    """Forget NAME: its live request is left alone and becomes unmanaged."""
    from reconciler.render.state import show_done
    from reconciler.state.operations import forget

    removed = forget(lockfile_at(state_location), name, lease_options(lease_ttl, lock_timeout))
    show_done(f"Forgot {name}; its request {removed.id or '(none)'} is left as it is.")
    return 0


@state.command("pull")
@STATE
def state_pull(state_location: str | None) -> int:
    """Print the lockfile (with any journal folded in) as JSON."""
    from reconciler.errors import StateError
    from reconciler.render.state import show_lockfile

    state_file = lockfile_at(state_location)
    snapshot = state_file.read()
    if snapshot.etag is None and not snapshot.journal:
        raise StateError(f"there is no lockfile at {state_file.location} yet")
    show_lockfile(snapshot.lockfile)
    return 0


@state.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@STATE
@click.option("--force", is_flag=True, help="Also replace a state of another lineage or a newer serial.")
@LEASE_TTL
@LOCK_TIMEOUT
def state_push(file: str, state_location: str | None, force: bool, lease_ttl: float | None, lock_timeout: float) -> int:
    """Replace the lockfile with FILE (refuses an older serial or another lineage unless --force)."""
    from pathlib import Path

    from reconciler.render.state import show_done
    from reconciler.state.format import decode
    from reconciler.state.operations import push

    incoming = decode(Path(file).read_bytes(), file)
    written = push(lockfile_at(state_location), incoming, force, lease_options(lease_ttl, lock_timeout))
    show_done(f"Pushed {file}: the state is now at serial {written.stored_serial}.")
    return 0


@cli.group()
def lock() -> None:
    """The lease that lets one run at a time change live jobs."""


@lock.command("status")
@STATE
@FORMAT
def lock_status(state_location: str | None, fmt: str) -> int:
    """Who holds the lease, since when, until when (JSON: docs/lock-json.md)."""
    import time

    from reconciler.render.state import show_lease
    from reconciler.state.operations import lease_status

    state_file = lockfile_at(state_location)
    holder, expired = lease_status(state_file, time.time())
    show_lease(holder, state_file.location, expired, fmt)
    return 0


@cli.command("force-unlock")
@click.argument("lease_id")
@STATE
def force_unlock(lease_id: str, state_location: str | None) -> int:
    """Break the lease LEASE_ID (refused if the lease held has another id)."""
    from reconciler.render.state import show_done
    from reconciler.state.lease import force_unlock as unlock

    state_file = lockfile_at(state_location)
    holder = unlock(state_file.store, state_file.key, lease_id)
    show_done(f"Broke lease {holder.id} held by {holder.who} ({holder.operation}).")
    return 0
