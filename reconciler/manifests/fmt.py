"""`reconciler fmt`: manifests in canonical form — keys in the schema's order, two-space
indentation, sequences indented under their key — with comments, quotes and block scalars kept.

Key order is fixed by moving whole line blocks (a key, its value and the comment lines right
above it), so every comment travels with the key it describes; ruamel.yaml's round-trip dumper
then normalises indentation. The result is checked to hold the same data as the input.
"""

from __future__ import annotations

import difflib
import io
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.atomic import atomic_write
from reconciler.diagnostics import Diagnostic
from reconciler.manifests.files import DEFAULT_PATHS, MAX_FILE_BYTES, discover, read_text
from reconciler.manifests.messages import unwrap
from reconciler.manifests.schema import BatchJob
from reconciler.manifests.yamldoc import YamlProblem, read_documents

_MAX_PASSES = 10_000


def format_text(text: str) -> str:
    """The canonical form of `text`; raises YamlProblem when it is not usable YAML."""
    original = [d.data for d in read_documents(text)]
    try:
        result = _reindent(_reorder_blocks(text))
    except YAMLError as e:  # the round-trip parser refused what the loader accepted
        raise YamlProblem(1, 1, f"cannot format this file: {str(e).splitlines()[0]}") from None
    if [d.data for d in read_documents(result)] != original:
        raise YamlProblem(1, 1, "formatting would change the data; the file is left as it is",
                          "please report this file as a bug")
    return result


def _reorder_blocks(text: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"  # every line a block may end with must end its line
    for _ in range(_MAX_PASSES):
        lines = text.splitlines(keepends=True)
        move = None
        for root in YAML(typ="safe", pure=True).compose_all(text):
            move = _first_move(root, BatchJob, lines, is_root=True)
            if move:
                break
        if move is None:
            return text
        start, end, blocks, order, prefix, first_key = move
        text = "".join(lines[:start] + _permute(lines, blocks, order, prefix, first_key) + lines[end:])
    return text


def _first_move(node: Node, annotation: Any, lines: list[str], is_root: bool = False):
    """The first block mapping (document order) whose keys are out of canonical order."""
    model = _model_for(annotation, node)
    if isinstance(node, MappingNode):
        if model is not None and not node.flow_style:
            move = _plan_move(node, _key_order(model), lines, is_root)
            if move:
                return move
        for key, value in node.value:
            child = _field_annotation(model, key.value) if model else _value_annotation(annotation)
            move = _first_move(value, child, lines)
            if move:
                return move
    elif isinstance(node, SequenceNode):
        for item in node.value:
            move = _first_move(item, _value_annotation(annotation), lines)
            if move:
                return move
    return None


def _plan_move(node: MappingNode, order: list[str], lines: list[str], is_root: bool):
    keys = [k.value for k, _ in node.value]
    rank = {name: i for i, name in enumerate(order)}
    wanted = sorted(range(len(keys)), key=lambda i: (rank.get(keys[i], len(order)), i))
    if wanted == list(range(len(keys))):
        return None
    column = node.value[0][0].start_mark.column
    key_lines = [k.start_mark.line for k, _ in node.value]
    if len(set(key_lines)) != len(key_lines):
        return None
    prefix = lines[key_lines[0]][:column]
    if prefix.strip() not in ("",) and not re.fullmatch(r"[ -]*", prefix):
        return None  # a key on the same line as something else we cannot move
    # Comment lines right above a key belong to it; above a document's first key they are the
    # file's header, above a list item's first key they describe the item: those stay.
    keep_first = is_root or bool(prefix.strip())
    starts = [line if i == 0 and keep_first else _comment_start(lines, line) for i, line in enumerate(key_lines)]
    end = _last_line(node.value[-1][1]) + 1
    blocks = [(starts[i], starts[i + 1] if i + 1 < len(starts) else end) for i in range(len(starts))]
    return starts[0], end, blocks, wanted, prefix, key_lines[0] - starts[0]


def _permute(lines: list[str], blocks, order, prefix: str, first_key: int) -> list[str]:
    indent = " " * len(prefix)
    chunks = [list(lines[a:b]) for a, b in blocks]
    chunks[0][first_key] = indent + chunks[0][first_key][len(prefix):]  # take the `- ` off the old first key
    out = [line for i in order for line in chunks[i]]
    if prefix != indent:
        first = next(i for i, line in enumerate(out) if not line.lstrip().startswith("#"))
        out[first] = prefix + out[first][len(indent):]
    return out


def _comment_start(lines: list[str], line: int) -> int:
    while line > 0 and lines[line - 1].lstrip().startswith("#"):
        line -= 1
    return line


def _last_line(node: Node) -> int:
    if isinstance(node, MappingNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1][1])
    if isinstance(node, SequenceNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1])
    mark = node.end_mark
    return mark.line - 1 if mark.column == 0 and mark.line > node.start_mark.line else mark.line


