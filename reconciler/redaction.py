"""What is secret and how it is kept out of sight (DESIGN §1, §8), in one place for every step.

- Credential keys: a value under one of them is sensitive wherever it appears, in a manifest
  (even written literally) or in a body the service echoes.
- Known secret values: the values `${env:…}` references resolved to, literal credentials, the
  OAuth client secret and token, and the secrets of the environment (`SH_CLIENT_SECRET`, AWS
  keys). Text that came from the service — error messages, descriptions of jobs, a job's error —
  may echo any of them (a rejected body, say): `from_service` replaces each with "(sensitive)"
  and cuts the text to a bound before it is shown or stored.

The registry of values lives in memory for the run and is never written anywhere.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from typing import Any

SENSITIVE = "(sensitive)"
CREDENTIAL_KEYS = frozenset({"accessKey", "secretAccessKey"})  # delivery and GeoPackage credentials
SECRET_KEYS = CREDENTIAL_KEYS | {"client_secret", "access_token", "refresh_token"}
MAX_TEXT = 2048  # characters of service text kept: a message, not a body
MIN_SECRET = 4  # shorter values would mask ordinary words; no credential is that short
_ENVIRONMENT = ("SH_CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


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


class Secrets:
    """Secret values known to this run; `scrub` hides them in a text, as written and as JSON
    escapes them (a service that echoes a body echoes it as JSON)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        forms = {form for value in values if isinstance(value, str) and len(value) >= MIN_SECRET
                 for form in (value, json.dumps(value)[1:-1])}
        with self._lock:
            self._values |= forms

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def scrub(self, text: str) -> str:
        environment = [os.environ.get(name, "") for name in _ENVIRONMENT]
        with self._lock:
            values = self._values | {v for v in environment if len(v) >= MIN_SECRET}
        for value in sorted(values, key=len, reverse=True):  # longest first: one may contain another
            if value in text:
                text = text.replace(value, SENSITIVE)
        return text


KNOWN = Secrets()


def remember(values: Iterable[str]) -> None:
    """Add secret values of this run (resolved references, literal credentials, tokens)."""
    KNOWN.add(values)


def forget() -> None:
    """Start a new run: the values of the last one are no longer known (a command calls this first)."""
    KNOWN.clear()


def scrub(text: str) -> str:
    return KNOWN.scrub(text)


def from_service(text: str | None) -> str | None:
    """Text the service sent, fit to show or store: every known secret hidden, at most MAX_TEXT characters."""
    if text is None:
        return None
    text = scrub(str(text)[: MAX_TEXT * 4])  # a bound first: scrubbing 5 MiB per failure is work for nothing
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
