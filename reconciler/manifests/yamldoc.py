"""Step 1 of loading manifests: YAML text → documents of plain data, each with the line and
column of every key and value, so any field path can be pointed at in a diagnostic.

ruamel.yaml parses (YAML 1.2, its own implicit-type rules); we build the data from its events,
because manifests are JSON-shaped: string keys, no tags, no merge keys, and scalars as
yamlscalar reads them (timestamps kept as the text written, no NaN). The C parser
(ruamel.yaml.clib) is used when the text stays inside the plain subset on which it agrees with
the pure-Python parser (a property test holds them to it); anchors, tags, tabs, odd block
scalars or a C refusal send the text to the pure parser, which has the last word on what is
valid and words the errors.

A valid manifest never needs its locations, so `read_documents` first tries yamlplain, which
turns the C parser's events straight into plain data (the bulk of a plan's first run); a
document's locations are made by reading its text again here when a diagnostic first asks for
one (`Document.locate`).
"""

from __future__ import annotations

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
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from reconciler.manifests.yamlplain import MAX_DEPTH, MAX_DOCUMENTS, MAX_NODES, CParser, NotPlain, c_readable, plain_block, read_plain
from reconciler.manifests.yamlscalar import MERGE, SHARED_UP_TO, BadScalar, scalar_value


class YamlProblem(Exception):
    """The text is not a usable YAML document. Line and column are 1-based."""

    def __init__(self, line: int, column: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


class Loc(NamedTuple):  # a tuple: made once per YAML node, it must be cheap
    """Where a value starts (0-based), and where its children are: {key: (key Loc, value Loc)} or [Loc]."""

    line: int
    column: int
    children: Any = None


class _Text:
    """The whole text of a file, shared by its documents: the first `locate` of any of them reads
    it again with locations, once for all (per document, a file of many would cost its square)."""

    def __init__(self, text: str):
        self.text = text
        self.locs: list[Loc] | None = None

    def loc(self, index: int) -> Loc:
        if self.locs is None:
            self.locs = [document.loc for document in _located(self.text)]
        return self.locs[index]


@dataclass
class Document:
    data: Any
    index: int  # position of the document in its file, from 0
    line: int  # 1-based line where its content starts
    source: _Text = field(repr=False)  # to find locations again when one is asked for
    loc: Loc | None = field(default=None, repr=False)  # made on the first `locate`, unless read with them

    def locate(self, path: tuple, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key with `at_key`.
        A path that leaves the document stops at the deepest node that exists."""
        if self.loc is None:  # read without locations (the fast path): read again, with them
            self.loc = self.source.loc(self.index)
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
        source = _Text(text)
        return [Document(data, index, line, source) for index, (data, line) in enumerate(read_plain(text))]
    except (YAMLError, NotPlain):
        return _located(text)  # outside the plain subset, or a problem: the located reading decides and words it


def _located(text: str) -> list[Document]:
    """Every non-empty document of `text`, with the location of every node."""
    try:
        return parse(text, fast=True)
    except (YAMLError, NotPlain):
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
    """One parser's reading. The fast (C) one raises NotPlain outside the subset it is trusted with."""
    if fast and not c_readable(text):
        raise NotPlain
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
        self.source = _Text(text)
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
                if len(documents) >= MAX_DOCUMENTS:
                    raise _at(event, f"the file holds more than {MAX_DOCUMENTS} documents",
                              "split the manifests into several files")
                self.root, self.anchors = [], {}
            elif isinstance(event, DocumentEndEvent) and self.root:
                data, loc = self.root[0]
                if data is not None:
                    documents.append(Document(data, len(documents), loc.line + 1, self.source, loc))
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
        if self.fast and event.style in ("|", ">") and not plain_block(self.text, event, bool(self.stack)):
            raise NotPlain
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
            raise NotPlain
        if event.ctag is not None:
            raise _at(event, f"unsupported tag {event.ctag}", "manifests use plain YAML: remove the tag")

    def _alias(self, event: AliasEvent) -> None:
        if self.fast:
            raise NotPlain
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
