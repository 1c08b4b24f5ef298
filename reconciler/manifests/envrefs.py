"""`${env:NAME}` references in manifest strings: found, checked, optionally resolved.

Every string holding a reference is sensitive (shown as `(sensitive)`, never stored in clear);
so are delivery credentials written literally. Resolution happens at plan/apply time, or in
`validate --resolve-env`; a reference always resolves to a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.redaction import CREDENTIAL_KEYS, remember

REFERENCE = re.compile(r"\$\{env:([^}]*)\}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What the run itself holds (its credentials, the plan key, the CI's tokens) is never a manifest's
# to read: a pull request, planned with those in the environment, could otherwise point a field
# at them and look for the value in an error or a side effect (docs/security.md).
RESERVED_PREFIXES = ("SH_", "RECONCILER_", "GITHUB_", "ACTIONS_", "RUNNER_")
RESERVED = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                      "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "GH_TOKEN",
                      "OAUTHLIB_INSECURE_TRANSPORT"})


def reserved(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_PREFIXES)


@dataclass
class EnvScan:
    sensitive: set[tuple] = field(default_factory=set)
    unresolved: set[tuple] = field(default_factory=set)  # paths whose value is still a reference
    literal_secrets: set[tuple] = field(default_factory=set)  # credentials written in clear
    problems: list[tuple[tuple, str, str | None]] = field(default_factory=list)  # (path, message, hint)
    unset: list[tuple[tuple, str]] = field(default_factory=list)  # (path, variable) left unresolved, not set


def may_refer(text: str) -> bool:
    """False when YAML `text` can hold no reference and no credential key, so scanning its data
    would find nothing: neither spelled out anywhere, and no escape that could spell one."""
    return "${env:" in text or "ccessKey" in text or "\\" in text


def strings(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path, text) of every string in `data`, depth first in document order."""
    stack = [(path, data)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, str):
            yield at, value
        elif isinstance(value, dict):
            stack.extend(((*at, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*at, i), item) for i, item in reversed(list(enumerate(value))))


def scan(data: Any, environ: Mapping[str, str] | None, resolve: bool = True) -> tuple[Any, EnvScan]:
    """Find references (and literal secrets) in `data`; with `environ`, return a copy with them
    resolved, or (`resolve=False`) leave them and list in `unset` those `environ` cannot resolve."""
    result = EnvScan()
    replacements: dict[tuple, str] = {}
    for path, text in strings(data):
        if "${env:" not in text:
            if path and path[-1] in CREDENTIAL_KEYS:
                result.sensitive.add(path)
                result.literal_secrets.add(path)
                remember([text])
            continue
        result.sensitive.add(path)
        names = REFERENCE.findall(text)
        bad = [n for n in names if not VARIABLE.fullmatch(n)]
        if bad or text.count("${env:") != len(names):
            result.problems.append((path, f"malformed reference in {text!r}", "write ${env:NAME} with NAME of letters, digits and _"))
            continue
        if own := next((n for n in names if reserved(n)), None):
            result.problems.append((path, f"${{env:{own}}} names a variable of the reconciler's own (its credentials, "
                                          "settings or CI tokens), which a manifest may not read",
                                    "give the value its own variable (e.g. DELIVERY_SECRET_KEY)"))
            continue
        if environ is None or not resolve:
            result.unresolved.add(path)
            if environ is not None:
                result.unset.extend((path, n) for n in dict.fromkeys(names) if n not in environ)
            continue
        missing = [n for n in names if n not in environ]
        if missing:
            result.unresolved.add(path)
            result.problems.append((path, f"environment variable {missing[0]} is not set", f"export {missing[0]} before running"))
            continue
        remember(environ[n] for n in names)  # the service may echo them: every output hides them
        replacements[path] = REFERENCE.sub(lambda m: environ[m.group(1)], text)
    return (_replace(data, replacements) if replacements else data), result


def _replace(data: Any, replacements: dict[tuple, str], path: tuple = ()) -> Any:
    if path in replacements:
        return replacements[path]
    if isinstance(data, dict):
        return {k: _replace(v, replacements, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace(v, replacements, (*path, i)) for i, v in enumerate(data)]
    return data
