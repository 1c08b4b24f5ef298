"""Step 1 of loading manifests: YAML text → the plain data of each document, and, when a diagnostic
asks, the line and column of any field path in it. loader.py (step 2) validates the data.

One reading makes the data: ruamel.yaml's parser events, built here into JSON-shaped values —
string keys, no tags, no merge keys, plain scalars resolved by YAML 1.2 (ruamel's own table) except
that timestamps stay the text written (the API wants strings) and NaN and infinity are refused.
Anchors and aliases are allowed, copied and counted against MAX_NODES ("billion laughs"); nesting,
documents per file and values are bounded, and each limit is checked as the events arrive, so a
hostile file is refused after reading no more than the limit.

The events come from libyaml (ruamel.yaml.clib), about ten times faster than the pure-Python
parser. libyaml (0.1.7) cannot read ':' inside a flow plain scalar (`{url: s3://b/p}`), which YAML
1.2 allows, and words its errors tersely: a text it refuses is read by ruamel's pure parser instead,
which reads it or says precisely what is wrong. Either way one parser reads a text, and the same
code turns its events into data.

A valid manifest never needs a location, so none is kept: the first `locate` of a file composes
its text with the parser that read it (ruamel's nodes carry their start marks), once for all its
documents.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import implicit_resolvers

from reconciler.strings import StringPool

try:
    from _ruamel_yaml import CParser  # ruamel.yaml.clib: libyaml
except ImportError:  # pragma: no cover — the pure parser reads everything, only slower
    CParser = None

MAX_DEPTH = 100  # a manifest nests ~15 levels; GeoJSON adds 4
MAX_NODES = 500_000  # values per document, aliases expanded: stops "billion laughs"
MAX_DOCUMENTS = 1000  # per file: a repository of more jobs splits them into files


class YamlProblem(Exception):
    """The text is not a usable YAML document. Line and column are 1-based."""

    def __init__(self, line: int, column: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


class _Text:
    """The text of a file, shared by its documents, and the parser that read it. Its nodes are
    composed on the first `locate` of any document, once for all (per document, a file of many
    would cost its square); that parser composes whatever it read, so this cannot fail."""

    def __init__(self, text: str, pure: bool):
        self.text, self.pure = text, pure
        self.roots: list | None = None

    def root(self, number: int):
        if self.roots is None:
            self.roots = list(YAML(typ="safe", pure=self.pure).compose_all(self.text))
        return self.roots[number]


@dataclass
class Document:
    data: Any
    index: int  # position among the file's documents that hold something, from 0
    line: int  # 1-based line where its content starts
    source: _Text = field(repr=False)
    number: int = field(repr=False)  # position in the YAML stream, empty documents counted

    def locate(self, path: tuple, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key with `at_key`.
        A path that leaves the document stops at the deepest node that exists."""
        node = self.source.root(self.number)
        mark, key_mark = node.start_mark, None
        for part in path:
            if isinstance(node, MappingNode):
                pair = next(((key, value) for key, value in node.value if key.value == part), None)
                if pair is None:
                    break
                key, node = pair
                key_mark = holder = key.start_mark
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                key_mark, holder, node = None, node.start_mark, node.value[part]
            else:
                break
            # An empty value has no position of its own (libyaml puts it after the key, the pure parser
            # on the next line): use its key's, or its list's.
            empty = isinstance(node, ScalarNode) and node.value == "" and not node.style
            mark = holder if empty else node.start_mark
        target = key_mark if at_key and key_mark is not None else mark
        return target.line + 1, target.column + 1


