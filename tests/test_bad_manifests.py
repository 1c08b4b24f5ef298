"""Bad manifests: `reconciler validate` must reject each one with exit 1, at the right file, line
and column, with the right field path and message, and never with a traceback.

The corpus lives in tests/corpus/bad/: one fault per file, described by the file's first line

    # expect: LINE:COL FIELD.PATH | MESSAGE SUBSTRING

(FIELD.PATH is `-` for diagnostics without a field path, such as YAML syntax errors) and,
optionally, by a last line `# expect-hint: HINT SUBSTRING`. LINE:COL is where the first error
must be reported. Inputs that cannot be committed sensibly (empty, binary, huge, hostile) are
generated here in tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import main

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CORPUS = TESTS / "corpus" / "bad"
DUP_NAMES = TESTS / "corpus" / "bad_dup_names"
CASES = sorted(CORPUS.glob("*.yaml"))
EXAMPLE = ROOT / "manifests" / "corsica-max-ndvi.yaml"

_EXPECT = re.compile(r"# expect: (\d+):(\d+) (\S+) \| (.+)")
_HINT = re.compile(r"^# expect-hint: (.+?)\r?$", re.MULTILINE)
QUICK = 10.0  # seconds: hostile inputs must be refused long before this


@dataclass(frozen=True)
class Expect:
    line: int
    column: int
    path: str  # "" when the diagnostic has no field path
    message: str
    hint: str | None = None


def expectation(file: Path) -> Expect:
    text = file.read_bytes().decode("utf-8")
    first = text.split("\n", 1)[0].rstrip("\r")
    match = _EXPECT.fullmatch(first)
    assert match, f"{file.name}: the first line must be `# expect: LINE:COL FIELD.PATH | MESSAGE`, not {first!r}"
    line, column, path, message = match.groups()
    hint = _HINT.search(text)
    return Expect(int(line), int(column), "" if path == "-" else path, message.strip(), hint and hint.group(1).strip())


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RECONCILER_DEBUG", raising=False)


def validate(capsys, *args: str) -> tuple[int, str, str]:
    """`reconciler validate ARGS…` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_no_crash(out: str, err: str) -> None:
    for stream in (out, err):
        assert "Traceback" not in stream
        assert "Error: unexpected" not in stream  # the CLI's last line of defence caught a crash


def diagnostics_at(out: str, file: Path | str, line: int, column: int) -> list[tuple[str, str]]:
    """The output lines of diagnostics at file:line:column, each with the hint line after it."""
    prefix = f"{file}:{line}:{column}: "
    lines = out.splitlines()
    found = []
    for i, text in enumerate(lines):
        if text.startswith(prefix):
            after = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("    hint: ") else ""
            found.append((text, after))
    return found


def assert_reported(out: str, file: Path | str, expect: Expect) -> None:
    prefix = f"{file}:{expect.line}:{expect.column}: "
    candidates = diagnostics_at(out, file, expect.line, expect.column)
    assert candidates, f"no diagnostic at {prefix!r} in:\n{out}"
    field = f"{expect.path}: " if expect.path else ""
    matching = [
        (text, hint)
        for text, hint in candidates
        if text[len(prefix):].startswith(field) and expect.message in text[len(prefix) + len(field):]
    ]
    assert matching, f"no diagnostic {prefix}{field}…{expect.message}… in:\n{out}"
    if expect.hint:
        assert any(expect.hint in hint for _, hint in matching), f"no hint containing {expect.hint!r} in:\n{out}"


