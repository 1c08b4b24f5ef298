"""Ownership (DESIGN §2): the marker `[reconciler:NAME]` the reconciler appends to the
description of every request it creates. It pairs a live request with its manifest when the
lockfile does not (an interrupted create, a lost lockfile) and is stripped before descriptions
are compared."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\s*\[reconciler:([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\]\s*$")


def marker(name: str) -> str:
    return f"[reconciler:{name}]"


def with_marker(description: str, name: str) -> str:
    return f"{description} {marker(name)}" if description else marker(name)


def owner(description: str | None) -> str | None:
    """The manifest name a live description is marked for, if any."""
    match = _MARKER.search(description or "")
    return match.group(1) if match else None


def without_marker(description: str | None) -> str:
    return _MARKER.sub("", description or "")