def read_documents(text: str, strings: StringPool | None = None) -> list[Document]:
    """Every document of `text` that holds something; YamlProblem for anything we cannot use.
    Locations are found when a diagnostic first asks for one (`Document.locate`). With `strings`
    (one pool for every file of a load), equal short strings are one object in all the documents
    made with it (`_plain_value`'s bounded cache shares only plain scalars, while it holds them;
    a manifest written as JSON quotes every one). A first plan of 10,000 seeded manifests peaked
    at 143 MB with this, 165 MB without."""
    strings = StringPool() if strings is None else strings
    if CParser is not None:
        parser = CParser(text)
        try:
            return _build(iter(parser.get_event, None), _Text(text, pure=False), strings)  # None after the stream's end
        except YAMLError:
            pass  # libyaml refused it: the pure parser reads it, or words what is wrong
        finally:
            parser.dispose()
    try:
        return _build(YAML(typ="safe", pure=True).parse(text), _Text(text, pure=True), strings)
    except MarkedYAMLError as e:
        raise _problem(e, text) from None
    except ReaderError as e:
        before = text[: e.position]
        line, column = before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1
        raise YamlProblem(line, column, f"control character U+{e.character:04X} is not allowed in YAML",
                          'remove it, or write it as an escape ("\\x07") in a double-quoted string') from None
    except YAMLError as e:
        raise YamlProblem(1, 1, f"not valid YAML: {str(e).splitlines()[0]}") from None


_NO_KEY = object()  # an open mapping waiting for its next key


@dataclass(slots=True)
class _Open:
    """A mapping or sequence whose events are still arriving."""

    data: Any
    anchor: str | None
    start: Any  # the ruamel Mark where it starts
    first: int  # the node count when it opened: its size is the count at its end, less this, plus one
    keys: dict | None  # a mapping's keys so far → the Mark of each (to name a duplicate's first); None for a list
    key: Any = _NO_KEY  # a mapping's key waiting for its value


def _build(events, source: _Text, strings: StringPool) -> list[Document]:
    """The documents of an event stream as plain data; YamlProblem where it is not a manifest's."""
    documents: list[Document] = []
    nodes = number = 0  # values are counted over the file: MAX_NODES bounds what one file can make
    for event in events:
        if type(event) is not DocumentStartEvent:
            continue  # the stream's start and end
        if len(documents) >= MAX_DOCUMENTS:
            raise _at(event, f"the file holds more than {MAX_DOCUMENTS} documents", "split the manifests into several files")
        root, line, nodes = _document(events, nodes, strings)
        if root is not None:
            documents.append(Document(root, len(documents), line, source, number))
        number += 1
    return documents


def _document(events, nodes: int, strings: StringPool) -> tuple[Any, int, int]:
    """The root value of the document whose events come next (up to its end), the 1-based line
    where it starts, and the count of values made in the file so far; its strings from `strings`."""
    stack: list[_Open] = []
    anchors: dict[str, tuple[Any, int, int]] = {}  # name → (value, size, 1-based line)
    root, line = None, 0
    try:
        for event in events:
            kind, size = type(event), 1
            if kind is ScalarEvent:
                if event.ctag is not None:
                    raise _tagged(event)
                value = strings(event.value if event.style else _plain_value(event.value))
                if event.anchor:
                    _remember(anchors, event.anchor, value, 1, event.start_mark)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.ctag is not None:
                    raise _tagged(event)
                if len(stack) >= MAX_DEPTH:
                    raise _at(event, f"the document nests deeper than {MAX_DEPTH} levels")
                value = {} if kind is MappingStartEvent else []
            elif isinstance(event, CollectionEndEvent):
                done = stack.pop()
                if done.anchor:
                    _remember(anchors, done.anchor, done.data, nodes - done.first + 1, done.start)
                continue
            elif kind is AliasEvent:
                value, size = _alias(event, anchors, nodes)
            else:
                break  # the document's end
            nodes += size
            if nodes > MAX_NODES:
                raise _at(event, f"the document expands to more than {MAX_NODES} values (aliases?)")
            if not stack:
                root, line = value, event.start_mark.line + 1
            elif (top := stack[-1]).keys is None:
                top.data.append(value)
            elif top.key is _NO_KEY:
                if type(value) is not str or value in top.keys or value == "<<":
                    _check_key(top.keys, value, event)
                top.key, top.keys[value] = value, event.start_mark
            else:
                top.data[top.key] = value
                top.key = _NO_KEY
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                stack.append(_Open(value, event.anchor, event.start_mark, nodes, {} if kind is MappingStartEvent else None))
    except _BadScalar as e:
        raise _at(event, *e.args) from None
    return root, line, nodes