def _model_for(annotation: Any, node: Node) -> type[BaseModel] | None:
    annotation = unwrap(annotation, None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType) or not isinstance(node, MappingNode):
        return None
    present = {k.value: v.value for k, v in node.value if isinstance(v, ScalarNode)}
    for member in typing.get_args(annotation):
        model = unwrap(member, None)
        if isinstance(model, type) and issubclass(model, BaseModel) and _selects(model, present):
            return model
    return None


def _selects(model: type[BaseModel], present: dict[str, str]) -> bool:
    """True when the model's literal-typed fields agree with the mapping (e.g. `type`, `api`)."""
    decided = False
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation) if typing.get_origin(info.annotation) is typing.Literal else None
        if not args or len(args) != 1:
            continue
        key = info.alias or name
        if key in present:
            if present[key] != args[0]:
                return False
            decided = True
        elif info.is_required():
            return False
        else:
            decided = True
    return decided


def _key_order(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _field_annotation(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return None


def _value_annotation(annotation: Any) -> Any:
    annotation = unwrap(annotation, None)
    if typing.get_origin(annotation) in (dict, list):
        return typing.get_args(annotation)[-1]
    return None


def _reindent(text: str) -> str:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    documents = list(yaml.load_all(text))
    out = io.StringIO()
    yaml.explicit_start = text.lstrip().startswith("---") or len(documents) > 1
    yaml.dump_all(documents, out)
    return _align_comments(out.getvalue())


def _align_comments(text: str) -> str:
    """Indent each comment line like the line it precedes, as a reader expects."""
    lines = text.splitlines(keepends=True)
    next_indent = 0
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].lstrip(" ")
        if stripped.startswith("#"):
            lines[i] = " " * next_indent + stripped
        elif stripped.strip():
            next_indent = len(lines[i]) - len(stripped)
    return "".join(lines)


@dataclass
class FormatReport:
    changed: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)


def format_files(paths: Sequence[str], *, write: bool, diff: bool = False) -> FormatReport:
    """Format every manifest file under `paths`; with `write`, rewrite the ones that change."""
    report = FormatReport()
    for path, _ in discover(paths or DEFAULT_PATHS, report.diagnostics):
        try:
            text = read_text(path, MAX_FILE_BYTES, "manifest")
            formatted = format_text(text)
        except YamlProblem as e:
            report.diagnostics.append(Diagnostic(path, e.line, e.column, "", e.message, e.hint))
            continue
        if formatted == text:
            continue
        report.changed.append(path)
        if diff:
            report.diffs.append("".join(difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True), f"a/{path}", f"b/{path}")))
        if write:
            _replace_file(Path(path), formatted)
    return report


def _replace_file(path: Path, text: str) -> None:
    """Write beside the file and rename over it, so a crash never leaves half a manifest."""
    atomic_write(path, text.encode("utf-8"), mode=path.stat().st_mode & 0o7777)