# --- the committed corpus -------------------------------------------------------------------


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_text_output(case: Path, capsys):
    expect = expectation(case)
    code, out, err = validate(capsys, str(case))
    assert_no_crash(out, err)
    assert code == 1, out + err
    assert_reported(out, case, expect)
    first_error = next(line for line in out.splitlines() if line.startswith(f"{case}:"))
    assert first_error.startswith(f"{case}:{expect.line}:{expect.column}: "), "another error is reported first"
    assert "validation failed" in out


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_json_output(case: Path, capsys):
    expect = expectation(case)
    code, out, err = validate(capsys, "--format", "json", str(case))
    assert_no_crash(out, err)
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert report["errorCount"] >= 1
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert all(d["file"] == str(case) for d in report["diagnostics"])
    at = [d for d in errors if (d["line"], d["column"]) == (expect.line, expect.column)]
    assert at, f"no error at {expect.line}:{expect.column}: {errors}"
    assert any(d["path"] == expect.path and expect.message in d["message"] for d in at), at
    first = errors[0]
    assert (first["line"], first["column"], first["path"]) == (expect.line, expect.column, expect.path)


def test_the_whole_corpus_at_once(capsys):
    """Loading every bad file together still reports each file's own error, and crashes nowhere."""
    code, out, err = validate(capsys, str(CORPUS))
    assert_no_crash(out, err)
    assert code == 1
    for case in CASES:
        assert_reported(out, case, expectation(case))
    assert f"in {len(CASES)} file(s)" in out


def test_names_duplicated_across_files(capsys):
    one, two = DUP_NAMES / "one.yaml", DUP_NAMES / "two.yaml"
    for file in (one, two):  # each file alone is valid
        code, out, err = validate(capsys, str(file))
        assert code == 0, out + err
    expect = expectation(two)
    code, out, err = validate(capsys, str(DUP_NAMES))
    assert_no_crash(out, err)
    assert code == 1
    assert_reported(out, two, expect)
    assert f"{one}:5" in out  # where the name was first used
    assert not any(line.startswith(f"{one}:") for line in out.splitlines())
    report_code, json_out, _ = validate(capsys, "--format", "json", str(DUP_NAMES))
    report = json.loads(json_out)
    assert report_code == 1 and report["valid"] is False
    assert [(d["file"], d["line"], d["column"], d["path"]) for d in report["diagnostics"]] == [
        (str(two), expect.line, expect.column, expect.path)
    ]


# --- generated inputs -----------------------------------------------------------------------


def _valid_manifest() -> str:
    """The example, for a file written in the test's folder (where `_evalscripts` put its scripts)."""
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _evalscripts(tmp_path):
    shutil.copytree(EXAMPLE.parent / "evalscripts", tmp_path / "evalscripts")


def test_the_generated_base_manifest_is_valid(tmp_path, capsys):
    file = tmp_path / "valid.yaml"
    file.write_text(_valid_manifest(), encoding="utf-8")
    code, out, err = validate(capsys, str(file))
    assert code == 0, out + err


