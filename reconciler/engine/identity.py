"""Ownership: the marker `[reconciler:NAME]` (reconciler.names) the reconciler appends to the
description of every request it creates. It pairs a live request with its manifest when the
lockfile does not (an interrupted create, a lost lockfile) and is stripped before descriptions
are compared."""

from __future__ import annotations

from reconciler.names import MARKER as _MARKER
from reconciler.names import marker as marker  # re-exported: apply reaches the marker through the engine


def with_marker(description: str, name: str) -> str:
    return f"{description} {marker(name)}" if description else marker(name)


def owner(description: str | None) -> str | None:
    """The manifest name a live description is marked for, if any."""
    match = _MARKER.search(description or "")
    return match.group(1) if match else None


def without_marker(description: str | None) -> str:
    return _MARKER.sub("", description or "")
