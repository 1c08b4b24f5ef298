"""What apply sends for an action — a create body, or a new description — made in one place: the
planner makes it to fingerprint the action (`Action.sends`), and apply makes it again just before
sending and refuses when the two differ (DESIGN §4: apply sends what the plan showed). Pure.

The digest is of the exact JSON sent, with sensitive values masked: it proves what is sent
without letting a stored plan confirm a guessed secret.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.engine.identity import with_marker
from reconciler.engine.normalize import digest
from reconciler.redaction import SENSITIVE


def create_body(body: dict, description: str, name: str, overrides: tuple[tuple[str, Any], ...] = ()) -> dict:
    """The create body of a manifest: its request, the description with the ownership marker, and
    the plan's overrides (dotted paths, e.g. a re-run's `output.skipExisting`)."""
    sent = with_overrides(body, overrides)
    sent["description"] = with_marker(description, name)
    return sent


def with_overrides(body: dict, overrides: tuple[tuple[str, Any], ...]) -> dict:
    """A copy of `body` with the values at dotted paths set."""
    sent = copy.deepcopy(body)
    for path, value in overrides:
        target = sent
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return sent


def sent_digest(sent: dict | str, masked: frozenset[tuple] = frozenset()) -> str:
    """The digest of a create body, or of a description (a string), with the values at `masked`
    paths (("description",) for the description) replaced by a mask."""
    if isinstance(sent, str):
        return digest({"description": SENSITIVE if ("description",) in masked else sent})[:32]
    return digest(_masked(sent, masked, ()))[:32]


def _masked(value: Any, masked: frozenset[tuple], path: tuple) -> Any:
    if path in masked:
        return SENSITIVE
    if isinstance(value, dict):
        return {key: _masked(item, masked, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, masked, (*path, i)) for i, item in enumerate(value)]
    return value
