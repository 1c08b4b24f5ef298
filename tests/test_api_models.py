"""The Batch API models: create bodies as the seeds write them, live objects as the service returns them."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from reconciler.batch.models import common, v1, v2

PROCESS_REQUEST = {
    "input": {
        "bounds": {"bbox": [8.44, 41.31, 9.66, 43.1], "properties": {"crs": common.CRS84}},
        "data": [
            {
                "type": "sentinel-2-l2a",
                "dataFilter": {
                    "timeRange": {"from": "2019-04-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"},
                    "maxCloudCoverage": 70.0,
                    "mosaickingOrder": "leastCC",  # data-source specific: passes through
                },
            }
        ],
    },
    "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
    "evalscript": "//VERSION=3\nfunction setup() {}",
}

V2_GEOTIFF = {
    "processRequest": PROCESS_REQUEST,
    "input": {"type": "tiling-grid", "id": 0, "resolution": 60.0},
    "output": {"type": "raster", "delivery": {"s3": {"url": "s3://bucket", "iamRoleARN": "arn:aws:iam::1:role/r"}}},
    "description": "Max NDVI over Corsica",
}


def zarr_body() -> dict:
    body = copy.deepcopy(V2_GEOTIFF)
    body["processRequest"]["output"]["responses"] = [
        {"identifier": name, "format": {"type": "zarr/array"}} for name in ("band08", "band04", "maxNDVI")
    ]
    body["input"] = {"type": "tiling-grid", "id": 6, "resolution": 100.0}
    body["output"] = {
        "type": "zarr",
        "delivery": {"s3": {"url": "s3://bucket/<requestId>", "iamRoleARN": "arn:aws:iam::1:role/r"}},
        "group": {"zarr_format": 2},
        "arrayParameters": {"dtype": "<u2", "order": "C", "chunks": [1, 1000, 1000], "fill_value": 0},
        "arrayOverrides": {"maxNDVI": {"dtype": "<f4", "fill_value": "NaN"}},
    }
    return body


def test_seed_v2_bodies_validate():
    geotiff = v2.CreateBody.model_validate(V2_GEOTIFF)
    assert isinstance(geotiff.input, v2.TilingGridInput) and geotiff.input.resolution == 60
    assert geotiff.processRequest.input.data[0].dataFilter.timeRange.from_ == "2019-04-01T00:00:00Z"
    zarr = v2.CreateBody.model_validate(zarr_body())
    assert isinstance(zarr.output, v2.ZarrOutput)
    assert zarr.output.arrayOverrides["maxNDVI"].fill_value == "NaN"
    gpkg = copy.deepcopy(V2_GEOTIFF)
    gpkg["input"] = {"type": "geopackage", "features": {"s3": {"url": "s3://bucket/f.gpkg", "iamRoleARN": "arn"}}}
    assert isinstance(v2.CreateBody.model_validate(gpkg).input, v2.GeoPackageInput)


def test_open_parts_keep_unknown_fields_and_closed_parts_reject_them():
    body = v2.CreateBody.model_validate(V2_GEOTIFF)
    assert body.processRequest.input.data[0].dataFilter.mosaickingOrder == "leastCC"  # a field of sentinel-2-l2a
    quality = copy.deepcopy(V2_GEOTIFF)
    quality["processRequest"]["output"]["responses"][0]["format"]["quality"] = 90  # formats pass through
    assert v2.CreateBody.model_validate(quality).processRequest.output.responses[0].format.model_extra == {"quality": 90}
    for path, key in [(("output",), "skipExisitng"), (("processRequest",), "evalscirpt"),
                      (("processRequest", "output"), "width"),
                      (("processRequest", "input", "data", 0, "dataFilter"), "maxCloudCoverge")]:
        bad = copy.deepcopy(V2_GEOTIFF)
        target = bad
        for part in path:
            target = target[part]
        target[key] = True
        with pytest.raises(ValidationError) as e:
            v2.CreateBody.model_validate(bad)
        assert [(error["type"], error["loc"][-1]) for error in e.value.errors()] == [("extra_forbidden", key)]


def test_rules_of_one_model_are_its_validators():
    body = copy.deepcopy(V2_GEOTIFF)
    body["processRequest"]["input"]["bounds"]["bbox"] = [9.66, 41.31, 8.44, 43.1]
    body["processRequest"]["input"]["data"][0]["dataFilter"]["timeRange"]["from"] = "2019-07-01T00:00:00Z"
    with pytest.raises(ValidationError) as e:
        v2.CreateBody.model_validate(body)
    assert {error["loc"][-1]: error["msg"] for error in e.value.errors()} == {
        "bbox": "Value error, expected [minX, minY, maxX, maxY] with min < max",
        "timeRange": "`from` (2019-07-01T00:00:00Z) is after `to` (2019-06-30T00:00:00Z)"}


@pytest.mark.parametrize(
    "path, value",
    [
        (("input", "resolution"), "60"),  # strings are not numbers
        (("input", "id"), True),  # booleans are not integers
        (("input", "type"), "tiling_grid"),
        (("output", "delivery", "s3", "url"), "https://bucket"),
        (("processRequest", "output", "responses"), []),
        (("processRequest", "input", "bounds"), {}),
    ],
)
def test_v2_body_rejects(path, value):
    body = copy.deepcopy(V2_GEOTIFF)
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        v2.CreateBody.model_validate(body)


def test_s3_credentials_go_in_pairs_and_not_with_a_role():
    with pytest.raises(ValidationError, match="go together"):
        common.S3Location.model_validate({"url": "s3://bucket", "accessKey": "a"})
    with pytest.raises(ValidationError, match="not both"):
        common.S3Location.model_validate({"url": "s3://bucket", "accessKey": "a", "secretAccessKey": "s", "iamRoleARN": "r"})


def test_zarr_time_chunk_must_be_one():
    body = zarr_body()
    body["output"]["arrayParameters"]["chunks"] = [2, 1000, 1000]
    with pytest.raises(ValidationError, match="time"):
        v2.CreateBody.model_validate(body)


def test_seed_v1_bodies_validate():
    geotiff = {"processRequest": PROCESS_REQUEST, "tilingGrid": {"id": 0, "resolution": 60.0}, "bucketName": "my-bucket"}
    assert v1.CreateBody.model_validate(geotiff).bucketName == "my-bucket"
    cog = {
        "processRequest": PROCESS_REQUEST,
        "tilingGrid": {"id": 0, "resolution": 60.0},
        "output": {"defaultTilePath": "s3://b/folder", "cogOutput": True, "createCollection": True},
        "description": "My collection",
    }
    assert v1.CreateBody.model_validate(cog).output.createCollection is True
    no_output = copy.deepcopy(geotiff)
    del no_output["processRequest"]["output"]  # v1 allows a default single output
    assert v1.CreateBody.model_validate(no_output).processRequest.output is None


def test_live_v2_task_accepts_unknown_fields_and_reads_what_sentinelhub_py_needs():
    task = v2.Task.model_validate(
        {
            "id": "497f6eca-6276-4993-bfeb-53cbbbba6f08",
            "request": V2_GEOTIFF,
            "domainAccountId": "4e1699b2-af74-455a-818d-6f1ec31a6d19",
            "status": "PROCESSING",
            "userAction": "START",
            "created": "2019-08-24T14:15:22Z",
            "completionPercentage": 42,
            "costPU": 12.5,
            "someNewField": {"added": "by the service"},
        }
    )
    assert task.status is v2.TaskStatus.PROCESSING
    assert task.completionPercentage == 42.0 and task.description == "Max NDVI over Corsica"
    assert task.model_extra == {"someNewField": {"added": "by the service"}}
    with pytest.raises(ValidationError):
        v2.Task.model_validate({"id": "x", "request": {}, "status": "PARTIAL"})  # no PARTIAL in v2


def test_live_v1_request_and_tile():
    request = v1.BatchRequest.model_validate(
        {"id": "r", "status": "PARTIAL", "tileCount": 12, "valueEstimate": 3.5, "userAction": "CANCEL", "extra": 1}
    )
    assert request.status is v1.RequestStatus.PARTIAL and request.tileCount == 12
    tile = v1.Tile.model_validate({"id": 7, "status": "FAILED", "cost": 0.5, "origin": {"type": "Point"}})
    assert tile.status is v1.TileStatus.FAILED


def test_enums_match_the_openapi_document():
    assert {s.value for s in v2.TaskStatus} == {
        "CREATED", "ANALYSING", "ANALYSIS_DONE", "PROCESSING", "DONE", "FAILED", "STOPPED"}
    assert {s.value for s in v1.RequestStatus} == {
        "CREATED", "ANALYSING", "ANALYSIS_DONE", "PROCESSING", "DONE", "PARTIAL", "FAILED", "CANCELED"}
    assert {a.value for a in v1.UserAction} == {"NONE", "ANALYSE", "START", "CANCEL"}
    assert {a.value for a in v2.UserAction} == {"NONE", "ANALYSE", "START", "STOP"}


def test_grids_page_and_error_body():
    page = common.Page[common.TilingGrid].model_validate(
        {
            "data": [{"id": 0, "name": "20km grid", "properties": {
                "tileWidth": 20040, "tileHeight": 20040, "resolutions": [10, 20, 60], "unit": "METRE"}}],
            "links": {"currentToken": "a", "nextToken": "b", "@id": "https://x"},
        }
    )
    assert page.data[0].properties.unit == "METRE" and page.links.nextToken == "b" and page.links.self_ == "https://x"
    error = common.ErrorBody.model_validate(
        {"error": {"status": 400, "reason": "Bad Request", "message": "Invalid", "code": "COMMON_BAD_PAYLOAD"}}
    )
    assert error.error.code == "COMMON_BAD_PAYLOAD"
