"""Reading YAML into plain data, and the line and column of any field path in it."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifests.yamldoc import MAX_DEPTH, MAX_DOCUMENTS, YamlProblem, read_documents

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
    assert doc.locate(()) == (1, 1)
    assert doc.locate(("apiVersion",)) == (1, 13)
    assert doc.locate(("spec", "request", "data", 0, "type")) == (6, 15)
    assert doc.locate(("spec", "request", "data", 0, "type"), at_key=True) == (6, 9)
    assert doc.locate(("spec", "request", "bbox", 2)) == (4, 25)
    # a path that leaves the document stops at the deepest node that exists
    assert doc.locate(("spec", "request", "missing", "deeper"), at_key=True) == (3, 3)
    assert doc.locate(("spec", "request", "bbox", 9)) == (4, 11)


def test_an_empty_value_is_located_at_its_key_or_its_list():
    [doc] = read_documents("a:\nb:\n  -\n  - x\n")
    assert doc.data == {"a": None, "b": [None, "x"]}
    assert doc.locate(("a",)) == (1, 1)  # not the next line, where the parser puts the empty value
    assert doc.locate(("b", 0)) == (3, 3)


def test_scalars_are_json_shaped():
    [doc] = read_documents(TEXT + "flags: [yes, no, on, true, false, ~, 0x1F, 0o17, 1_000, 1.5e3, '1', <<]\n")
    data = doc.data
    assert data["spec"]["request"]["data"][0]["from"] == "2019-04-01T00:00:00Z"  # the text, not a datetime
    assert data["spec"]["request"]["script"] == "line one\nline two\n"
    assert data["flags"] == ["yes", "no", "on", True, False, None, 31, 15, 1000, 1500.0, "1", "<<"]  # YAML 1.2
    assert repr(data["flags"][6:10]) == "[31, 15, 1000, 1500.0]"  # ints stay ints


def test_multiple_documents_skip_empty_ones():
    docs = read_documents("a: 1\n---\n---\n~\n---\nb: 2\n")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in docs] == [0, 1]
    assert [d.line for d in docs] == [1, 6]
    assert docs[1].locate(("b",)) == (6, 4)  # empty documents counted where the stream is composed again


def test_aliases_are_copies():
    [doc] = read_documents("a: &x {b: [1]}\nc: *x\n")
    assert doc.data == {"a": {"b": [1]}, "c": {"b": [1]}}
    assert doc.data["a"] is not doc.data["c"] and doc.data["a"]["b"] is not doc.data["c"]["b"]


def test_flow_urls_that_libyaml_refuses_are_read():
    [doc] = read_documents("s3: {url: s3://bucket/prefix, role: arn:aws:iam::1:role/x}\nn: .nan_x\n")
    assert doc.data == {"s3": {"url": "s3://bucket/prefix", "role": "arn:aws:iam::1:role/x"}, "n": ".nan_x"}
    assert doc.locate(("s3", "role")) == (1, 37)


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("a: 1\na: 2\n", 2, 1, "duplicate key 'a' (first at line 1)"),
        ("a:\n\tb: 1\n", 2, 1, "found character '\\t' that cannot start any token"),
        ("a: !custom x\n", 1, 4, "unsupported tag !custom"),
        ("a: !!str 1\n", 1, 4, "unsupported tag tag:yaml.org,2002:str"),
        ("a: !!map {}\n", 1, 4, "unsupported tag"),
        ("<<: {a: 1}\n", 1, 1, "merge keys"),
        ("b: &x {a: 1}\nc:\n  <<: *x\n", 3, 3, "merge keys"),
        ("1: a\n", 1, 1, "keys must be strings"),
        ("? [a]\n: 1\n", 1, 3, "keys must be strings"),
        ("a: .nan\n", 1, 4, "not a finite number"),
        ("a: [1, -.inf]\n", 1, 8, "not a finite number"),
        ("a: 0x_\n", 1, 4, "not an integer we can use"),
        ("a: &x [*x]\n", 1, 8, "unknown alias *x"),
        ("a: &x 1\nb: &x 2\n", 2, 4, "the anchor &x is defined twice (first at line 1)"),
        ("a: 'open\n", 1, 4, "this quoted string is never closed"),
        ("a: [1, 2\n", 2, 1, "YAML syntax: expected ',' or ']'"),
        ("a: x\x07\n", 1, 5, "control character U+0007"),
        ("[" * 500 + "]" * 500, 1, MAX_DEPTH + 1, "nests deeper"),
        ("- " * 5000 + "x", 1, 2 * MAX_DEPTH + 1, "nests deeper"),
        ("---\na: 1\n" * (MAX_DOCUMENTS + 1), 2 * MAX_DOCUMENTS + 1, 1, f"holds more than {MAX_DOCUMENTS} documents"),
    ],
)
def test_problems_name_line_and_column(text, line, column, message):
    with pytest.raises(YamlProblem) as e:
        read_documents(text)
    assert (e.value.line, e.value.column) == (line, column)
    assert message in e.value.message


def test_as_many_documents_as_allowed_are_read():
    assert len(read_documents("---\na: 1\n" * MAX_DOCUMENTS)) == MAX_DOCUMENTS


def test_an_unclosed_double_quote_is_named_where_it_opens():
    with pytest.raises(YamlProblem) as e:
        read_documents('a: "x\nb: y\nc: "z"\n')
    assert e.value.hint == 'line 1 opens a " that it does not close'


def test_alias_bomb_is_refused():
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        text += f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    with pytest.raises(YamlProblem, match="expands to more than"):
        read_documents(text)


def test_a_file_of_many_tiny_documents_is_refused_fast():
    start = time.process_time()
    with pytest.raises(YamlProblem, match="documents"):
        read_documents("---\na: 1\n" * 100_000)
    assert time.process_time() - start < 1.0  # stops at the limit, not at the end of the file


def test_locations_are_composed_once_per_file_when_first_asked_for():
    docs = read_documents("a: 1\n---\nb: 2\n")
    source = docs[0].source
    assert source.roots is None  # a valid manifest never needs them
    assert docs[1].locate(("b",)) == (3, 4)
    roots = source.roots
    assert docs[0].locate(("a",)) == (1, 4) and source.roots is roots


_PIECES = list("ab: -[]{}\n\t#'\"!&*?|>,.0123456789~%@") + ["\u00e9", "  ", "- ", ": ", "\n  ", "|\n  "]
yaml_text = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)

_SCALARS = ["1", "-0", "0x1F", "0o17", "1_000", "1.5e3", ".5", "1.", ".inf", ".nan", "yes", "True", "FALSE", "~",
            "null", "", "'q'", '"d"', "2019-04-01T00:00:00Z", "a b", "<<", "s3://x/y", "!t x", "&a x", "*a", "x # c",
            "|\n{i}  block\n", ">-\n{i}  folded\n", "|+\n\n{i}  late\n", "[1, yes, 'a']", "{a: 1, b: ~}", "[]",
            "{u: s3://b/p}", "&b [1, {c: 2}]", "*b", "x\t# tab"]
_KEYS = ["a", "b", "c", "d", "e", "f", "g", "k y", "'q'", "1", "<<", "~"]


@st.composite
def block_yaml(draw, depth: int = 0) -> str:
    """Block-style YAML with unquoted tricky scalars, anchors and aliases: manifests and their mistakes."""
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


def _paths(data, prefix: tuple = ()):
    yield prefix
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for part, value in children:
        yield from _paths(value, (*prefix, part))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(yaml_text, st.lists(block_yaml(), min_size=1, max_size=3).map("---\n".join)))
def test_any_text_gives_documents_whose_every_field_is_located_or_our_error(text):
    """Diagnostics never crash: whatever is read, each of its values can be pointed at."""
    try:
        documents = read_documents(text)
    except YamlProblem as e:
        assert e.line >= 1 and e.column >= 1 and e.message
        return
    lines = text.count("\n") + 1
    for document in documents:
        assert 1 <= document.line <= lines
        for path in _paths(document.data):
            for at_key in (False, True):
                line, column = document.locate(path, at_key)
                assert 1 <= line <= lines and column >= 1
