"""The lockfile's JSON format: stable bytes (sorted keys, so equal states are equal files and
diffs are readable), and an upgrade path: each older version has a function that lifts it one
version up; a newer version than this program knows is refused, never guessed at."""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.state.model import CURRENT_VERSION, Lockfile

# version N → function turning a version-N document into a version-(N+1) one
UPGRADES: dict[int, Callable[[dict], dict]] = {
    1: lambda document: {**document, "version": 2},  # 2 adds jobs' sensitivePaths, overrides, previous (none before)
}


def encode(lockfile: Lockfile) -> bytes:
    return (json.dumps(lockfile.model_dump(mode="json", exclude_none=True), indent=1, sort_keys=True) + "\n").encode()


def decode(data: bytes, where: str) -> Lockfile:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise StateError(f"{where} is not JSON: {e}", "restore it from S3 versioning or a backup") from None
    if not isinstance(document, dict) or not isinstance(document.get("version"), int):
        raise StateError(f"{where} is not a reconciler lockfile (no version)")
    document = upgrade(document, where)
    try:
        return Lockfile.model_validate(document)
    except ValidationError as e:
        first = e.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise StateError(f"{where} is not a valid lockfile: {path}: {first['msg']}") from None


def upgrade(document: dict, where: str) -> dict:
    version = document["version"]
    if version > CURRENT_VERSION:
        raise StateError(f"{where} has format version {version}; this reconciler reads up to {CURRENT_VERSION}",
                         "upgrade reconciler (never let an older version rewrite a newer state)")
    while version < CURRENT_VERSION:
        if version not in UPGRADES:
            raise StateError(f"{where} has format version {version}, which cannot be upgraded")
        document = UPGRADES[version](document)
        version = document["version"]
    return document
