"""Step 1 of loading manifests: YAML text → documents of plain data, each with the line and
column of every key and value, so any field path can be pointed at in a diagnostic.

ruamel.yaml parses (YAML 1.2, its own implicit-type rules); we build the data from its events,
because manifests are JSON-shaped: string keys, no tags, no merge keys, and scalars as
yamlscalar reads them (timestamps kept as the text written, no NaN). The C parser
(ruamel.yaml.clib) is used when the text stays inside the plain subset on which it agrees with
the pure-Python parser (a property test holds them to it); anchors, tags, tabs, odd block
scalars or a C refusal send the text to the pure parser, which has the last word on what is
valid and words the errors.

A valid manifest never needs its locations, so the C parser's events first go straight into
plain data (`_data_only`, the bulk of a plan's first run); a document's locations are made by
reading its text again when a diagnostic first asks for one (`Document.locate`).
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.manifests.yamlscalar import KNOWN, MERGE, SHARED_UP_TO, BadScalar, remember, scalar_value

try:
    from _ruamel_yaml import CParser  # ruamel.yaml.clib: libyaml's parser
except ImportError:  # pragma: no cover — the pure parser reads everything, only slower
    CParser = None

MAX_DEPTH = 100  # a manifest nests ~15 levels; GeoJSON adds 4
MAX_NODES = 500_000  # after alias expansion: stops "billion laughs" documents

_BLOCK_HEADER = re.compile(r"[|>](?:[+-]?[1-9]?|[1-9][+-])(?:[ ]+#.*|[ ]*)$")


class YamlProblem(Exception):
    """The text is not a usable YAML document. Line and column are 1-based."""

    def __init__(self, line: int, column: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


class _NotPlain(Exception):
    """The C parser's reading is not trusted for this text; parse it with the pure parser."""


class Loc(NamedTuple):  # a tuple: made once per YAML node, it must be cheap
    """Where a value starts (0-based), and where its children are: {key: (key Loc, value Loc)} or [Loc]."""

    line: int
    column: int
    children: Any = None


