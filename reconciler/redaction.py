"""What is secret and how it is kept out of sight (docs/security.md), in one place for every step.

- Credential keys: a value under one of them is sensitive wherever it appears, in a manifest
  (even written literally) or in a body the service echoes.
- Known secret values: the values `${env:…}` references resolved to, literal credentials, the
  OAuth client secret and token, and the secrets of the environment (`SH_CLIENT_SECRET`, AWS
  keys). Text that came from the service — error messages, descriptions of jobs, a job's error —
  may echo any of them (a rejected body, say): `from_service` replaces each with "(sensitive)"
  and cuts the text to a bound before it is shown or stored.
- A value is hidden in every form a server may echo it in (docs/security.md): as written, URL-encoded as
  a form body carries it (the token request's client secret), JSON-escaped, and combinations.

The registry of values lives in memory for the run and is never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, overload
from urllib.parse import quote, quote_plus

SENSITIVE = "(sensitive)"
CREDENTIAL_KEYS = frozenset({"accessKey", "secretAccessKey"})  # delivery and GeoPackage credentials
SECRET_KEYS = CREDENTIAL_KEYS | {"client_secret", "access_token", "refresh_token"}
MAX_TEXT = 2048  # characters of service text kept: a message, not a body
MIN_SECRET = 4  # shorter values would mask ordinary words; no credential is that short
_ENVIRONMENT = ("SH_CLIENT_SECRET", "RECONCILER_PLAN_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# Where a value sits in JSON-shaped data: its keys and list indexes from the root, e.g.
# ("spec", "request", "output", "delivery", "s3", "url"). Sensitive values are named by such paths.
KeyPath = tuple[str | int, ...]


def hide(value: Any, paths: frozenset[KeyPath], replacement: Callable[[Any], str], at: KeyPath = ()) -> Any:
    """A copy of JSON-shaped `value` with the value at each of `paths` (tuples of keys and list
    indexes, from `value`'s root; `at` is where `value` sits) replaced by `replacement(value)`. The
    one walker by path of the project: the canonical form compares and stores bodies with it, and
    a plan's digests key what apply sends with it."""
    if at in paths and value is not None:
        return replacement(value)
    if isinstance(value, dict):
        return {k: hide(item, paths, replacement, (*at, k)) for k, item in value.items()}
    if isinstance(value, list):
        return [hide(item, paths, replacement, (*at, i)) for i, item in enumerate(value)]
    return value


def masked(value: Any) -> str:
    """A sensitive value as anything stored or shown holds it."""
    return SENSITIVE


def digest_of(value: Any) -> str:
    """A sensitive value as a plan compares it in memory (equal values, equal digests); never stored
    or shown, since an unkeyed digest of a secret confirms a guess."""
    return "(sensitive:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16] + ")"


def keyed_digest(key: bytes) -> Callable[[Any], str]:
    """A sensitive value as a published digest holds it: an HMAC that only the key's holder can
    make (masked without a key)."""
    if not key:
        return masked
    return lambda value: f"(sensitive:{hmac.new(key, json.dumps(value, sort_keys=True).encode(), 'sha256').hexdigest()[:32]})"


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of JSON-shaped `value` with every sensitive part masked: the values of credential
    keys (`key`: the one `value` itself sits under), and values already hidden ("(sensitive…")."""
    if (key in SECRET_KEYS and value is not None) or (isinstance(value, str) and value.startswith("(sensitive")):
        return SENSITIVE
    if isinstance(value, dict):
        return {str(k): redact(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, key) for v in value]
    return value


_HEX_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}")


def forms(value: str) -> frozenset[str]:
    """Every form in which a server may echo `value`: as written; URL-encoded as a form body
    carries it (`quote_plus`, which requests and oauthlib use) or as a path or query part
    (`quote`); JSON-escaped (a body echoed inside a JSON answer), of each of those; and each with
    its hex escapes in lower and in upper case, since servers differ (`%2f`, `\\u00E9`)."""
    encoded = {value, quote_plus(value, safe=""), quote(value, safe="")}
    escaped = {form for text in encoded
               for form in (text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1])}
    return frozenset(cased for form in escaped for cased in (
        form, _HEX_ESCAPE.sub(_hex_lower, form), _HEX_ESCAPE.sub(_hex_upper, form)))


def _hex_lower(escape: re.Match[str]) -> str:
    return escape.group(0).lower()


def _hex_upper(escape: re.Match[str]) -> str:
    text = escape.group(0)
    return text[:2] + text[2:].upper() if text.startswith("\\") else text.upper()  # JSON has no "\\U" escape


class Secrets:
    """Secret values known to this run; `scrub` hides them in a text in every form of `forms`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._environment: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())
        self._ordered: tuple[str, ...] | None = None  # both of the above, as `_known` returns them

    def add(self, values: Iterable[str]) -> None:
        found = {form for value in values if isinstance(value, str) and len(value) >= MIN_SECRET
                 for form in forms(value)}
        with self._lock:
            if not found <= self._values:
                self._values |= found
                self._ordered = None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._ordered = None

    def scrub(self, text: str, cut: bool = False) -> str:
        """`text` with every known secret hidden; with `cut` (the text was cut short), also a
        beginning of one at its very end."""
        values = self._known()
        for value in values:
            if value in text:
                text = text.replace(value, SENSITIVE)
        if cut:
            for value in values:
                start = next((len(text) - n for n in range(len(value) - 1, MIN_SECRET - 1, -1)
                              if text.endswith(value[:n])), None)
                if start is not None:
                    text = text[:start] + SENSITIVE
        return text

    def _known(self) -> tuple[str, ...]:
        """Every form of every secret, longest first (one may contain another). The environment's
        are read on every call (a test or a caller may change them); the list is made again only
        when the values change: scrubbing runs on every text a view shows."""
        environment = tuple(os.environ.get(name, "") for name in _ENVIRONMENT)
        with self._lock:
            if self._environment[0] != environment:
                self._environment = (environment, frozenset(
                    form for value in environment if len(value) >= MIN_SECRET for form in forms(value)))
                self._ordered = None
            if self._ordered is None:
                self._ordered = tuple(sorted(self._values | self._environment[1], key=len, reverse=True))
            return self._ordered


KNOWN = Secrets()


def remember(values: Iterable[str]) -> None:
    """Add secret values of this run (resolved references, literal credentials, tokens)."""
    KNOWN.add(values)


def forget() -> None:
    """Start a new run: the values of the last one are no longer known (a command calls this first)."""
    KNOWN.clear()


def scrub(text: str) -> str:
    return KNOWN.scrub(text)


@overload
def from_service(text: str) -> str: ...
@overload
def from_service(text: str | None) -> str | None: ...
def from_service(text: str | None) -> str | None:
    """Text the service sent, fit to show or store: every known secret hidden, at most MAX_TEXT characters."""
    if text is None:
        return None
    whole = str(text)
    # A bound first: scrubbing 5 MiB per failure is work for nothing. A text cut short, here or
    # before (it ends in "…"), may end in the first part of a secret: that is hidden too.
    if len(whole) > MAX_TEXT * 4:
        text = KNOWN.scrub(whole[: MAX_TEXT * 4], cut=True)
    elif whole.endswith("…"):
        text = KNOWN.scrub(whole[:-1], cut=True) + "…"
    else:
        text = KNOWN.scrub(whole)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
