"""Step 1 of loading manifests, its leaves: the value of a plain (unquoted, untagged) YAML scalar,
by the YAML 1.2 rules ruamel.yaml uses, made JSON-shaped: timestamps stay the text written (the
API wants strings), and numbers JSON cannot carry (NaN, infinity) are refused. Both readers of
yamldoc share it, so a scalar means the same whichever reads it.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

from ruamel.yaml.resolver import implicit_resolvers

SHARED_UP_TO = 100  # characters: shorter strings are interned (one copy for 10,000 manifests)
MERGE = object()  # a plain `<<`: a merge key, which manifests do not support

_TAG = "tag:yaml.org,2002:"
_RESOLVERS: dict[str, list[tuple[str, Any]]] = {}
for _versions, _tag, _regexp, _first in implicit_resolvers:
    if (1, 2) in _versions:
        for _char in _first:
            _RESOLVERS.setdefault(_char, []).append((_tag, _regexp))


class BadScalar(ValueError):
    """A plain scalar we cannot use; the reader that has its location says where."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@functools.lru_cache(maxsize=4096)  # keys and common values repeat across manifests
def _resolve(text: str) -> str:
    for tag, regexp in _RESOLVERS.get(text[:1], []) + _RESOLVERS.get(None, []):
        if regexp.match(text):
            return tag[len(_TAG):]
    return "str"


def scalar_value(text: str) -> Any:
    """A plain scalar's value (MERGE for `<<`); raises BadScalar for numbers we cannot use."""
    kind = _resolve(text)
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "merge":
        return MERGE
    if kind not in ("int", "float"):
        return text
    if kind == "int":
        digits = text.replace("_", "")
        try:
            return int(digits, 0) if digits.lstrip("+-")[:2].lower() in ("0x", "0o", "0b") else int(digits)
        except ValueError:
            shown = text if len(text) <= 24 else f"{text[:20]}…"
            raise BadScalar(f"{shown} is not an integer we can use") from None
    number = float(text.replace("_", "").lower().replace(".inf", "inf").replace(".nan", "nan"))
    if not math.isfinite(number):
        raise BadScalar(f"{text} is not a finite number",
                        'JSON has no NaN or infinity; quote it ("NaN") where the API accepts a string')
    return number


KNOWN: dict[str, Any] = {}  # values by text, filled by `remember`; read directly in the hot loop


def remember(text: str) -> Any:
    """`scalar_value(text)`, kept in KNOWN (strings interned) unless it is long or a merge key."""
    value = scalar_value(text)
    if value is MERGE or (type(value) is str and len(value) > SHARED_UP_TO):
        return value
    if len(KNOWN) >= 100_000:  # a bound for long-lived processes, far above a repository's share
        KNOWN.clear()
    value = KNOWN[text] = sys.intern(value) if type(value) is str else value
    return value
