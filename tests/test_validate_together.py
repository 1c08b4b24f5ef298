"""`validate` reports every independent error of a manifest in one run (an unknown field or half a
credential pair hides no bbox, time-range or grid error), and warns about `${env:…}` variables that
plan and apply will need but the environment lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.manifests.loader import load
from tests.conftest import EXAMPLES, copy_evalscripts

EXAMPLE = (EXAMPLES / "corsica-max-ndvi.yaml").read_text()


def manifest(*changes: tuple[str, str]) -> Path:
    """The corsica-max-ndvi example with `changes` (old, new) made, in the test's folder."""
    text = EXAMPLE
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    copy_evalscripts(Path("manifests"))
    path = Path("manifests") / "job.yaml"
    path.write_text(text)
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


UNKNOWN_REQUEST_FIELD = ("  request:\n", "  request:\n    instanceTyp: normal\n")
REVERSED_TIME_RANGE = ('from: "2019-04-01T00:00:00Z"', 'from: "2019-07-01T00:00:00Z"')
UNKNOWN_COLLECTION = ("- type: sentinel-2-l2a", "- type: sentinel-2-l3z")
RESOLUTION_NOT_ON_GRID = ("resolution: 60.0", "resolution: 50.0")


def errors(run_cli, path: Path) -> list[dict]:
    code, out, _ = run_cli("validate", "--format", "json", str(path))
    assert code == 1
    return [d for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]


def test_four_independent_errors_of_one_manifest_are_reported_in_one_run(run_cli):
    path = manifest(UNKNOWN_REQUEST_FIELD, REVERSED_TIME_RANGE, UNKNOWN_COLLECTION, RESOLUTION_NOT_ON_GRID)
    found = [(d["line"], d["path"], d["message"]) for d in errors(run_cli, path)]
    assert found == [
        (line_of(path, "instanceTyp"), "spec.request.instanceTyp", "unknown field `instanceTyp`"),
        (line_of(path, "sentinel-2-l3z"), "spec.request.processRequest.input.data[0].type",
         "unknown data collection type 'sentinel-2-l3z'"),
        (line_of(path, "2019-07-01"), "spec.request.processRequest.input.data[0].dataFilter.timeRange",
         "`from` (2019-07-01T00:00:00Z) is after `to` (2019-06-30T00:00:00Z)"),
        (line_of(path, "resolution: 50"), "spec.request.input.resolution", "50 is not a resolution of tiling grid 0 (20km grid)"),
    ]
    code, out, _ = run_cli("validate", str(path))
    assert code == 1 and "validation failed: 4 error(s)" in out
    assert "hint: did you mean `instanceType`?" in out and "hint: did you mean `sentinel-2-l2a`?" in out


@pytest.mark.parametrize(
    "hiding",
    [
        ("      resolution: 50.0\n", "      resolution: 50.0\n      tileSize: 20040\n"),  # beside the resolution
        ("          iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery\n",
         "          accessKey: ${env:KEY}\n"),  # half a credential pair
        ("  state: started", "  state: running"),  # outside the request
        ("              maxCloudCoverage: 70.0", "              maxCloudCoverge: 70.0"),  # a misspelt filter
    ],
    ids=["unknown-field-in-input", "credential-pair", "spec-state", "misspelt-filter"],
)
def test_no_error_hides_the_bbox_time_range_and_grid_errors(run_cli, hiding):
    path = manifest(("bbox: [8.44, 41.31, 9.66, 43.1]", "bbox: [9.66, 41.31, 8.44, 43.1]"),
                    REVERSED_TIME_RANGE, RESOLUTION_NOT_ON_GRID, hiding)
    paths = {d["path"] for d in errors(run_cli, path)}
    assert {"spec.request.processRequest.input.bounds.bbox", "spec.request.processRequest.input.data[0].dataFilter.timeRange",
            "spec.request.input.resolution"} <= paths
    assert len(paths) == 4, paths  # and the error that would have hidden them


def test_an_error_does_not_bring_another_that_only_follows_from_it(run_cli):
    path = manifest(("  evalscriptFile: evalscripts/max_ndvi.js\n", ""),
                    ("    processRequest:\n", "    processRequest:\n      evalscirpt: x\n"))
    assert [d["message"] for d in errors(run_cli, path)] == ["unknown field `evalscirpt`"]  # not also "no evalscript"


# --- variables the environment lacks -------------------------------------------------------------

WITH_VARIABLES = (("url: s3://reconciler-demo-results/corsica-max-ndvi", "url: s3://${env:RESULT_BUCKET}/${env:RESULT_BUCKET}"),
                  ("iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery", "iamRoleARN: ${env:DELIVERY_ROLE}"))


def test_validate_warns_about_each_unset_variable_it_can_see(run_cli, monkeypatch):
    monkeypatch.delenv("RESULT_BUCKET", raising=False)
    monkeypatch.setenv("DELIVERY_ROLE", "arn:aws:iam::1:role/r")
    path = manifest(*WITH_VARIABLES)
    code, out, _ = run_cli("validate", str(path))
    assert code == 0, out
    line = line_of(path, "RESULT_BUCKET")
    assert out.splitlines()[:2] == [
        f"{path}:{line}:16: spec.request.output.delivery.s3.url: warning: environment variable RESULT_BUCKET is not set",
        "    hint: plan and apply need it: export RESULT_BUCKET before running them",
    ]
    assert "DELIVERY_ROLE" not in out and "arn:aws" not in out  # set: nothing to say, and its value never shown
    assert "1 manifest(s) in 1 file(s) are valid (1 warning(s))" in out
    code, out, _ = run_cli("validate", "--format", "json", str(path))
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and report["warningCount"] == 1
    [warning] = report["diagnostics"]
    assert (warning["severity"], warning["line"], warning["path"]) == ("warning", line, "spec.request.output.delivery.s3.url")


def test_with_resolve_env_an_unset_variable_is_an_error_not_also_a_warning(run_cli, monkeypatch):
    monkeypatch.delenv("RESULT_BUCKET", raising=False)
    monkeypatch.delenv("DELIVERY_ROLE", raising=False)
    code, out, _ = run_cli("validate", "--resolve-env", "--format", "json", str(manifest(*WITH_VARIABLES)))
    report = json.loads(out)
    assert code == 1 and report["warningCount"] == 0
    assert [d["message"] for d in report["diagnostics"]] == [
        "environment variable RESULT_BUCKET is not set", "environment variable DELIVERY_ROLE is not set"]


def test_library_loads_warn_only_when_asked(monkeypatch):
    monkeypatch.delenv("RESULT_BUCKET", raising=False)
    monkeypatch.delenv("DELIVERY_ROLE", raising=False)
    path = manifest(*WITH_VARIABLES)
    assert load([path]).diagnostics == []  # e.g. `status`, which needs no variable
    warned = load([path], warn_unset=True, environ={"DELIVERY_ROLE": "r"})
    assert [(d.is_error, d.message) for d in warned.diagnostics] == [(False, "environment variable RESULT_BUCKET is not set")]
    assert [m.name for m in warned.manifests] == ["corsica-max-ndvi"]
