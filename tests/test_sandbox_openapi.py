"""What an OpenAPI fuzzer (schemathesis over `batch-openapi.yaml`) found the sandbox missing, each
as the document describes it: `Allow` on a 405, tiling grids paged by `count`/`viewtoken`, `count`
refused beyond int32, multipart/form-data creates, v1's deprecated `tilingGridId`/`resolution`,
v1 PUT `output.collectionId`; and the bound on the tiles of one analysis."""

from __future__ import annotations

import io
import json

import pytest

from reconciler.sandbox.geopackage import feature_tiles
from reconciler.sandbox.limits import MAX_TILES_PER_ANALYSIS, check_tile_count
from reconciler.sandbox.worker import analyse_request
from tests.test_sandbox_v1 import v1_body
from tests.test_sandbox_v1 import wait_for as wait_for_v1
from tests.test_sandbox_v2 import example_body, wait_for, write_geopackage

V1, V2 = "/api/v1/batch", "/api/v2/batch"
WORLD = [-180.0, -80.0, 180.0, 84.0]
INT32_MAX = 2 ** 31 - 1


def test_a_method_the_path_does_not_have_gets_405_with_allow(sandbox):
    http = sandbox.http()
    task = http.post(f"{V2}/process", json=example_body("corsica-max-ndvi", "405")).json()
    for method, url, allowed in (("DELETE", f"{V2}/process/{task['id']}", {"GET", "PUT"}),
                                 ("PATCH", f"{V1}/process", {"GET", "POST"}),
                                 ("POST", f"{V2}/tilinggrids", {"GET"})):
        answer = http.request(method, url)
        assert answer.status_code == 405 and answer.json()["error"]["status"] == 405
        listed = {m.strip() for m in answer.headers["Allow"].split(",")}
        assert allowed <= listed and method not in listed, (url, listed)


@pytest.mark.parametrize("api", [V1, V2])
def test_tiling_grids_page_by_count_and_viewtoken(sandbox, api):
    http = sandbox.http()
    seen, url, pages = [], f"{api}/tilinggrids?count=4", 0
    while url:
        page = http.get(url).json()
        seen, url, pages = seen + [g["id"] for g in page["data"]], page["links"].get("next"), pages + 1
    assert (seen, pages) == ([0, 1, 2, 3, 6, 7], 2)
    second = http.get(f"{api}/tilinggrids", params={"count": 4}).json()["links"]["nextToken"]
    assert [g["id"] for g in http.get(f"{api}/tilinggrids", params={"viewtoken": second}).json()["data"]] == [6, 7]
    assert http.get(f"{api}/tilinggrids", params={"viewtoken": "garbage!"}).status_code == 400


def test_a_count_beyond_int32_is_refused_with_the_error_body(sandbox):
    http = sandbox.http()
    request = http.post(f"{V1}/process", json=v1_body(description="count")).json()
    for url in (f"{V2}/process", f"{V1}/process", f"{V2}/tilinggrids", f"{V1}/process/{request['id']}/tiles"):
        assert http.get(url, params={"count": INT32_MAX}).status_code == 200  # the page size caps it
        for count in (INT32_MAX + 1, -(2 ** 31) - 1, 10 ** 30):
            answer = http.get(url, params={"count": count})
            assert answer.status_code == 400, (url, count)
            assert answer.json()["error"] == {"status": 400, "reason": "Bad Request", "code": "COMMON_BAD_PAYLOAD",
                                              "message": "Invalid count: it must be a 32-bit integer"}


