"""View of `reconciler status` and of what import and rebuild did."""

from __future__ import annotations

import json
import math

from reconciler.render import colour_enabled, out, paint, plain

STATUS_COLOURS = {"DONE": "green", "PROCESSING": "cyan", "ANALYSING": "cyan", "PARTIAL": "yellow", "FAILED": "red",
                  "GONE": "red", "STOPPED": "yellow", "CANCELED": "yellow"}


def show_statuses(rows, fmt: str) -> None:
    """The table (text) or the versioned JSON of docs/status-json.md."""
    if fmt == "json":
        from reconciler.operations.status import FORMAT_VERSION

        document = {"formatVersion": FORMAT_VERSION, "jobs": [_json_row(r) for r in rows]}
        out(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
        return
    colour = colour_enabled()
    table = [("NAME", "API", "WANTED", "STATUS", "PROGRESS", "TILES", "PU SO FAR", "ESTIMATE PU", "REQUEST ID",
              "LAST ACTION")]
    for r in rows:
        table.append((r.name, r.api or "-", r.desired or _NO_STATE[r.manifest], r.status,
                      f"{math.floor(r.percent)}%" if r.percent is not None else "-",
                      f"{r.tiles_done}/{r.tiles_total}" if r.tiles_done is not None and r.tiles_total else "-",
                      _pu(r.pu_so_far), f"{_pu(r.estimate_pu)} {r.estimate_source}" if r.estimate_pu is not None else "-",
                      r.job_id or "-", f"{r.last.action} {r.last.result} {r.last.at:%Y-%m-%d %H:%M}" if r.last else "-"))
    table = [tuple(plain(cell) for cell in row) for row in table]  # statuses and actions quote the service
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        if i:
            cells[3] = paint(cells[3], colour, fg=STATUS_COLOURS.get(row[3]))
        out("  ".join(cells).rstrip())
    if any(r.manifest == "unresolved" for r in rows):
        out("(needs env): the manifest is valid only once its ${env:…} variables are set; shown from the lockfile.")


_NO_STATE = {"removed": "(removed)", "unresolved": "(needs env)", "loaded": "-"}


def _pu(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def _json_row(r) -> dict:
    last = r.last
    return {
        "name": r.name, "api": r.api, "manifest": r.manifest, "desiredState": r.desired, "jobId": r.job_id,
        "status": r.status, "percentDone": r.percent, "tilesDone": r.tiles_done, "tilesTotal": r.tiles_total,
        "costPU": r.pu_so_far, "estimatePU": r.estimate_pu, "estimateSource": r.estimate_source,
        "lastAction": {"action": last.action, "result": plain(last.result), "at": last.at.isoformat(),
                       "requestId": last.requestId} if last else None,
    }


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
