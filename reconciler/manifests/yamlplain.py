"""Step 1 of loading manifests, its fast path: YAML text → the plain data of each document, with
no location made, straight from the C parser's events (ruamel.yaml.clib: libyaml). A valid
manifest never needs its locations, so this is the bulk of a plan's first run.

It reads only the plain subset on which libyaml agrees with ruamel's pure 1.2 parser, and values
scalars as yamlscalar does; anything else (tabs, anchors, aliases, tags, odd block scalars, merge
keys, duplicate or non-string keys, the limits) and whatever would be an error raises NotPlain,
and yamldoc reads the text with locations instead, which decides and words the error. A property
test holds the two readings to the same documents whenever this one is taken.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.manifests.yamlscalar import KNOWN, MERGE, SHARED_UP_TO, BadScalar, remember

try:
    from _ruamel_yaml import CParser  # ruamel.yaml.clib: libyaml's parser
except ImportError:  # pragma: no cover — the pure parser reads everything, only slower
    CParser = None

MAX_DEPTH = 100  # a manifest nests ~15 levels; GeoJSON adds 4
MAX_NODES = 500_000  # after alias expansion: stops "billion laughs" documents
MAX_DOCUMENTS = 1000  # per file: a repository of more jobs splits them into files

_BLOCK_HEADER = re.compile(r"[|>](?:[+-]?[1-9]?|[1-9][+-])(?:[ ]+#.*|[ ]*)$")


class NotPlain(Exception):
    """The C parser's reading is not trusted for this text; read it with locations."""


def c_readable(text: str) -> bool:
    """Whether the C parser may read `text` at all (it and the 1.2 parser disagree on tabs)."""
    return CParser is not None and "\t" not in text


def plain_block(text: str, event: ScalarEvent, nested: bool) -> bool:
    """Whether a block scalar (`|`, `>`) is one the C parser reads as the 1.2 parser does: not at
    the root, with a plain header, not starting with a blank line (libyaml skips the 1.2 check of
    blank lines above the first content line). Block scalars are few: the text is split per call."""
    if not nested:
        return False
    lines, mark = text.splitlines(), event.start_mark
    following = lines[mark.line + 1] if mark.line + 1 < len(lines) else "x"
    return bool(_BLOCK_HEADER.match(lines[mark.line][mark.column:])) and bool(following.strip())


_NO_KEY = object()  # an open mapping waiting for its next key
_UNSEEN = object()  # a plain scalar's text not in KNOWN yet


def read_plain(text: str) -> list[tuple[Any, int]]:
    """(data, 1-based line where its content starts) of every non-empty document of `text`;
    NotPlain where the reading with locations must decide."""
    if not c_readable(text):
        raise NotPlain
    documents: list[tuple[Any, int]] = []
    stack: list[list] = []  # open collections: [data, pending key]
    root: Any = None
    line = nodes = 0
    parser = CParser(text)
    try:
        for event in iter(parser.get_event, None):
            kind = type(event)
            if kind is ScalarEvent:  # inline, the common case: an untagged plain scalar seen before
                special = event.style or event.anchor or event.ctag is not None
                if (value := _UNSEEN if special else KNOWN.get(event.value, _UNSEEN)) is _UNSEEN:
                    value = _fast_scalar(event, text, stack)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor or event.ctag is not None or len(stack) >= MAX_DEPTH:
                    raise NotPlain
                value = {} if kind is MappingStartEvent else []
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                stack.pop()
                continue
            elif kind is DocumentEndEvent:
                if root is not None:
                    documents.append((root, line))
                root = None
                continue
            elif kind is DocumentStartEvent:
                if len(documents) >= MAX_DOCUMENTS:
                    raise NotPlain
                continue
            elif kind is AliasEvent:
                raise NotPlain
            else:
                continue  # the stream's start and end, a document's start
            nodes += 1
            if nodes > MAX_NODES:
                raise NotPlain
            if not stack:
                root, line = value, event.start_mark.line + 1
            elif type(container := (top := stack[-1])[0]) is list:
                container.append(value)
            elif top[1] is _NO_KEY:
                if type(value) is not str or value in container:
                    raise NotPlain  # the located reading words the error
                top[1] = value
            else:
                container[top[1]] = value
                top[1] = _NO_KEY
            if kind is not ScalarEvent:
                stack.append([value, _NO_KEY])
    finally:
        parser.dispose()
    return documents


def _fast_scalar(event: ScalarEvent, text: str, stack: list) -> Any:
    """A scalar's value on the fast path; NotPlain where the located reading must decide."""
    if event.anchor or event.ctag is not None:
        raise NotPlain
    value, style = event.value, event.style
    if not style:  # plain (untagged, so implicit); read_plain looked it up in KNOWN already
        try:
            value = remember(value)
        except BadScalar:
            raise NotPlain from None  # the located reading says where
        if value is MERGE:
            raise NotPlain
        return value
    if (style == "|" or style == ">") and not plain_block(text, event, bool(stack)):
        raise NotPlain
    return sys.intern(value) if len(value) <= SHARED_UP_TO else value
