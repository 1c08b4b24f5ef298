"""Turns pydantic validation errors into field paths and plain messages for diagnostics.

pydantic reports a location that mixes field names with union-member tags; we keep only the
parts that exist in the document (plus a missing field's name), word the message for a YAML
author, and suggest the nearest field name for a typo.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reconciler.redaction import SENSITIVE

_YAML_TYPE = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "a mapping", list: "a list"}

_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")  # the words of pydantic's "'a', 'b' or 'c'"

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


@dataclass(frozen=True)
class FieldError:
    path: tuple
    message: str
    hint: str | None
    at_key: bool  # point at the key (unknown or missing field) rather than the value
    kind: str


def translate(error: Mapping[str, Any], data: Any, model: type[BaseModel],
              hidden: frozenset[tuple] = frozenset()) -> FieldError:
    """`hidden`: paths whose values are sensitive; a message never quotes them."""
    loc, kind = tuple(error["loc"]), error["type"]
    path, node = _existing_path(loc, data)
    if path in hidden:
        error = {**error, "input": SENSITIVE}
    hint = None
    if kind == "missing":
        field = loc[-1]
        return FieldError((*path, field), f"required field `{field}` is missing", None, True, kind)
    if kind == "extra_forbidden":
        field = loc[-1]
        allowed = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(field), sorted(allowed), n=1, cutoff=0.6) if allowed else []
        if close:
            hint = f"did you mean `{close[0]}`?"
        elif allowed:
            hint = "allowed here: " + ", ".join(sorted(allowed))
        return FieldError(path, f"unknown field `{field}`", hint, True, kind)
    if loc and loc[-1] == "[key]":  # a mapping key failed: point at the key itself
        message = error["msg"].removeprefix("Value error, ")
        return FieldError(path, message[:1].lower() + message[1:], None, True, kind)
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_describe(error.get('input'))}"
    elif kind == "literal_error":
        message = f"expected {error['ctx']['expected']}, got {_describe(error.get('input'))}"
        hint = _nearest_word(error.get("input"), _LITERAL.findall(error["ctx"]["expected"]))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        field = ctx.get("discriminator", "type").strip("'")
        expected = ctx.get("expected_tags")
        message = f"`{field}` must be one of {expected}" if expected else f"`{field}` is required here"
        if kind == "union_tag_not_found" or field not in (node or {}):
            return FieldError((*path, field), message, None, True, kind)
        hint = _nearest_word(node[field], _LITERAL.findall(expected or ""))  # quotes only allowed words
        path = (*path, field)
    elif kind == "invalid_api":
        return FieldError(("spec", "api"), "spec.api must be v1 or v2", None, False, kind)
    else:
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        message = message[:1].lower() + message[1:]
        hint = (error.get("ctx") or {}).get("hint")  # a rule's own (reconciler.batch.models.base.problem)
    return FieldError(path, message, hint, False, kind)


def _nearest_word(given: Any, allowed: list[str]) -> str | None:
    """`did you mean …?` for a misspelt fixed word: the same word in another case, else a close one
    (closer than for field names: short words of one vocabulary look alike, e.g. NRT1h and NRTI)."""
    if not isinstance(given, str) or not allowed:
        return None
    same = [word for word in allowed if word.lower() == given.lower()]
    if same:
        return f"did you mean `{same[0]}`?"
    scores = {word: difflib.SequenceMatcher(None, given, word).ratio() for word in allowed}
    best = max(scores.values())
    close = [word for word in allowed if scores[word] == best] if best >= 0.75 else []
    return "did you mean " + " or ".join(f"`{word}`" for word in close) + "?" if close else None


def _existing_path(loc: tuple, data: Any) -> tuple[tuple, Any]:
    """The parts of `loc` that exist in `data` (union tags dropped), and the node they reach."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path), node


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kind = _YAML_TYPE.get(type(value))
    if kind in ("a string", "an integer", "a number", "a boolean"):
        text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        return f"{kind} {text[:40]}"
    return kind or type(value).__name__


def _fields_at(model: type[BaseModel], loc: tuple) -> set[str]:
    """The field names (aliases) of the model that `loc` reaches, following union tags."""
    current: Any = model
    for part in loc:
        member = unwrap(current, part)
        if member is not unwrap(current, None):
            current = member  # `part` was a union tag: it chose the member
            continue
        current = member
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return set()
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return set()
    current = unwrap(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or n for n, f in current.model_fields.items()}
    return set()


def unwrap(annotation: Any, tag: Any) -> Any:
    """Strip Annotated and Optional; pick the union member named by `tag` when there is a choice."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
            return _member_by_tag(members, tag) or annotation
        return annotation


def _member_by_tag(members: list[Any], tag: Any) -> Any:
    for member in members:
        metadata = typing.get_args(member)[1:] if typing.get_origin(member) is typing.Annotated else ()
        if any(getattr(m, "tag", None) == tag for m in metadata):
            return typing.get_args(member)[0]
        plain = typing.get_args(member)[0] if metadata else member
        if isinstance(plain, type) and issubclass(plain, BaseModel):
            type_field = plain.model_fields.get("type")
            if type_field is not None and tag in typing.get_args(type_field.annotation):
                return plain
    return None
