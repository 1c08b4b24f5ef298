"""View of `reconciler status` and of what import and rebuild did, as text and as JSON
(docs/status-json.md, docs/import-json.md); and how every JSON view of a run over units is
written: one document on stdout, with an entry per shard when there are shards."""

from __future__ import annotations

import json
import math

from reconciler.batch.statuses import GONE, Status
from reconciler.render import colour_enabled, out, paint, plain

STATUS_COLOURS = {Status.DONE: "green", Status.PROCESSING: "cyan", Status.ANALYSING: "cyan", Status.PARTIAL: "yellow",
                  Status.FAILED: "red", GONE: "red", Status.STOPPED: "yellow", Status.CANCELED: "yellow"}


def show_statuses(rows, fmt: str) -> None:
    """The table (text) or the versioned JSON of docs/status-json.md."""
    if fmt == "json":
        show_json(status_document(rows))
        return
    colour = colour_enabled()
    table: list[tuple[str, ...]] = [("NAME", "API", "WANTED", "STATUS", "PROGRESS", "TILES", "PU SO FAR",
                                     "ESTIMATE PU", "REQUEST ID", "LAST ACTION")]
    for r in rows:
        table.append((r.name, r.api or "-", r.desired or _NO_STATE[r.manifest], r.status,
                      f"{math.floor(r.percent)}%" if r.percent is not None else "-",
                      f"{r.tiles_done}/{r.tiles_total}" if r.tiles_done is not None and r.tiles_total else "-",
                      f"{_pu(r.pu_estimated)} est." if r.pu_estimated is not None else _pu(r.pu_so_far),
                      f"{_pu(r.estimate_pu)} {r.estimate_source}" if r.estimate_pu is not None else "-",
                      r.job_id or "-", f"{r.last.action} {r.last.result} {r.last.at:%Y-%m-%d %H:%M}" if r.last else "-"))
    table = [tuple(plain(cell) for cell in row) for row in table]  # statuses and actions quote the service
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if i:
            cells[3] = paint(cells[3], colour, fg=STATUS_COLOURS.get(row[3]))
        out("  ".join(cells).rstrip())
    for note in _notes(rows):
        out(note)


_NO_STATE = {"removed": "(removed)", "unresolved": "(needs env)", "unreadable": "(not read)", "loaded": "-"}


def _notes(rows) -> list[str]:
    """What the table's marks mean, for the marks it shows."""
    notes = []
    if any(r.manifest == "unresolved" for r in rows):
        notes.append("(needs env): the manifest is valid only once its ${env:…} variables are set; shown from the lockfile.")
    if any(r.pu_estimated is not None for r in rows):
        notes.append("est.: a v1 job's PU so far, estimated as the share of its tiles processed × the service's "
                     "estimate (v1 reports no spending).")
    read = [f"{plain(r.name)} ({plain(r.file)})" for r in rows if r.elsewhere and r.manifest != "unreadable"]
    if read:
        notes.append("Declared outside the paths read, read from the file the lockfile records: " + ", ".join(read) + ".")
    notes += [f"{plain(r.name)}: declared in {plain(r.file)}, not read here: it has errors (`reconciler validate "
              f"{plain(r.file)}`)." for r in rows if r.manifest == "unreadable"]
    return notes


def _pu(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def status_document(rows) -> dict:
    """The JSON of docs/status-json.md."""
    from reconciler.operations.status import FORMAT_VERSION

    return {"formatVersion": FORMAT_VERSION, "jobs": [_json_row(r) for r in rows]}


def _json_row(r) -> dict:
    last = r.last
    return {
        "name": r.name, "api": r.api, "manifest": r.manifest, "file": r.file, "desiredState": r.desired,
        "jobId": r.job_id, "status": r.status, "percentDone": r.percent, "tilesDone": r.tiles_done,
        "tilesTotal": r.tiles_total, "costPU": r.pu_so_far, "costPUEstimated": r.pu_estimated,
        "estimatePU": r.estimate_pu, "estimateSource": r.estimate_source,
        "lastAction": {"action": last.action, "result": plain(last.result), "at": last.at.isoformat(),
                       "requestId": last.requestId} if last else None,
    }


def show_json(document: dict) -> None:
    """One versioned JSON document on stdout, as every JSON view writes it: keys sorted, two-space
    indentation, UTF-8, and no NaN or infinity (which JSON does not have)."""
    from reconciler.render.phrases import finite

    out(json.dumps(finite(document), indent=2, sort_keys=True, ensure_ascii=False))


def show_documents(entries: list[tuple[str | None, dict | Exception | None]]) -> None:
    """The one document of a JSON command run per unit, from (shard, its document, its error, or
    None when it has nothing to say): without shards, the unit's own document; with them,
    `{"formatVersion": 1, "shards": [...]}`, each entry the shard's document without its
    formatVersion (or `{"error": …}`), with `shard` (docs/apply-json.md)."""
    if entries and entries[0][0] is None:
        if isinstance(document := entries[0][1], dict):
            show_json(document)
        return
    shards = []
    for shard, document in entries:
        if isinstance(document, Exception):
            from reconciler.redaction import scrub

            hint = getattr(document, "hint", None)
            document = {"error": {"message": scrub(getattr(document, "message", str(document))),
                                  "hint": scrub(hint) if hint else None, "exitCode": getattr(document, "exit_code", 1)}}
        if document is not None:
            shards.append({**{k: v for k, v in document.items() if k != "formatVersion"}, "shard": shard})
    show_json({"formatVersion": 1, "shards": shards})


def show_imported(name: str, imported, write: str | None, fmt: str = "text") -> None:
    if fmt == "json":
        show_json(import_document(name, imported, write))
        return
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


def import_document(name: str, imported, write: str | None) -> dict:
    """The JSON of docs/import-json.md: the request, its manifest, what it expects, what was done."""
    from reconciler.redaction import scrub

    job = imported.job
    return {
        "formatVersion": 1,
        "name": name,
        "request": {"id": job.id, "api": job.api, "status": scrub(job.status)},
        "manifest": scrub(imported.manifest_yaml),
        "variables": sorted(imported.secrets),
        "adopted": imported.adopted,
        "marked": imported.marked,
        "written": write,
    }


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
