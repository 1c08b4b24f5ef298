"""The name rule: what a job's `metadata.name` may be, and so also a lockfile's job key, a journal
entry's name and a shard's name (shard names are checked like manifest names: docs/security.md);
and the ownership marker made of a name, `[reconciler:NAME]`, which the reconciler appends to the
description of every request it creates (engine/identity.py reads and writes it).

Defined once, below every package that checks a name or a marker (manifests, state, settings,
engine, operations), so none of them imports another for it. A name travels into S3 keys, markers
in descriptions, messages and CI matrices: the rule keeps it to plain lowercase ASCII on one line.
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 63
NAME_RULE = "a name is 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
MARKER_PREFIX = "[reconciler:"
# a marker at the end of a description, and the name in it
MARKER = re.compile(r"\s*" + re.escape(MARKER_PREFIX) + r"(" + NAME_PATTERN.pattern + r")\]\s*$")


def marker(name: str) -> str:
    """The ownership marker of the job `name`."""
    return f"{MARKER_PREFIX}{name}]"


def is_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME_LENGTH and NAME_PATTERN.fullmatch(value) is not None


def check_name(value: str) -> str:
    """`value` when it follows the name rule; ValueError stating the rule otherwise."""
    if not is_name(value):
        raise ValueError(NAME_RULE)
    return value
