"""What apply sends for an action — a create body, or a new description — made in one place: the
planner makes it to fingerprint the action (`Action.sends`), and apply makes it again just before
sending and refuses when the two differ (apply sends what the plan showed: docs/plan-file.md). Pure.

The digest is of the exact JSON sent, keyed with the plan's digest key (an HMAC derived from the
plan key, operations/planfile.py): a secret changed between the plan and the apply changes the
digest, yet nothing published (a saved plan, a pull request comment) lets anyone without the key
confirm a guessed secret, or even a guessed body. Sensitive values are hashed apart first, with
the same key, so the whole is never the plain JSON of a secret. Without a key (tests of the pure
core) sensitive values enter as a constant mask and the whole as a plain hash.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from reconciler.canonical import stable_json
from reconciler.engine.identity import with_marker
from reconciler.redaction import KeyPath, hide, keyed_digest

Overrides = tuple[tuple[str, Any], ...]  # (dotted path, value) set on top of a body, e.g. a re-run's


def create_body(body: dict[str, Any], description: str, name: str, overrides: Overrides = ()) -> dict[str, Any]:
    """The create body of a manifest: its request, the description with the ownership marker, and
    the plan's overrides (dotted paths, e.g. a re-run's `output.skipExisting`)."""
    sent = with_overrides(body, overrides)
    sent["description"] = with_marker(description, name)
    return sent


def with_overrides(body: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """A copy of `body` with the values at dotted paths set."""
    sent = copy.deepcopy(body)
    for path, value in overrides:
        target = sent
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return sent


def keyed(key: bytes, data: Any) -> str:
    """A digest of JSON-shaped data that only the holder of `key` can make (HMAC-SHA256 of its
    stable JSON); a plain hash without a key."""
    hasher = _hasher(key)
    hasher.update(stable_json(data).encode())
    return hasher.hexdigest()[:32]


def keyed_list(key: bytes, items: Sequence[Any], batch: int = 1000) -> str:
    """`keyed(key, list(items))`, hashed a batch of items at a time: the stable JSON of a list is
    "[", its items' joined by ",", then "]", so the digest is the same without the whole text (for
    100,000 items, tens of MB held at once while it is made)."""
    hasher = _hasher(key)
    hasher.update(b"[")
    for start in range(0, len(items), batch):
        hasher.update((b"," if start else b"") + stable_json(items[start:start + batch])[1:-1].encode())
    hasher.update(b"]")
    return hasher.hexdigest()[:32]


def _hasher(key: bytes) -> hmac.HMAC | hashlib._Hash:
    return hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()


def sent_digest(sent: dict[str, Any] | str, masked: frozenset[KeyPath] = frozenset(), key: bytes = b"") -> str:
    """The digest of a create body, or of a description (a string), keyed with `key`, with the
    values at `masked` paths (("description",) for the description) hashed apart first."""
    if isinstance(sent, str):
        return keyed(key, hide({"description": sent}, masked, keyed_digest(key)))
    return keyed(key, hide(sent, masked, keyed_digest(key)))
