"""Reading YAML into plain data with line/column for every node."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml.error import YAMLError

from reconciler.manifests.yamldoc import MAX_DEPTH, YamlProblem, _located, parse, read_documents
from reconciler.manifests.yamlplain import NotPlain, read_plain

TEXT = """\
apiVersion: reconciler/v1
spec:
  request:
    bbox: [8.44, 41.31, 9.66, 43.1]
    data:
      - type: sentinel-2-l2a
        from: 2019-04-01T00:00:00Z
    script: |
      line one
      line two
"""


def test_locations_of_values_keys_and_list_items():
    [doc] = read_documents(TEXT)
    assert doc.locate(("apiVersion",)) == (1, 13)
    assert doc.locate(("spec", "request", "data", 0, "type")) == (6, 15)
    assert doc.locate(("spec", "request", "data", 0, "type"), at_key=True) == (6, 9)
    assert doc.locate(("spec", "request", "bbox", 2)) == (4, 25)
    # a path that leaves the document stops at the deepest node that exists
    assert doc.locate(("spec", "request", "missing", "deeper"), at_key=True) == (3, 3)


def test_scalars_are_json_shaped():
    [doc] = read_documents(TEXT + "flags: [yes, no, on, true, false, ~, 0x1F, 0o17, 1_000, 1.5e3]\n")
    data = doc.data
    assert data["spec"]["request"]["data"][0]["from"] == "2019-04-01T00:00:00Z"  # the text, not a datetime
    assert data["spec"]["request"]["script"] == "line one\nline two\n"
    assert data["flags"] == ["yes", "no", "on", True, False, None, 31, 15, 1000, 1500.0]  # YAML 1.2


def test_multiple_documents_skip_empty_ones():
    docs = read_documents("a: 1\n---\n---\nb: 2\n")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert [d.line for d in docs] == [1, 4]


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("a: 1\na: 2\n", 2, 1, "duplicate key 'a' (first at line 1)"),
        ("a:\n\tb: 1\n", 2, 1, "YAML syntax"),
        ("a: !custom x\n", 1, 4, "unsupported tag !custom"),
        ("<<: {a: 1}\n", 1, 1, "merge keys"),
        ("1: a\n", 1, 1, "keys must be strings"),
        ("a: .nan\n", 1, 4, "not a finite number"),
        ("a: &x [*x]\n", 1, 8, "unknown alias *x"),
        ("[" * 500 + "]" * 500, 1, MAX_DEPTH + 1, "nests deeper"),
        ("- " * 5000 + "x", 1, 2 * MAX_DEPTH + 1, "nests deeper"),
    ],
)
def test_problems_name_line_and_column(text, line, column, message):
    with pytest.raises(YamlProblem) as e:
        read_documents(text)
    assert (e.value.line, e.value.column) == (line, column)
    assert message in e.value.message


def test_alias_bomb_is_refused():
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        text += f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    with pytest.raises(YamlProblem, match="expands to more than"):
        read_documents(text)


def test_flow_urls_that_libyaml_refuses_are_read_by_the_pure_parser():
    [doc] = read_documents("s3: {url: s3://bucket/prefix, role: arn:aws:iam::1:role/x}\n")
    assert doc.data == {"s3": {"url": "s3://bucket/prefix", "role": "arn:aws:iam::1:role/x"}}


def _read(text: str, fast: bool):
    return [(d.data, d.loc) for d in parse(text, fast=fast)]


_PIECES = list("ab: -[]{}\n\t#'\"!&*?|>,.0123456789~%@") + ["\u00e9", "  ", "- ", ": ", "\n  ", "|\n  "]
yaml_text = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(yaml_text)
def test_fast_and_pure_parsers_agree_whenever_the_fast_path_is_taken(text):
    """The C parser is trusted only where it reads exactly what the pure parser reads."""
    try:
        fast = _read(text, fast=True)
    except (YAMLError, YamlProblem, NotPlain):
        return  # the loader falls back to the pure parser: nothing to compare
    assert fast == _read(text, fast=False)


def _assert_readings_agree(text: str) -> None:
    """Valid manifests are read without locations, which are found again only when a diagnostic
    needs one: both readings must give the same documents (repr: True, 1 and 1.0 are told apart)."""
    try:
        read_plain(text)
    except (YAMLError, NotPlain):
        return  # read_documents reads it with locations
    fast, located = read_documents(text), _located(text)  # read_documents takes read_plain's reading
    assert repr([(d.data, d.index, d.line) for d in fast]) == repr([(d.data, d.index, d.line) for d in located])
    for doc, other in zip(fast, located):
        assert doc.locate(()) == other.locate(())


@settings(max_examples=1500, deadline=None)
@given(yaml_text)
def test_the_reading_without_locations_agrees_with_the_located_one_whenever_it_is_taken(text):
    _assert_readings_agree(text)


_SCALARS = ["1", "-0", "0x1F", "0o17", "1_000", "1.5e3", ".5", "1.", ".inf", ".nan", "yes", "True", "FALSE", "~",
            "null", "", "'q'", '"d"', "2019-04-01T00:00:00Z", "a b", "<<", "s3://x/y", "!t x", "&a x", "*a", "x # c",
            "|\n{i}  block\n", ">-\n{i}  folded\n", "|+\n\n{i}  late\n", "[1, yes, 'a']", "{a: 1, b: ~}", "[]"]
_KEYS = ["a", "b", "c", "d", "e", "f", "g", "k y", "'q'", "1", "<<", "~"]


@st.composite
def block_yaml(draw, depth: int = 0) -> str:
    """Block-style YAML with unquoted tricky scalars: the texts the fast path is meant for."""
    indent = "  " * depth
    lines = []
    sequence = draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        head = f"{indent}- " if sequence else f"{indent}{draw(st.sampled_from(_KEYS))}:"
        if depth < 3 and draw(st.integers(0, 2)) == 0:
            lines.append(f"{head}\n{draw(block_yaml(depth + 1))}")
        else:
            scalar = draw(st.sampled_from(_SCALARS)).replace("{i}", indent)
            lines.append(f"{head} {scalar}".rstrip() + "\n")
    return "".join(lines)


@settings(max_examples=1500, deadline=None)
@given(st.lists(block_yaml(), min_size=1, max_size=3).map("---\n".join))
def test_both_readings_agree_on_block_yaml(text):
    _assert_readings_agree(text)


def test_locations_are_found_when_first_asked_for():
    [doc] = read_documents(TEXT)
    assert doc.loc is None  # plain block YAML: read without them
    assert doc.locate(("spec", "request", "data", 0, "type"), at_key=True) == (6, 9)
    assert doc.loc is not None


@settings(max_examples=500, deadline=None)
@given(yaml_text)
def test_random_text_gives_documents_or_our_error(text):
    try:
        documents = read_documents(text)
    except YamlProblem as e:
        assert e.line >= 1 and e.column >= 1 and e.message
    else:
        assert all(d.line >= 1 for d in documents)