def _generated_cases() -> dict[str, tuple[bytes, int, str]]:
    """name → (content, expected line, message substring)."""
    header = b"apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n"
    valid = _valid_manifest()
    giant_bbox = "bbox: [" + "8.44, " * (5 * 1024 * 1024 // 6) + "43.1]"
    return {
        "empty": (b"", 1, "the file holds no manifest"),
        "only_comments": (b"# nothing here yet\n#\n   # still nothing\n", 1, "the file holds no manifest"),
        "only_separators": (b"---\n# empty\n---\n", 1, "the file holds no manifest"),
        "binary": (header + b"  name: x\n" + bytes(range(256)) * 4, 5, "binary, not text"),
        "latin1": (header + "  name: café\n".encode("latin-1"), 4, "not UTF-8 text"),
        "five_megabytes_of_comment": (valid.encode() + b"#" + b"x" * (5 * 1024 * 1024) + b"\n", 1, "MiB; the limit is 2 MiB"),
        "five_megabytes_of_bbox": (
            valid.replace("bbox: [8.44, 41.31, 9.66, 43.1]", giant_bbox).encode(), 1, "MiB; the limit is 2 MiB"
        ),
    }


GENERATED = sorted(_generated_cases())


@pytest.mark.parametrize("name", GENERATED)
def test_generated_inputs(name: str, tmp_path: Path, capsys):
    content, line, message = _generated_cases()[name]
    file = tmp_path / f"{name}.yaml"
    file.write_bytes(content)
    start = time.monotonic()
    code, out, err = validate(capsys, str(file))
    assert time.monotonic() - start < QUICK
    assert_no_crash(out, err)
    assert code == 1
    lines = [text for text in out.splitlines() if text.startswith(f"{file}:")]
    assert len(lines) == 1 and lines[0].startswith(f"{file}:{line}:"), out
    assert message in lines[0]
    code, out, err = validate(capsys, "--format", "json", str(file))
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert [(d["file"], d["line"]) for d in report["diagnostics"]] == [(str(file), line)]


def test_binary_file_names_the_line_of_the_nul(tmp_path: Path, capsys):
    file = tmp_path / "nul.yaml"
    file.write_bytes(_valid_manifest().encode() + b"\n\n# the end\x00\n")
    nul_line = file.read_bytes().split(b"\x00")[0].count(b"\n") + 1
    code, out, err = validate(capsys, str(file))
    assert_no_crash(out, err)
    assert code == 1
    assert out.startswith(f"{file}:{nul_line}:1: the manifest is binary")


def test_latin1_names_the_line_of_the_bad_byte(tmp_path: Path, capsys):
    file = tmp_path / "latin1.yaml"
    text = _valid_manifest().replace("description: Max NDVI over Corsica", "description: Max NDVI über Korsika")
    file.write_bytes(text.encode("latin-1"))
    bad_line = next(i for i, line in enumerate(text.splitlines(), 1) if "über" in line)
    code, out, err = validate(capsys, str(file))
    assert_no_crash(out, err)
    assert code == 1
    assert out.startswith(f"{file}:{bad_line}:1: the manifest is not UTF-8 text")


# --- hostile documents ----------------------------------------------------------------------


HOSTILE = {
    "deep_flow_sequences": ("[" * 100_000, "nests deeper than"),
    "deep_flow_mappings": ("{a: " * 100_000, "nests deeper than"),
    "deep_block_sequences": ("".join("  " * i + "-\n" for i in range(300)), "nests deeper than"),
    "many_documents": ("---\na: 1\n" * 100_000, "holds more than 1000 documents"),
    "deep_block_mappings": ("".join("  " * i + "a:\n" for i in range(300)), "nests deeper than"),
    "billion_laughs": (
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
        + "".join(
            f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" + ", ".join([f"*{chr(ord('a') + i - 1)}"] * 9) + "]\n"
            for i in range(1, 9)
        ),
        "expands to more than",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_documents_are_refused_quickly(name: str, tmp_path: Path, capsys):
    text, message = HOSTILE[name]
    file = tmp_path / f"{name}.yaml"
    file.write_text(text, encoding="utf-8")
    start = time.monotonic()
    code, out, err = validate(capsys, str(file))
    assert time.monotonic() - start < QUICK, "took too long"
    assert_no_crash(out, err)
    assert code == 1
    first = out.splitlines()[0]
    assert re.match(rf"{re.escape(str(file))}:\d+:\d+: ", first), first
    assert message in first
    assert "validation failed: 1 error(s)" in out


def test_billion_laughs_has_nine_levels_of_nine_aliases():
    text = HOSTILE["billion_laughs"][0]
    lines = text.splitlines()
    assert len(lines) == 9
    assert all(line.count("*") == 9 for line in lines[1:])


# --- the real entry point -------------------------------------------------------------------


def _run_entry_point(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_DEBUG"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *args],
        capture_output=True, text=True, cwd=os.getcwd(), env=env, timeout=120,
    )


@pytest.mark.parametrize("name", ["yaml_tab_indentation", "unknown_field_policy_typo", "multi_document_second_bad"])
def test_entry_point(name: str):
    case = CORPUS / f"{name}.yaml"
    expect = expectation(case)
    result = _run_entry_point(str(case))
    assert_no_crash(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert_reported(result.stdout, case, expect)


def test_entry_point_on_the_whole_corpus():
    result = _run_entry_point(str(CORPUS), str(DUP_NAMES))
    assert_no_crash(result.stdout, result.stderr)
    assert result.returncode == 1
    assert result.stderr == ""
    for case in CASES:
        assert_reported(result.stdout, case, expectation(case))


def test_entry_point_on_a_hostile_document(tmp_path: Path):
    file = tmp_path / "deep.yaml"
    file.write_text("[" * 100_000, encoding="utf-8")
    result = _run_entry_point(str(file))
    assert_no_crash(result.stdout, result.stderr)
    assert result.returncode == 1
    assert "nests deeper than" in result.stdout


# --- cases found while building the corpus, each once a validator problem ----------------


def _base_with(old: str, new: str) -> str:
    text = _valid_manifest()
    assert text.count(old) == 1
    return text.replace(old, new)


def test_unclosed_quote_is_reported_at_the_quote(tmp_path: Path, capsys):
    file = tmp_path / "unclosed_quote.yaml"
    file.write_text(_base_with("  description: Max NDVI over Corsica", "  description: 'Max NDVI over Corsica"))
    assert file.read_text().count("'") == 1  # nothing closes it
    line = next(i for i, t in enumerate(file.read_text().splitlines(), 1) if "'Max NDVI" in t)
    code, out, err = validate(capsys, str(file))
    assert code == 1
    assert out.startswith(f"{file}:{line}:16: ")


def test_unclosed_quote_closed_by_a_later_quote_is_named_in_the_hint(tmp_path: Path, capsys):
    """The parser fails where the quotes stop making sense, lines later; the hint names the cause."""
    file = tmp_path / "unclosed_quote.yaml"
    file.write_text(_base_with("  description: Max NDVI over Corsica", '  description: "Max NDVI over Corsica'))
    line = next(i for i, t in enumerate(file.read_text().splitlines(), 1) if '"Max NDVI' in t)
    code, out, err = validate(capsys, str(file))
    assert code == 1
    assert out.splitlines()[1].strip() == f'hint: line {line} opens a " that it does not close'


def test_bad_label_key_is_reported_at_the_key(tmp_path: Path, capsys):
    file = tmp_path / "label_key.yaml"
    file.write_text(_base_with("    team: agri", "    team/owner: agri"))
    line = next(i for i, t in enumerate(file.read_text().splitlines(), 1) if "team/owner" in t)
    code, out, err = validate(capsys, str(file))
    assert code == 1
    assert out.startswith(f"{file}:{line}:5: metadata.labels.team/owner: ")


def test_nul_in_evalscript_file_name_is_a_diagnostic(tmp_path: Path, capsys):
    file = tmp_path / "nul_name.yaml"
    file.write_text(re.sub(r"evalscriptFile: .*", r'evalscriptFile: "max\\0ndvi.js"', _valid_manifest()))
    code, out, err = validate(capsys, str(file))
    assert_no_crash(out, err)
    assert code == 1
    assert f"{file}:" in out and "spec.evalscriptFile" in out


def test_env_reference_does_not_hide_request_checks(tmp_path: Path, capsys):
    file = tmp_path / "env_url.yaml"
    file.write_text(
        _base_with("url: s3://reconciler-demo-results/corsica-max-ndvi", "url: s3://${env:BUCKET}/corsica-max-ndvi")
        .replace("      id: 0\n", "      id: 5\n")
    )
    code, out, err = validate(capsys, str(file))
    assert code == 1, out
    assert "unknown tiling grid 5" in out


def test_control_character_is_located(tmp_path: Path, capsys):
    file = tmp_path / "control_character.yaml"
    file.write_text(_base_with("  description: Max NDVI over Corsica", "  description: Max NDVI \x07 over Corsica"))
    line = next(i for i, t in enumerate(file.read_text().splitlines(), 1) if "\x07" in t)
    code, out, err = validate(capsys, str(file))
    assert code == 1
    assert out.startswith(f"{file}:{line}:25: ")
    assert "<unicode string>" not in out
