"""The lockfile's JSON format: stable bytes (sorted keys, so equal states are equal files and
diffs are readable), and an upgrade path: each older version has a function that lifts it one
version up; a newer version than this program knows is refused, never guessed at.

Reading is strict (docs/lockfile.md): a stored document names its version (an integer), its lineage (a
UUID), its serial and journal position and its jobs, nothing else; the model checks every value.
A document that fails is refused with one line naming the first field at fault, before anything
is planned or written: the lockfile is the one record of which request is whose, and a value read
leniently ("7" as 7, true as 1, a missing lineage as a fresh one) would be acted on."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, NoReturn

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.state.model import CURRENT_VERSION, Lockfile
from reconciler.strings import StringPool

# version N → function turning a version-N document into a version-(N+1) one
UPGRADES: dict[int, Callable[[dict], dict]] = {
    1: lambda document: {**document, "version": 2},  # 2 adds jobs' sensitivePaths, rerunOf, previous (none before)
    2: lambda document: {**document, "version": 3},  # 3 adds jobs' manifest `file` (unknown before)
}
# What a stored lockfile holds once upgraded (the model has defaults for a new one, made in code)
REQUIRED = ("version", "lineage", "serial", "journalSeq", "jobs")
_SHOWN = 60  # characters of a field name quoted in an error (names come from the file)


def encode(lockfile: Lockfile) -> bytes:
    return (json.dumps(lockfile.model_dump(mode="json", exclude_none=True), indent=1, sort_keys=True) + "\n").encode()


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def strict_json_loads(data: bytes | str) -> Any:
    """The JSON value in `data`, refusing what `json.loads` would let through silently: a key repeated
    in one object, at any depth (the last would win unseen, and other readers may take the first).
    ValueError with a one-line message otherwise (DuplicateKey naming the key, cut short; nesting too
    deep to read is a ValueError too). For every file that is read strictly: lockfiles, journal
    entries, saved plans."""
    try:
        return json.loads(data, object_pairs_hook=_Objects())
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


class _Objects:
    """Makes each JSON object of one document: refuses a repeated key, and holds equal short
    strings once (`json` shares only keys; a lockfile repeats the same few values in every job
    and history entry)."""

    def __init__(self) -> None:
        self._pool = StringPool()

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        pool = self._pool
        document = {key: pool(value) for key, value in pairs}
        if len(document) < len(pairs):  # rare: look for the culprit only then (a lockfile may hold 100,000 objects)
            counts = Counter(key for key, _ in pairs)
            key = next(key for key, _ in pairs if counts[key] > 1)
            raise DuplicateKey(f"the key {repr(key[:_SHOWN])}{'…' if len(key) > _SHOWN else ''} appears twice in one object")
        return document


# A job and its history are dataclasses, the lockfile a model (reconciler.state.model): pydantic words
# the same problem differently for each, and a reader should see one wording.
SAME_WORDS = {"unexpected_keyword_argument": "Extra inputs are not permitted", "missing_argument": "Field required"}


def json_text(data: bytes, where: str) -> str:
    """`data` (read from `where`) as text, in the encoding `json.loads` would find in it; StateError
    otherwise. A caller that lets go of `data` before `decode` holds the file once, not twice, while
    it is parsed (a lockfile of 100,000 jobs is about 55 MB)."""
    try:
        return data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError as e:
        raise _not_json(where, e) from None


def decode(data: bytes | str, where: str) -> Lockfile:
    """The lockfile in `data` (read from `where`), upgraded to the current version; StateError otherwise."""
    try:
        document = strict_json_loads(data)
    except DuplicateKey as e:
        raise StateError(f"{where} is not a valid lockfile: {e}",
                         "nothing was changed; fix the file, or restore it from S3 versioning or a backup") from None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _not_json(where, e) from None
    if not isinstance(document, dict) or "version" not in document:
        raise StateError(f"{where} is not a reconciler lockfile (no version)")
    if type(document["version"]) is not int:  # not a bool, a float or a string that looks like one
        _invalid(where, "version", f"should be an integer, not {_kind(document['version'])}")
    document = upgrade(document, where)
    if missing := next((name for name in REQUIRED if name not in document), None):
        _invalid(where, missing, "Field required")
    if not _is_uuid(lineage := document["lineage"]):
        got = repr(lineage[:_SHOWN]) if isinstance(lineage, str) else _kind(lineage)
        _invalid(where, "lineage", f"should be a UUID (lowercase, with hyphens), not {got}")
    try:
        return Lockfile.model_validate(document)
    except ValidationError as e:
        first = e.errors()[0]
        problem = SAME_WORDS.get(first["type"], first["msg"])
        if first["type"].endswith("_type") or first["type"] == "value_error":
            problem += f", not {_kind(first['input'])}"
        _invalid(where, ".".join(_shown(str(p)) for p in first["loc"]), problem)


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


def _not_json(where: str, error: ValueError) -> StateError:
    return StateError(f"{where} is not JSON: {error}", "restore it from S3 versioning or a backup")


def _invalid(where: str, field: str, problem: str) -> NoReturn:
    raise StateError(f"{where} is not a valid lockfile: {field}: {problem}",
                     "nothing was changed; fix the file, or restore it from S3 versioning or a backup")


def _is_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _kind(value: object) -> str:
    """What a JSON value is, in JSON's words (the value itself may be huge or a secret)."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(text: str) -> str:
    """A field name from the file (a job's name), safe on one line: quoted when it is not plain, and cut short."""
    if text.isprintable() and " " not in text and len(text) <= _SHOWN:
        return text
    return repr(text[:_SHOWN]) + ("…" if len(text) > _SHOWN else "")