@pytest.mark.parametrize("api, manifest", [(V2, "corsica-max-ndvi"), (V1, "corsica-max-ndvi-v1")])
def test_multipart_create_takes_the_request_part_and_the_evalscript_part(sandbox, api, manifest):
    http = sandbox.http()
    body = example_body(manifest, "multipart")
    evalscript = body["processRequest"].pop("evalscript")
    parts = {"request": (None, json.dumps(body), "application/json"), "evalscript": (None, evalscript, "text/plain")}
    created = http.post(f"{api}/process", files=parts)
    assert created.status_code == 201, created.text
    stored = created.json()["request"] if api == V2 else created.json()
    assert stored["processRequest"]["evalscript"] == evalscript and stored["description"] == "multipart"
    as_files = {"request": ("request.json", io.BytesIO(json.dumps(body).encode()), "application/json"),
                "evalscript": ("script.js", io.BytesIO(evalscript.encode()), "application/javascript")}
    assert http.post(f"{api}/process", files=as_files).status_code == 201  # parts sent as files work too
    whole = {"request": (None, json.dumps(example_body(manifest)), "application/json")}
    assert http.post(f"{api}/process", files=whole).status_code == 201  # the evalscript inside `request`
    for parts, reason in (({"evalscript": (None, evalscript)}, "part named `request`"),
                          ({"request": (None, "{not json")}, "not JSON"),
                          ({"request": (None, json.dumps(body))}, "evalscript")):  # no evalscript anywhere
        refused = http.post(f"{api}/process", files=parts)
        assert refused.status_code == 400 and reason in refused.text, refused.text


def test_v1_takes_the_deprecated_tiling_grid_id_and_resolution_as_tiling_grid(sandbox):
    http = sandbox.http()
    body = v1_body(description="deprecated grid")
    grid = body.pop("tilingGrid")
    created = http.post(f"{V1}/process", json={**body, "tilingGridId": grid["id"], "resolution": grid["resolution"]})
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["tilingGrid"] == grid and "tilingGridId" not in request and "resolution" not in request
    http.post(f"{V1}/process/{request['id']}/analyse")
    assert wait_for_v1(http, request["id"], {"ANALYSIS_DONE", "FAILED"})["tileCount"] == 66  # analysed on that grid
    same = {**body, "tilingGrid": grid, "tilingGridId": grid["id"]}
    assert http.post(f"{V1}/process", json=same).status_code == 201
    clash = http.post(f"{V1}/process", json={**body, "tilingGrid": grid, "resolution": 10.0})
    assert clash.status_code == 400 and "`resolution` (deprecated)" in clash.json()["error"]["message"]
    alone = http.post(f"{V1}/process", json={**body, "tilingGridId": grid["id"]})  # no resolution anywhere
    assert alone.status_code == 400 and "tilingGrid.resolution" in alone.json()["error"]["message"]


def test_v1_put_links_and_unlinks_a_collection(sandbox):
    http = sandbox.http()
    body = v1_body("corsica-ndvi-collection", "collection link")
    del body["output"]["createCollection"]
    url = f"{V1}/process/" + http.post(f"{V1}/process", json=body).json()["id"]
    collection = "5e8f0a3c-1b2d-4c6e-8f9a-0b1c2d3e4f5a"
    linked = http.put(url, json={"output": {"collectionId": collection}})
    assert linked.status_code == 200 and linked.json()["output"]["collectionId"] == collection
    assert http.get(url).json()["output"] == {**body["output"], "collectionId": collection}
    renamed = http.put(url, json={"description": "renamed"}).json()  # no `output`: the link stays
    assert renamed["description"] == "renamed" and renamed["output"]["collectionId"] == collection
    assert "collectionId" not in http.put(url, json={"output": {}}).json()["output"]  # omitted: unlinked
    http.put(url, json={"output": {"collectionId": collection}})
    assert "collectionId" not in http.put(url, json={"output": {"collectionId": None}}).json()["output"]
    for bad in ({"output": {"collectionId": 5}}, {"output": {"collectionId": ""}}, {"output": "x"}):
        answer = http.put(url, json=bad)
        assert answer.status_code == 400 and answer.json()["error"]["status"] == 400, bad
    assert "collectionId" not in http.get(url).json()["output"]  # a refused PUT changed nothing

    creating = f"{V1}/process/" + http.post(f"{V1}/process", json=v1_body("corsica-ndvi-collection")).json()["id"]
    both = http.put(creating, json={"output": {"collectionId": collection}})
    assert both.status_code == 400 and "Only one of `createCollection` and `collectionId`" in both.text
    plain = f"{V1}/process/" + http.post(f"{V1}/process", json=v1_body()).json()["id"]  # bucketName, no COG
    assert "cogOutput" in http.put(plain, json={"output": {"collectionId": collection}}).text
    assert http.put(plain, json={"output": {}}).status_code == 200 and "output" not in http.get(plain).json()