@dataclass
class Document:
    data: Any
    index: int  # position of the document in its file, from 0
    line: int  # 1-based line where its content starts
    text: str = field(repr=False)  # the whole file, to find locations again when one is asked for
    loc: Loc | None = field(default=None, repr=False)  # made on the first `locate`, unless read with them

    def locate(self, path: tuple, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key with `at_key`.
        A path that leaves the document stops at the deepest node that exists."""
        if self.loc is None:  # read without locations (the fast path): read again, with them
            self.loc = _located(self.text)[self.index].loc
        loc, key_loc = self.loc, None
        for part in path:
            children = loc.children
            if isinstance(children, dict) and part in children:
                key_loc, loc = children[part]
            elif isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
                key_loc, loc = None, children[part]
            else:
                break
        target = key_loc if at_key and key_loc is not None else loc
        return target.line + 1, target.column + 1


def read_documents(text: str) -> list[Document]:
    """Every non-empty document of `text`; raises YamlProblem for anything we cannot use.
    Locations are found when first asked for (`Document.locate`): a valid manifest never needs them."""
    try:
        return _data_only(text)
    except (YAMLError, _NotPlain):
        return _located(text)  # outside the plain subset, or a problem: the located reading decides and words it


def _located(text: str) -> list[Document]:
    """Every non-empty document of `text`, with the location of every node."""
    try:
        return parse(text, fast=True)
    except (YAMLError, _NotPlain):
        pass  # the pure parser decides, and words the error
    try:
        return parse(text, fast=False)
    except MarkedYAMLError as e:
        raise _problem(e, text) from None
    except ReaderError as e:
        before = text[: e.position]
        line, column = before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1
        raise YamlProblem(line, column, f"control character U+{e.character:04X} is not allowed in YAML",
                          'remove it, or write it as an escape ("\\x07") in a double-quoted string') from None
    except YAMLError as e:
        raise YamlProblem(1, 1, f"not valid YAML: {str(e).splitlines()[0]}") from None


def parse(text: str, fast: bool) -> list[Document]:
    """One parser's reading. The fast (C) one raises _NotPlain outside the subset it is trusted with."""
    if fast and not _c_readable(text):
        raise _NotPlain
    events = _c_events(text) if fast else _pure_parser().parse(text)
    try:
        return _Builder(text, fast).build(events)
    finally:
        events.close()  # resets the reused parser, also when the build stopped half-way


def _c_events(text: str):
    """The C parser's events, straight from it: YAML.parse would first make a loader class (a
    new type per call, and cyclic garbage) that only composing and constructing use."""
    parser = CParser(text)
    try:
        yield from iter(parser.get_event, None)  # None after the stream's end
    finally:
        parser.dispose()


def _c_readable(text: str) -> bool:
    """Whether the C parser may read `text` at all (it and the 1.2 parser disagree on tabs)."""
    return CParser is not None and "\t" not in text


def _plain_block(text: str, event: ScalarEvent, nested: bool) -> bool:
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


def _data_only(text: str) -> list[Document]:
    """The fast path: the C parser's events straight into plain data, no location made. It reads
    what the located builder reads (a property test holds them to it) and raises _NotPlain at
    anything else: anchors, tags, odd block scalars, merge keys, and whatever would be an error."""
    if not _c_readable(text):
        raise _NotPlain
    documents: list[Document] = []
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
                    raise _NotPlain
                value = {} if kind is MappingStartEvent else []
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                stack.pop()
                continue
            elif kind is DocumentEndEvent:
                if root is not None:
                    documents.append(Document(root, len(documents), line, text))
                root = None
                continue
            elif kind is AliasEvent:
                raise _NotPlain
            else:
                continue  # the stream's start and end, a document's start
            nodes += 1
            if nodes > MAX_NODES:
                raise _NotPlain
            if not stack:
                root, line = value, event.start_mark.line + 1
            elif type(container := (top := stack[-1])[0]) is list:
                container.append(value)
            elif top[1] is _NO_KEY:
                if type(value) is not str or value in container:
                    raise _NotPlain  # the located reading words the error
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
    """A scalar's value on the fast path; _NotPlain where the located reading must decide."""
    if event.anchor or event.ctag is not None:
        raise _NotPlain
    value, style = event.value, event.style
    if not style:  # plain (untagged, so implicit)
        known = KNOWN.get(value, _UNSEEN)
        if known is not _UNSEEN:
            return known
        try:
            value = remember(value)
        except BadScalar:
            raise _NotPlain from None  # the located reading says where
        if value is MERGE:
            raise _NotPlain
        return value
    if (style == "|" or style == ">") and not _plain_block(text, event, bool(stack)):
        raise _NotPlain
    return sys.intern(value) if len(value) <= SHARED_UP_TO else value


_PARSERS = threading.local()


def _pure_parser() -> YAML:
    """One YAML object per thread: making one costs more than parsing a manifest."""
    cached = getattr(_PARSERS, "pure", None)
    if cached is None:
        cached = _PARSERS.pure = YAML(typ="safe", pure=True)
    return cached


_HINTS = {
    "found character '\\t' that cannot start any token": "YAML indents with spaces; replace the tabs",
    "mapping values are not allowed here": "check the indentation, or quote a value that contains ': '",
    "could not find expected ':'": "a key needs ':' after it; check the indentation of this block",
}


def _problem(e: MarkedYAMLError, text: str) -> YamlProblem:
    if e.context == "while scanning a quoted scalar" and e.context_mark is not None:
        mark = e.context_mark  # where the quote opens, not where the file ends
        return YamlProblem(mark.line + 1, mark.column + 1, "YAML syntax: this quoted string is never closed",
                           "add the closing quote")
    mark = e.problem_mark or e.context_mark
    problem = (e.problem or e.context or "invalid YAML").strip()
    message = f"YAML syntax: {problem}"
    if e.context and e.problem:
        message += f" ({e.context.strip()})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return YamlProblem(line, column, message, _HINTS.get(problem) or _unclosed_quote(text, line))


def _unclosed_quote(text: str, error_line: int) -> str | None:
    """A double quote left open earlier is closed by a later one, and the error shows up far
    from the cause: name the first line above the error whose quotes do not pair up."""
    for number, line in enumerate(text.splitlines()[: error_line - 1], 1):
        if line.lstrip().startswith("#"):
            continue
        if (line.count('"') - line.count('\\"')) % 2:
            return f'line {number} opens a " that it does not close'
    return None


@dataclass(slots=True)
class _Frame:
    """An open mapping or sequence while its events arrive."""

    data: Any
    loc: Loc
    anchor: str | None
    size: int = 1  # nodes in the subtree, for alias expansion
    key: Any = None
    key_loc: Loc | None = None
    first_line: dict = field(default_factory=dict)


class _Builder:
    def __init__(self, text: str, fast: bool):
        self.text, self.fast = text, fast
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, Loc, int]] = {}
        self.root: list[tuple[Any, Loc]] = []
        self.nodes = 0

    def build(self, events) -> list[Document]:
        documents: list[Document] = []
        for event in events:
            if isinstance(event, ScalarEvent):
                value, loc = self._scalar(event)
                self._add(value, loc, event.anchor, 1)
            elif isinstance(event, (MappingStartEvent, SequenceStartEvent)):
                self._open(event)
            elif isinstance(event, CollectionEndEvent):
                frame = self.stack.pop()
                self._add(frame.data, frame.loc, frame.anchor, frame.size, counted=True)
            elif isinstance(event, AliasEvent):
                self._alias(event)
            elif isinstance(event, DocumentStartEvent):
                self.root, self.anchors = [], {}
            elif isinstance(event, DocumentEndEvent) and self.root:
                data, loc = self.root[0]
                if data is not None:
                    documents.append(Document(data, len(documents), loc.line + 1, self.text, loc))
        return documents

    def _open(self, event) -> None:
        self._check_plain(event)
        if len(self.stack) >= MAX_DEPTH:
            raise _at(event, f"the document nests deeper than {MAX_DEPTH} levels")
        mark = event.start_mark
        if isinstance(event, MappingStartEvent):
            frame = _Frame({}, Loc(mark.line, mark.column, {}), event.anchor)
        else:
            frame = _Frame([], Loc(mark.line, mark.column, []), event.anchor)
        self.stack.append(frame)
        self.nodes += 1

    def _add(self, value: Any, loc: Loc, anchor: str | None, size: int, counted: bool = False) -> None:
        if not counted:
            self.nodes += size
        if self.nodes > MAX_NODES:
            raise YamlProblem(loc.line + 1, loc.column + 1, f"the document expands to more than {MAX_NODES} values (aliases?)")
        if anchor:
            self.anchors[anchor] = (value, loc, size)
        if not self.stack:
            self.root.append((value, loc))
            return
        frame = self.stack[-1]
        frame.size += size
        if isinstance(frame.data, list):
            frame.data.append("<<" if value is MERGE else value)
            frame.loc.children.append(loc)
        elif frame.key_loc is None:
            self._key(frame, value, loc)
        else:
            frame.data[frame.key] = "<<" if value is MERGE else value
            frame.loc.children[frame.key] = (frame.key_loc, loc)
            frame.key = frame.key_loc = None

    def _key(self, frame: _Frame, key: Any, loc: Loc) -> None:
        if key is MERGE:
            raise YamlProblem(loc.line + 1, loc.column + 1, "merge keys (<<) are not supported", "write the fields out")
        if not isinstance(key, str):
            raise YamlProblem(loc.line + 1, loc.column + 1, "keys must be strings", "quote the key")
        if key in frame.first_line:
            raise YamlProblem(loc.line + 1, loc.column + 1,
                              f"duplicate key {key!r} (first at line {frame.first_line[key]})", "remove one of them")
        frame.first_line[key] = loc.line + 1
        frame.key, frame.key_loc = key, loc

    def _scalar(self, event: ScalarEvent) -> tuple[Any, Loc]:
        self._check_plain(event)
        if self.fast and event.style in ("|", ">") and not _plain_block(self.text, event, bool(self.stack)):
            raise _NotPlain
        mark = event.start_mark
        loc = Loc(mark.line, mark.column)
        if event.value == "" and event.implicit[0] and self.stack:
            # An empty value has no position of its own (the parsers disagree); use its key's or list's.
            frame = self.stack[-1]
            loc = frame.key_loc if isinstance(frame.data, dict) and frame.key_loc else Loc(frame.loc.line, frame.loc.column)
        try:
            value = scalar_value(event.value) if event.implicit[0] else event.value
        except BadScalar as e:
            raise YamlProblem(loc.line + 1, loc.column + 1, e.message, e.hint) from None
        if type(value) is str and len(value) <= SHARED_UP_TO:
            value = sys.intern(value)  # keys and common values: one string for 10,000 manifests
        return value, loc

    def _check_plain(self, event) -> None:
        if self.fast and (event.anchor or event.ctag is not None):
            raise _NotPlain
        if event.ctag is not None:
            raise _at(event, f"unsupported tag {event.ctag}", "manifests use plain YAML: remove the tag")

    def _alias(self, event: AliasEvent) -> None:
        if self.fast:
            raise _NotPlain
        if event.anchor not in self.anchors:
            raise _at(event, f"unknown alias *{event.anchor}", "an alias must follow its &anchor (and not be inside it)")
        value, loc, size = self.anchors[event.anchor]
        self._add(plain_copy(value), loc, None, size)


def _at(event, message: str, hint: str | None = None) -> YamlProblem:
    return YamlProblem(event.start_mark.line + 1, event.start_mark.column + 1, message, hint)


def plain_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, immutable scalars), much cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    return value
