"""Rules of create bodies beyond their schema (shared by manifest validation and the sandbox)."""

from __future__ import annotations

import copy

import pytest

from reconciler.batch.checks import check_parts, check_v1, check_v2
from reconciler.batch.models import v1, v2
from reconciler.geo.grids import GRIDS
from tests.test_api_models import PROCESS_REQUEST, V2_GEOTIFF, zarr_body


def findings_v2(body: dict) -> list[tuple[tuple, str]]:
    return [(f.path, f.message) for f in check_v2(v2.CreateBody.model_validate(body))]


def findings_v1(body: dict) -> list[tuple[tuple, str]]:
    return [(f.path, f.message) for f in check_v1(v1.CreateBody.model_validate(body))]


def test_seed_bodies_have_no_findings():
    assert findings_v2(V2_GEOTIFF) == []
    assert findings_v2(zarr_body()) == []


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_every_listed_resolution_is_accepted_and_others_are_not(grid):
    for resolution in GRIDS[grid].resolutions:
        body = copy.deepcopy(V2_GEOTIFF)
        body["input"] = {"type": "tiling-grid", "id": grid, "resolution": resolution}
        assert findings_v2(body) == []
    body["input"]["resolution"] = 7.0
    assert [path for path, _ in findings_v2(body)] == [("input", "resolution")]


def test_unknown_grid():
    body = copy.deepcopy(V2_GEOTIFF)
    body["input"]["id"] = 4
    [(path, message)] = findings_v2(body)
    assert path == ("input", "id") and "unknown tiling grid 4" in message


def test_zarr_needs_a_wgs84_or_laea_grid_and_zarr_responses():
    body = zarr_body()
    body["input"] = {"type": "tiling-grid", "id": 0, "resolution": 60.0}
    body["processRequest"]["output"]["responses"][0]["format"]["type"] = "image/tiff"
    paths = [path for path, _ in findings_v2(body)]
    assert ("input", "id") in paths
    assert ("processRequest", "output", "responses", 0, "format", "type") in paths


def test_zarr_overrides_must_name_outputs_and_parameters_must_cover_every_array():
    body = zarr_body()
    body["output"]["arrayOverrides"]["nope"] = {"dtype": "<f4"}
    del body["output"]["arrayParameters"]
    messages = [m for _, m in findings_v2(body)]
    assert any("no output response is named 'nope'" in m for m in messages)
    assert any("has no dtype/chunks/fill_value" in m for m in messages)


@pytest.mark.parametrize(
    "url, responses, expected",
    [
        ("s3://bucket/prefix", 1, None),
        ("s3://bucket/<tileName>.tiff", 1, None),
        ("s3://bucket/<tileName>/<outputId>.<format>", 2, None),
        ("s3://bucket/<requestId>.tiff", 1, "must contain <tileName> or <tileId>"),
        ("s3://bucket/<tileId>.tiff", 2, "must contain <outputId>"),
        ("s3://bucket/<tile>.tiff", 1, "unknown placeholder <tile>"),
    ],
)
def test_raster_path_templates(url, responses, expected):
    body = copy.deepcopy(V2_GEOTIFF)
    body["output"]["delivery"]["s3"]["url"] = url
    body["processRequest"]["output"]["responses"] = [
        {"identifier": f"out{i}", "format": {"type": "image/tiff"}} for i in range(responses)
    ]
    messages = [m for _, m in findings_v2(body)]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1 and expected in messages[0]


def test_duplicate_identifiers():
    body = copy.deepcopy(V2_GEOTIFF)
    body["processRequest"]["output"]["responses"].append({"identifier": "default", "format": {"type": "image/tiff"}})
    body["output"]["delivery"]["s3"]["url"] = "s3://bucket"
    assert findings_v2(body) == [(("processRequest", "output", "responses", 1, "identifier"), "duplicate output identifier 'default'")]


def test_cog_and_collections():
    body = copy.deepcopy(V2_GEOTIFF)
    body["output"]["createCollection"] = True
    assert [p for p, _ in findings_v2(body)] == [("output", "createCollection")]
    body["output"]["cogOutput"] = True
    body["processRequest"]["output"]["responses"][0]["format"]["type"] = "image/png"
    assert [m for _, m in findings_v2(body)] == ["`cogOutput: true` needs every response in format image/tiff"]


def v1_body(**changes) -> dict:
    body = {"processRequest": copy.deepcopy(PROCESS_REQUEST), "tilingGrid": {"id": 0, "resolution": 60.0}}
    body.update(changes)
    return body


def test_v1_exactly_one_destination():
    assert findings_v1(v1_body(bucketName="bucket")) == []
    assert findings_v1(v1_body(output={"defaultTilePath": "s3://bucket/x"})) == []
    [(path, message)] = findings_v1(v1_body())
    assert path == () and "exactly one of" in message
    [(_, message)] = findings_v1(v1_body(bucketName="bucket", output={"defaultTilePath": "s3://bucket"}))
    assert "(got output, bucketName)" in message


def test_v1_collection_rules_and_bucket_name():
    out = findings_v1(v1_body(output={"defaultTilePath": "s3://bucket", "createCollection": True, "collectionId": "c"}))
    assert {p for p, _ in out} == {("output", "cogOutput"), ("output", "collectionId")}
    assert [p for p, _ in findings_v1(v1_body(bucketName="s3://bucket"))] == [("bucketName",)]
    assert [p for p, _ in findings_v1(v1_body(output={"defaultTilePath": "bucket/x"}))] == [("output", "defaultTilePath")]