def _tagged(event) -> YamlProblem:
    return _at(event, f"unsupported tag {event.ctag}", "manifests use plain YAML: remove the tag")


def _check_key(keys: dict[str, Any], key: Any, event) -> None:
    """Refuses a key a manifest cannot have; a quoted "<<" (or one from an alias) is only a string."""
    if type(event) is ScalarEvent and key == "<<" and not event.style:
        raise _at(event, "merge keys (<<) are not supported", "write the fields out")
    if type(key) is not str:
        raise _at(event, "keys must be strings", "quote the key")
    if key in keys:
        raise _at(event, f"duplicate key {key!r} (first at line {keys[key].line + 1})", "remove one of them")


def _remember(anchors: dict, name: str, value: Any, size: int, start) -> None:
    """An anchored value (complete: an alias inside its own anchor is unknown), for its aliases.
    YAML lets a name be anchored again, but libyaml's composer, which `locate` uses, refuses it."""
    if name in anchors:
        raise YamlProblem(start.line + 1, start.column + 1,
                          f"the anchor &{name} is defined twice (first at line {anchors[name][2]})",
                          "give each anchor its own name")
    anchors[name] = (value, size, start.line + 1)


def _alias(event, anchors: dict, nodes: int) -> tuple[Any, int]:
    """A copy of the anchored value (the data stays a tree, as JSON), once it is known to fit."""
    if event.anchor not in anchors:
        raise _at(event, f"unknown alias *{event.anchor}", "an alias must follow its &anchor (and not be inside it)")
    value, size, _ = anchors[event.anchor]
    if nodes + size > MAX_NODES:
        raise _at(event, f"the document expands to more than {MAX_NODES} values (aliases?)")
    return _copy(value), size


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, immutable scalars), much cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _at(event, message: str, hint: str | None = None) -> YamlProblem:
    return YamlProblem(event.start_mark.line + 1, event.start_mark.column + 1, message, hint)


# --- plain scalars: YAML 1.2 by ruamel's resolvers, made JSON-shaped -------------------------

_RESOLVERS: dict[str | None, list[tuple[str, Any]]] = {}
for _versions, _tag, _regexp, _first in implicit_resolvers:
    if (1, 2) in _versions:
        for _char in _first:
            _RESOLVERS.setdefault(_char, []).append((_tag.rsplit(":", 1)[1], _regexp))


class _BadScalar(ValueError):
    """A plain scalar we cannot use: (message, hint); _build says where."""


@functools.lru_cache(maxsize=4096)  # keys and common values repeat across manifests; values are immutable
def _plain_value(text: str) -> Any:
    """The value of a plain scalar; _BadScalar for a number JSON cannot carry. A merge key (`<<`)
    is its text here: only _build knows whether it stands where a key does."""
    kind = next((tag for tag, regexp in _RESOLVERS.get(text[:1], []) if regexp.match(text)), "str")
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "int":
        digits = text.replace("_", "")
        try:
            return int(digits, 0) if digits.lstrip("+-")[:2].lower() in ("0x", "0o", "0b") else int(digits)
        except ValueError:
            raise _BadScalar(f"{text if len(text) <= 24 else text[:20] + '…'} is not an integer we can use", None) from None
    if kind == "float":
        number = float(text.replace("_", "").lower().replace(".inf", "inf").replace(".nan", "nan"))
        if not math.isfinite(number):
            raise _BadScalar(f"{text} is not a finite number",
                             'JSON has no NaN or infinity; quote it ("NaN") where the API accepts a string')
        return number
    return text  # strings, timestamps as written, and `<<`


# --- syntax errors, worded from the pure parser's ---------------------------------------------

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
