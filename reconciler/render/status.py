"""View of `reconciler status` and of what import and rebuild did."""

from __future__ import annotations

import json
from dataclasses import asdict

from reconciler.render import colour_enabled, out, paint, plain

_COLOURS = {"DONE": "green", "PROCESSING": "cyan", "ANALYSING": "cyan", "PARTIAL": "yellow", "FAILED": "red",
            "GONE": "red", "STOPPED": "yellow", "CANCELED": "yellow"}


def show_statuses(rows, fmt: str) -> None:
    if fmt == "json":
        out(json.dumps([asdict(r) for r in rows], indent=2))
        return
    colour = colour_enabled()
    table = [("NAME", "API", "WANTED", "STATUS", "PROGRESS", "COST PU", "REQUEST ID", "LAST ACTION")]
    for r in rows:
        table.append((r.name, r.api, r.desired or "(removed)", r.status,
                      f"{r.completion:.0f}%" if r.completion is not None else "-",
                      f"{r.cost_pu:,.1f}" if r.cost_pu is not None else "-", r.job_id or "-", r.last_action or "-"))
    table = [tuple(plain(cell) for cell in row) for row in table]  # statuses and actions quote the service
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        if i:
            cells[3] = paint(cells[3], colour, fg=_COLOURS.get(row[3]))
        out("  ".join(cells).rstrip())


def show_imported(name: str, imported, write: str | None) -> None:
    if not imported.adopted:
        out(imported.manifest_yaml, nl=False)
        out(f"# Nothing was adopted: to manage {imported.job.api} request {imported.job.id} as {name}, "
            f"run again with --write FILE (a file under your manifests).", err=True)
        return
    out(f"Imported {imported.job.api} request {imported.job.id} ({imported.job.status}) as {name}.")
    if not imported.marked:
        out("  The ownership marker is added to its description by the next apply (the service refuses it now).")
    if imported.secrets:
        out("  Its credentials were replaced by references; set " + ", ".join(imported.secrets) + ".")
    if write:
        out(f"  Manifest written to {write}.")
    else:
        out(imported.manifest_yaml, nl=False)


def show_rebuilt(rebuilt) -> None:
    for name, job_id in rebuilt.added:
        out(f"+ {name}: {job_id}")
    for name in rebuilt.kept:
        out(f"  {name}: already recorded")
    for name, recorded, marked in rebuilt.conflicts:
        out(f"! {name}: the lockfile says {recorded}, a live request marked for it is {marked}; kept the lockfile's")
    for name, job_id in rebuilt.elsewhere:
        out(f"  {name}: {job_id} is recorded by another lockfile of this repository; left to it")
    out(f"Rebuilt: {len(rebuilt.added)} added, {len(rebuilt.kept)} kept, {len(rebuilt.conflicts)} conflict(s).")