def test_v1_zarr_output():
    body = v1_body(
        zarrOutput={
            "path": "s3://bucket/<requestId>",
            "group": {"zarr_format": 2},
            "arrayParameters": {"dtype": "<f4", "order": "C", "chunks": [1, 1000, 1000], "fill_value": 0},
        }
    )
    body["tilingGrid"] = {"id": 6, "resolution": 100.0}
    body["processRequest"]["output"]["responses"][0]["format"]["type"] = "zarr/array"
    assert findings_v1(body) == []
    body["zarrOutput"]["path"] = "s3://bucket/<tileName>"
    assert [p for p, _ in findings_v1(body)] == [("zarrOutput", "path")]


# --- responses against the evalscript's setup() -------------------------------------------------

SETUP = """//VERSION=3
function setup() {
  return {
    input: ["B04", "B08", "dataMask"],
    output: [{ id: "ndvi", bands: 1, sampleType: "FLOAT32" }, { id: "rgb", bands: 3 }],
  };
}
"""


def with_responses(*responses: tuple[str, str], evalscript: str = SETUP) -> dict:
    body = copy.deepcopy(V2_GEOTIFF)
    body["processRequest"]["evalscript"] = evalscript
    body["processRequest"]["output"]["responses"] = [{"identifier": i, "format": {"type": t}} for i, t in responses]
    body["output"]["delivery"]["s3"]["url"] = "s3://bucket/<tileName>/<outputId>.<format>"
    return body


def test_responses_name_outputs_of_setup_in_formats_that_hold_them():
    assert findings_v2(with_responses(("ndvi", "image/tiff"), ("rgb", "image/png"), ("userdata", "application/json"))) == []
    out = findings_v2(with_responses(("ndvl", "image/tiff"), ("rgb", "application/json"), ("ndvi", "image/jpeg"),
                                     ("userdata", "image/tiff")))
    assert out == [
        (("processRequest", "output", "responses", 0, "identifier"), "the evalscript's setup() declares no output 'ndvl'"),
        (("processRequest", "output", "responses", 1, "format", "type"),
         "output 'rgb' is a raster: application/json is only for `userdata`"),
        (("processRequest", "output", "responses", 2, "format", "type"), "image/jpeg cannot hold the FLOAT32 values of output 'ndvi'"),
        (("processRequest", "output", "responses", 3, "format", "type"),
         "`userdata` is the evalscript's JSON metadata: its format is application/json"),
    ]
    [hint] = [f.hint for f in check_v2(v2.CreateBody.model_validate(with_responses(("ndvl", "image/tiff"))))]
    assert hint == "did you mean `ndvi`?"
    [hint] = [f.hint for f in check_v2(v2.CreateBody.model_validate(with_responses(("other", "image/tiff"))))]
    assert hint == "setup() declares ndvi, rgb (and `userdata` is the JSON metadata)"


def test_an_evalscript_that_cannot_be_read_is_not_held_against_the_responses():
    computed = "//VERSION=3\nfunction setup() { return makeSetup(); }\n"
    assert findings_v2(with_responses(("anything", "image/png"), evalscript=computed)) == []


def test_the_evalscript_of_a_file_is_passed_beside_the_body():
    body = with_responses(("ndvi", "image/tiff"), evalscript="//VERSION=3\n// no setup here\n")
    model = v2.CreateBody.model_validate(body)
    assert check_v2(model) == []
    [finding] = check_v2(model, SETUP.replace('"ndvi"', '"value"'))
    assert finding.message == "the evalscript's setup() declares no output 'ndvi'"


# --- the parts of a body that is not valid ----------------------------------------------------


def test_parts_of_an_invalid_body_are_still_checked():
    body = with_responses(("ndvl", "image/tiff"))
    body["input"].update(resolution=50.0, tileSize=20040)  # an unknown field beside a wrong resolution
    body["output"]["delivery"]["s3"].update(accessKey="AKIA")  # half a credential pair: output invalid
    body["processRequest"]["input"]["data"][0]["type"] = "sentinel-2-l3z"
    assert [(f.path, f.message) for f in check_parts("v2", body)] == [
        (("processRequest", "output", "responses", 0, "identifier"), "the evalscript's setup() declares no output 'ndvl'"),
        (("input", "resolution"), "50 is not a resolution of tiling grid 0 (20km grid)"),
    ]


def test_parts_of_a_valid_body_give_what_the_whole_body_gives():
    for body in (V2_GEOTIFF, zarr_body(), with_responses(("ndvi", "image/jpeg"))):
        assert [(f.path, f.message) for f in check_parts("v2", body)] == findings_v2(body)
    for body in (v1_body(), v1_body(bucketName="s3://b"), v1_body(output={"defaultTilePath": "b/<tile>"})):
        assert [(f.path, f.message) for f in check_parts("v1", body)] == findings_v1(body)


def test_parts_of_a_v1_body_and_of_what_is_no_body():
    body = v1_body(bucketName="bucket", zarrOutput={"path": "s3://b/<tileName>"})  # zarrOutput lacks its group
    body["tilingGrid"]["resolution"] = 15.0
    assert {(f.path, f.message.split(" (")[0]) for f in check_parts("v1", body)} == {
        ((), "a v1 request needs exactly one of `output`, `bucketName`, `zarrOutput`"),
        (("tilingGrid", "resolution"), "15 is not a resolution of tiling grid 0"),
        (("tilingGrid", "id"), "Zarr output needs a WGS84 or LAEA grid; grid 0"),
    }
    assert check_parts("v2", None) == [] and check_parts("v2", {"processRequest": 5, "input": []}) == []
