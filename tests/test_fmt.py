"""`reconciler fmt`: canonical order and indentation, comments and block scalars kept."""

from __future__ import annotations

import re

import pytest

from reconciler.manifests.fmt import format_text
from reconciler.manifests.yamldoc import read_documents
from tests.conftest import EXAMPLES

MESSY = """\
# top comment
spec:
    # the request, as the API takes it
    request:
        output:
            type: raster
            delivery: {s3: {url: s3://bucket/x}}
        input: {resolution: 60, type: tiling-grid, id: 0}
        processRequest:
            evalscript: |
                //VERSION=3
                function setup() {
                  return {};   // keeps its inner indentation
                }
            input:
                data:
                - type: sentinel-2-l2a
                  dataFilter:
                      timeRange: {to: "2019-06-30T00:00:00Z", from: "2019-04-01T00:00:00Z"}
                bounds:
                    bbox: [8.44, 41.31, 9.66, 43.1]
            output:
                responses:
                - format: {type: image/tiff}
                  identifier: default   # the evalscript's output id
    policy:
        maxCostPU: 100
    state: started  # run to the end
    api: v2
kind: BatchJob
apiVersion: reconciler/v1
metadata:
    name: messy
"""


def test_messy_manifest_is_reordered_and_reindented_with_comments_kept():
    out = format_text(MESSY)
    assert read_documents(out)[0].data == read_documents(MESSY)[0].data
    lines = out.splitlines()
    top_keys = [line.split(":")[0] for line in lines if line and line[0].isalpha()]
    assert top_keys == ["apiVersion", "kind", "metadata", "spec"]
    spec_keys = [line.strip().split(":")[0] for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert [k for k in spec_keys if not k.startswith("#")] == ["name", "api", "state", "request", "policy"]
    for comment in ("# top comment", "# the request, as the API takes it", "# run to the end", "# the evalscript's output id"):
        assert comment in out
    # the comment above `request` still sits right above it
    assert lines[lines.index("  request:") - 1].strip() == "# the request, as the API takes it"
    assert any(re.fullmatch(r"  state: started +# run to the end", line) for line in lines)
    assert "                  return {};   // keeps its inner indentation" not in out  # reindented...
    assert "          return {};   // keeps its inner indentation" in out  # ...relative to the block
    request_keys = [line.strip().split(":")[0] for line in lines if line.startswith("    ") and not line.startswith("     ")]
    assert request_keys[:3] == ["processRequest", "input", "output"]


def test_format_is_idempotent():
    once = format_text(MESSY)
    assert format_text(once) == once


def test_sequences_are_indented_under_their_key():
    out = format_text("a:\n- x\n- y\n")
    assert out == "a:\n  - x\n  - y\n"


def test_reordering_keys_of_a_mapping_inside_a_list_moves_the_dash():
    text = "apiVersion: reconciler/v1\nspec:\n  request:\n    processRequest:\n      input:\n        data:\n" \
           "          - dataFilter: {}\n            type: sentinel-2-l2a\n"
    out = format_text(text)
    assert "          - type: sentinel-2-l2a\n            dataFilter: {}\n" in out


def test_quotes_and_multiple_documents_are_kept():
    text = "apiVersion: 'reconciler/v1'\nkind: \"BatchJob\"\n---\nkind: BatchJob\napiVersion: reconciler/v1\n"
    out = format_text(text)
    assert out == "---\napiVersion: 'reconciler/v1'\nkind: \"BatchJob\"\n---\napiVersion: reconciler/v1\nkind: BatchJob\n"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_already_canonical(path):
    text = path.read_text()
    assert format_text(text) == text


def test_fmt_command_check_write_and_diff(tmp_path, run_cli):
    messy = tmp_path / "job.yaml"
    messy.write_text(MESSY)
    clean = tmp_path / "clean.yaml"
    clean.write_text(format_text(MESSY))

    code, out, err = run_cli("fmt", "--check", str(tmp_path))
    assert code == 1 and out.strip() == str(messy) and "1 file(s) would be reformatted" in err
    assert messy.read_text() == MESSY  # --check changes nothing

    code, out, _ = run_cli("fmt", "--check", "--diff", str(messy))
    assert code == 1 and out.startswith(f"--- a/{messy}") and "+apiVersion: reconciler/v1" in out

    code, out, _ = run_cli("fmt", str(tmp_path))
    assert code == 0 and out.strip() == str(messy)
    assert messy.read_text() == clean.read_text()
    assert run_cli("fmt", "--check", str(tmp_path))[0] == 0


def test_fmt_reports_unreadable_files_and_leaves_them(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    code, _, err = run_cli("fmt", str(bad))
    assert code == 1 and f"{bad}:2:1:" in err and "Traceback" not in err
    assert bad.read_text() == "a: [1, 2\n"
