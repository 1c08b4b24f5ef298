"""View of `reconciler shards`: the units every command runs over (the shards of reconciler.toml,
or the one default unit), as a table or as JSON for a CI matrix."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.render import colour_enabled, out, paint, plain

_HEADERS = ("SHARD", "PATHS", "STATE")


def shards_document(entries: Sequence[tuple[str | None, Sequence[str], str | None]]) -> dict:
    """`{"shards": [{"name", "paths", "state"}, …]}`; name null is the default unit (no reconciler.toml)."""
    return {"shards": [{"name": name, "paths": list(paths), "state": state} for name, paths, state in entries]}


def show_shards(entries: Sequence[tuple[str | None, Sequence[str], str | None]], fmt: str) -> None:
    """Print the units: `json` as one object (docs: README "Shards"), anything else a table."""
    if fmt == "json":
        out(json.dumps(shards_document(entries), indent=2, ensure_ascii=False))
        return
    if len(entries) == 1 and entries[0][0] is None:
        _, paths, state = entries[0]
        where = plain(state) if state else "$RECONCILER_STATE (not set)"
        out(f"No reconciler.toml here: every command runs once, over {plain(', '.join(paths))} with the lockfile {where}.")
        return
    rows = [(plain(name or "-"), plain(", ".join(paths)), plain(state or "-")) for name, paths, state in entries]
    widths = [max(len(cells[i]) for cells in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    out(paint(_line(_HEADERS, widths), colour_enabled(), bold=True))
    for cells in rows:
        out(_line(cells, widths))


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