def test_an_analysis_over_too_many_tiles_fails_before_listing_them(sandbox):
    process = example_body("corsica-max-ndvi")["processRequest"]
    world = {**process, "input": {**process["input"], "bounds": {"bbox": WORLD}}}
    tiles, error = analyse_request({"processRequest": world, "input": {"type": "tiling-grid", "id": 0,
                                                                         "resolution": 60.0}}, s3=None)
    assert tiles is None and "covers at least" in error  # the estimate refused it: no tile was listed
    assert f"more than the {MAX_TILES_PER_ANALYSIS:,}" in error and "tiling grid 0 (20km grid)" in error

    http = sandbox.http()
    body = example_body("corsica-max-ndvi", "the world")
    body["processRequest"]["input"]["bounds"]["bbox"] = WORLD
    task = http.post(f"{V2}/process", json=body).json()
    http.post(f"{V2}/process/{task['id']}/analyse")
    failed = wait_for(http, task["id"], {"ANALYSIS_DONE", "FAILED"})
    assert failed["status"] == "FAILED" and failed["error"] == error


def test_the_tile_bound_is_a_floor_estimate_and_an_exact_count():
    corsica = {"bbox": [8.44, 41.31, 9.66, 43.1]}
    check_tile_count(corsica, 0)  # 66 tiles: fine
    check_tile_count({"bbox": [-10.0, 35.0, 30.0, 60.0]}, 2)  # Europe on the 100 km grid: fine
    with pytest.raises(ValueError, match="covers at least 1,2"):
        check_tile_count({"bbox": WORLD}, 0)  # about 1.3 M
    check_tile_count({"bbox": [-180.0, -90.0, 180.0, 90.0]}, 3)  # the world in 64,800 1° cells: fine
    with pytest.raises(ValueError, match=f"exactly {MAX_TILES_PER_ANALYSIS + 1:,} tiles"):
        check_tile_count(corsica, 0, counted=MAX_TILES_PER_ANALYSIS + 1)
    check_tile_count(corsica, 0, counted=MAX_TILES_PER_ANALYSIS)


class _OneObjectS3:
    """A fake S3 holding one object, for reading a GeoPackage without a server."""

    def __init__(self, data: bytes):
        self.data = data

    def get_object(self, Bucket: str, Key: str) -> dict:  # boto3's argument names
        return {"Body": io.BytesIO(self.data)}


def test_a_geopackage_with_more_features_than_the_bound_fails_before_reading_them(tmp_path):
    import sqlite3

    path = tmp_path / "many.gpkg"
    write_geopackage(path, [[(9.0, 42.0), (9.01, 42.0), (9.01, 42.01), (9.0, 42.01), (9.0, 42.0)]])
    with sqlite3.connect(path) as db:
        (blob,) = db.execute("SELECT geom FROM fields").fetchone()
        db.executemany("INSERT INTO fields (identifier, geom) VALUES (?, ?)",
                       ((f"f{i}", blob) for i in range(MAX_TILES_PER_ANALYSIS)))
    source = {"type": "geopackage", "features": {"s3": {"url": "s3://inputs/many.gpkg"}}}
    with pytest.raises(ValueError, match=f"holds {MAX_TILES_PER_ANALYSIS + 1:,} features, more than"):
        feature_tiles(source, _OneObjectS3(path.read_bytes()))
