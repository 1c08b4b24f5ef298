"""Canonical form of a create body, so that the desired body (from a manifest) and the live one
(as the service echoes it) compare equal when they mean the same: the description is left out
(compared on its own, without the marker), nulls and empty objects dropped, 60 and 60.0 made one
number, values the service fills in by default dropped, and sensitive values replaced by a hash
so they can be compared but never shown."""

from __future__ import annotations

import hashlib
import json
from typing import Any

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

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


def sensitive_digest(value: Any) -> str:
    return "(sensitive:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16] + ")"


def canonical(body: dict, sensitive: frozenset[tuple] = frozenset(), mask: bool = False) -> dict:
    """`sensitive`: paths relative to the body whose values are replaced by their digest (to be
    compared in memory), or with `mask` by a constant (for anything that is stored)."""
    top = {k: v for k, v in body.items() if k != "description"}
    return (_clean(top, (), sensitive, mask) if sensitive else _plain(top, ())) or {}


def _clean(value: Any, path: tuple, sensitive: frozenset[tuple], mask: bool) -> Any:
    if path in sensitive and value is not None:
        return "(sensitive)" if mask else sensitive_digest(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            cleaned = _clean(item, (*path, key), sensitive, mask)
            if cleaned is None or cleaned == {} or _is_default((*path, key), cleaned):
                continue
            out[key] = cleaned
        return out
    if isinstance(value, list):
        if all(type(item) in (int, float) for item in value):  # coordinates: the bulk of a large area
            return [int(item) if type(item) is float and item.is_integer() and abs(item) < 2**53 else item
                    for item in value]
        return [_clean(item, (*path, i), sensitive, mask) for i, item in enumerate(value)]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _plain(value: dict, path: tuple) -> dict:
    """`_clean` of a dict with nothing sensitive, as a plan runs it for every job: leaves are
    handled in place, and a path is built only for containers, not for each of the many leaves."""
    out = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is int or kind is bool:
            cleaned = item
        elif kind is dict:
            cleaned = _plain(item, (*path, key))
            if not cleaned:
                continue
        elif kind is list:
            cleaned = _plain_list(item, (*path, key))
        elif kind is float:
            cleaned = int(item) if item.is_integer() and abs(item) < 2**53 else item
        elif item is None:
            continue
        else:  # not JSON-shaped (a subclass, say): the general walk decides
            cleaned = _clean(item, (*path, key), frozenset(), False)
            if cleaned is None or cleaned == {}:
                continue
        if key in _DEFAULTS_BY_KEY and _is_default((*path, key), cleaned):
            continue
        out[key] = cleaned
    return out


def _plain_list(value: list, path: tuple) -> list:
    if all(type(item) in (int, float) for item in value):  # coordinates: the bulk of a large area
        return [int(item) if type(item) is float and item.is_integer() and abs(item) < 2**53 else item
                for item in value]
    return [_plain(item, (*path, i)) if type(item) is dict else _clean(item, (*path, i), frozenset(), False)
            for i, item in enumerate(value)]


_DEFAULTS_BY_KEY: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
for _suffix, _default in _DEFAULTS:
    _DEFAULTS_BY_KEY.setdefault(_suffix[-1], []).append((_suffix, _default))


def _is_default(path: tuple, value: Any) -> bool:
    candidates = _DEFAULTS_BY_KEY.get(path[-1])  # most keys have no default: one dict lookup
    return bool(candidates) and any(path[-len(s):] == s and value == d for s, d in candidates)


_STABLE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)  # parsed data has no cycles


def stable_json(data: Any) -> str:
    """JSON-shaped data as one text: keys sorted, no spaces. Equal texts mean equal data, types included."""
    return _STABLE.encode(data)


def digest(data: Any) -> str:
    """A stable hash of JSON-shaped data."""
    return text_digest(stable_json(data))


def text_digest(text: str) -> str:
    """The hash `digest` gives data whose stable_json is `text`."""
    return hashlib.sha256(text.encode()).hexdigest()


def desired(api: str, body: dict, sensitive: frozenset[tuple] = frozenset()) -> tuple[str, str]:
    """What a plan compares and records of a manifest's body, made once when it is loaded (and
    kept by the load cache): the digest of its canonical form (sensitive values as digests, so
    in memory only) and its spec hash."""
    form = canonical(body, sensitive)
    text = stable_json(form)
    return text_digest(text), spec_hash(api, body, sensitive) if sensitive else hash_canonical(api, form, text)


def spec_hash(api: str, body: dict, sensitive: frozenset[tuple] = frozenset()) -> str:
    """What the lockfile and saved plans record as `specHash`: the API version and the canonical
    body with sensitive values masked, so nothing stored can be used to confirm a guessed secret."""
    return hash_canonical(api, canonical(body, sensitive, mask=True))


def hash_canonical(api: str, body: dict, text: str | None = None) -> str:
    """`text`, the body's stable_json when already made, saves encoding it again: the sorted keys
    put "api" before "request", so this is exactly the stable_json of {"api", "request"}."""
    if text is None:
        return digest({"api": api, "request": body})[:32]
    return text_digest('{"api":' + json.dumps(api) + ',"request":' + text + "}")[:32]
