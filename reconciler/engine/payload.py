"""What apply sends for an action — a create body, or a new description — made in one place: the
planner makes it to fingerprint the action (`Action.sends`), and apply makes it again just before
sending and refuses when the two differ (DESIGN §4: apply sends what the plan showed). Pure.

The digest is of the exact JSON sent. Sensitive values enter it through a keyed hash (HMAC with
a `seal` derived from the run's OAuth client secret): a secret changed between the plan and the
apply changes the digest, yet a saved plan cannot be used to confirm a guessed secret by anyone
who does not hold the client secret. Without a seal they enter as a constant mask.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

from reconciler.canonical import digest
from reconciler.engine.identity import with_marker
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


def seal(client_secret: str) -> bytes:
    """The key that sensitive values are hashed with in `Action.sends`: the same for the plan and
    the apply of one account, unknown to anyone without its client secret."""
    return hashlib.sha256(b"reconciler:sends\0" + client_secret.encode()).digest()


def sent_digest(sent: dict | str, masked: frozenset[tuple] = frozenset(), key: bytes = b"") -> str:
    """The digest of a create body, or of a description (a string), with the values at `masked`
    paths (("description",) for the description) hashed with `key` (masked without one)."""
    if isinstance(sent, str):
        return digest({"description": _hidden(sent, key) if ("description",) in masked else sent})[:32]
    return digest(_masked(sent, masked, (), key))[:32]


def _masked(value: Any, masked: frozenset[tuple], path: tuple, key: bytes) -> Any:
    if path in masked:
        return _hidden(value, key)
    if isinstance(value, dict):
        return {k: _masked(item, masked, (*path, k), key) for k, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, masked, (*path, i), key) for i, item in enumerate(value)]
    return value


def _hidden(value: Any, key: bytes) -> str:
    if not key:
        return SENSITIVE
    return f"(sensitive:{hmac.new(key, json.dumps(value, sort_keys=True).encode(), 'sha256').hexdigest()[:32]})"
