"""Canonical form of a create body, so that the desired body (from a manifest) and the live one
(as the service echoes it) compare equal when they mean the same: the description is left out
(compared on its own, without the marker), nulls and empty objects dropped, 60 and 60.0 made one
number, values the service fills in by default dropped, and sensitive values replaced by a hash
so they can be compared but never shown.

Shared by the loader (each manifest's digest and spec hash are made once, when it is loaded) and
the engine (the live side, and the diff); pure.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reconciler.batch import CRS84
from reconciler.redaction import digest_of, hide, masked

# (path suffix, default value): a key at the end of such a path holding the default is dropped
_DEFAULTS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("output", "overwrite"), False),
    (("output", "skipExisting"), False),
    (("output", "cogOutput"), False),
    (("output", "createCollection"), False),
    (("instanceType",), "normal"),
    (("bounds", "properties", "crs"), CRS84),
    (("arrayParameters", "order"), "C"),
    (("coordinates", "origin"), "topLeft"),
)
_DEFAULTS_BY_KEY: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
for _suffix, _default in _DEFAULTS:
    _DEFAULTS_BY_KEY.setdefault(_suffix[-1], []).append((_suffix, _default))


def canonical(body: dict, sensitive: frozenset[tuple] = frozenset(), mask: bool = False) -> dict:
    """`sensitive`: paths relative to the body whose values are replaced by their digest (to be
    compared in memory), or with `mask` by a constant (for anything that is stored)."""
    top = {k: v for k, v in body.items() if k != "description"}
    if sensitive:
        top = hide(top, sensitive, masked if mask else digest_of)
    return _clean(top, ()) or {}


def _clean(value: Any, path: tuple) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if type(item) in _AS_IS:
                cleaned = item  # most of a body: no path to build, nothing to descend into
            else:
                cleaned = _clean(item, (*path, key))
                if cleaned is None or cleaned == {}:
                    continue
            if key in _DEFAULTS_BY_KEY and _is_default((*path, key), cleaned):
                continue
            out[key] = cleaned
        return out
    if isinstance(value, list):
        return [_clean(item, (*path, i)) for i, item in enumerate(value)]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


_AS_IS = frozenset({str, int, bool})  # exactly these types are already canonical (a float may not be)


def _is_default(path: tuple, value: Any) -> bool:
    candidates = _DEFAULTS_BY_KEY.get(path[-1])  # most keys have no default: one dict lookup
    if not candidates:
        return False
    return any(path[-len(s):] == s and value == d for s, d in candidates)


_STABLE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)  # parsed data has no cycles


def stable_json(data: Any) -> str:
    """JSON-shaped data as one text: keys sorted, no spaces. Equal texts mean equal data, types included."""
    return _STABLE.encode(data)


def digest(data: Any) -> str:
    """A stable hash of JSON-shaped data."""
    return hashlib.sha256(stable_json(data).encode()).hexdigest()


def desired(api: str, body: dict, sensitive: frozenset[tuple] = frozenset()) -> tuple[str, str]:
    """What a plan compares and records of a manifest's body, made once when it is loaded (and
    kept by the load cache): its request digest (sensitive values as digests, so in memory only)
    and its spec hash, which is the start of that same digest when nothing is sensitive."""
    whole = request_digest(api, canonical(body, sensitive))
    return whole, spec_hash(api, body, sensitive) if sensitive else whole[:32]


def spec_hash(api: str, body: dict, sensitive: frozenset[tuple] = frozenset()) -> str:
    """What the lockfile and saved plans record as `specHash`: the request digest of the canonical
    body with sensitive values masked, so nothing stored can be used to confirm a guessed secret."""
    return request_digest(api, canonical(body, sensitive, mask=True))[:32]


def request_digest(api: str, form: dict) -> str:
    """The digest of a request: its API version and its canonical body (`form`)."""
    return digest({"api": api, "request": form})
