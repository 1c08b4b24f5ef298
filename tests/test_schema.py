"""The manifest JSON Schema: generated from the models, committed, usable by editors."""

from __future__ import annotations

import json

import jsonschema
import pytest

from reconciler.manifests.schema import json_schema
from reconciler.manifests.yamldoc import read_documents
from tests.conftest import EXAMPLES, ROOT

COMMITTED = ROOT / "schema" / "batchjob.schema.json"


def test_committed_schema_is_current(run_cli):
    code, out, _ = run_cli("schema")
    assert code == 0
    assert json.loads(out) == json_schema()
    assert COMMITTED.read_text() == out, "schema/batchjob.schema.json is stale: run `reconciler schema > schema/batchjob.schema.json`"


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_satisfy_the_schema_and_point_editors_at_it(path):
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/batchjob.schema.json\n")
    for document in read_documents(text):
        jsonschema.Draft202012Validator(json_schema()).validate(document.data)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["spec"].update(state="running"),
        lambda d: d["metadata"].update(name="Not_A_Name"),
        lambda d: d["spec"]["request"].update(tilingGrid={"id": 0, "resolution": 60}),
        lambda d: d["spec"]["request"]["input"].update(resolution="60"),
        lambda d: d["spec"]["request"]["output"]["delivery"]["s3"].update(url="https://x"),
        lambda d: d.update(kind="Job"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(change):
    [document] = read_documents((EXAMPLES / "corsica-max-ndvi.yaml").read_text())
    data = document.data
    data["spec"]["request"]["processRequest"]["evalscript"] = "//VERSION=3"
    jsonschema.Draft202012Validator(json_schema()).validate(data)
    change(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema()).validate(data)
