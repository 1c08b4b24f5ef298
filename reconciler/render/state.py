"""Views of recorded state: the lockfile's jobs, one job's audit trail, the lease (as JSON too:
docs/lock-json.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.render import colour_enabled, out, paint, plain
from reconciler.state.format import encode
from reconciler.state.lease import LeaseInfo
from reconciler.state.model import JobState, Lockfile


def show_jobs(lockfile: Lockfile, location: str, fmt: str, exists: bool = True) -> None:
    if fmt == "json":
        out(json.dumps({name: _job_json(job) for name, job in sorted(lockfile.jobs.items())}, indent=2))
        return
    colour = colour_enabled()
    if not exists:
        out(f"{location}: no lockfile yet (the first apply creates it)")
        return
    out(paint(f"{location}  lineage {lockfile.lineage}  serial {lockfile.serial}  {len(lockfile.jobs)} job(s)",
              colour, dim=True))
    rows = [("NAME", "API", "REQUEST ID", "STATUS", "RESTARTS", "LAST ACTION")]
    for name, job in sorted(lockfile.jobs.items()):
        last = job.history[-1] if job.history else None
        rows.append((name, job.api, job.id or "-", job.status or "-", str(job.restarts),
                     f"{last.action} {last.result} {last.at:%Y-%m-%d %H:%M}" if last else "-"))
    _table(rows)


def show_job(name: str, job: JobState, fmt: str) -> None:
    if fmt == "json":
        out(json.dumps(_job_json(job), indent=2))
        return
    out(f"{plain(name)}: {job.api} request {plain(job.id or '(none yet)')}, last seen {plain(job.status or '-')}"
        + (f" at {job.observedAt:%Y-%m-%d %H:%M:%S}" if job.observedAt else ""))
    out(f"  spec hash {job.specHash}, restarts {job.restarts}")
    if job.intent:
        out(f"  in flight: {job.intent.action} by {plain(job.intent.who)} at {job.intent.at:%Y-%m-%d %H:%M:%S}")
    rows = [("WHEN", "WHO", "ACTION", "RESULT", "REQUEST", "REVISION")]
    rows += [(f"{h.at:%Y-%m-%d %H:%M:%S}", h.who, h.action, h.result, h.requestId or "-", (h.revision or "-")[:12])
             for h in job.history]
    _table(rows, indent="  ")


def show_lockfile(lockfile: Lockfile) -> None:
    out(encode(lockfile).decode(), nl=False)


def show_lease(holder: LeaseInfo | None, location: str, expired: bool, fmt: str = "text") -> None:
    if fmt == "json":
        from reconciler.render.status import show_json

        show_json(lease_document(holder, location, expired))
        return
    if holder is None:
        out(f"{location}: not locked")
        return
    state = " (expired: the next run takes it over)" if expired else ""
    out(f"{location}: locked{state}")
    for label, value in (("lease id", holder.id), ("holder", holder.who), ("operation", holder.operation),
                         ("since", holder.created), ("expires", holder.expires)):
        out(f"  {label:<10} {plain(value)}")  # written by another run: shown, never obeyed


def lease_document(holder: LeaseInfo | None, location: str, expired: bool) -> dict:
    """The JSON of docs/lock-json.md. The holder's fields were written by another run: known
    secrets are hidden in them, as in every view."""
    from reconciler.redaction import scrub

    fields = None if holder is None else {
        "id": scrub(holder.id), "operation": scrub(holder.operation), "who": scrub(holder.who),
        "created": scrub(holder.created), "expires": scrub(holder.expires), "expired": expired}
    return {"formatVersion": 1, "state": scrub(location), "holder": fields}


def show_done(message: str) -> None:
    out(message)


def _job_json(job: JobState) -> dict:
    return job.as_json()


def _table(rows: Sequence[tuple[str, ...]], indent: str = "") -> None:
    rows = [tuple(plain(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
