"""The sandbox's Batch API v1 over real HTTP: request objects, tiles and their statuses, PARTIAL
and restartpartial, cancel, delete, and v2 tile failures."""

from __future__ import annotations

import copy
import time

from reconciler.manifests.loader import load
from tests.conftest import EXAMPLES, SandboxProcess
from tests.test_sandbox_v2 import example_body, objects

BASE = "/api/v1/batch/process"
ENDED = {"DONE", "PARTIAL", "FAILED", "CANCELED"}


def v1_body(name: str = "corsica-max-ndvi-v1", description: str = "v1 test") -> dict:
    [manifest] = [m for m in load([EXAMPLES]).manifests if m.name == name]
    return {**copy.deepcopy(manifest.body), "description": description}


def create(http, body: dict) -> dict:
    response = http.post(BASE, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(http, request_id: str, statuses: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (current := http.get(f"{BASE}/{request_id}").json())["status"] not in statuses:
        assert time.monotonic() < deadline, current["status"]
        time.sleep(0.05)
    return current


def tiles(http, request_id: str, status: str | None = None) -> list[dict]:
    found, token = [], None
    while True:
        params = {"count": 50, **({"status": status} if status else {}), **({"viewtoken": token} if token else {})}
        page = http.get(f"{BASE}/{request_id}/tiles", params=params).json()
        found += page["data"]
        if not (token := page["links"].get("nextToken")):
            return found


def test_lifecycle_with_tiles_listed(sandbox):
    http, s3 = sandbox.http(), sandbox.s3()
    request = create(http, v1_body())
    assert request["status"] == "CREATED" and request["userAction"] == "NONE"
    assert request["bucketName"] == "reconciler-demo-results" and request["tilingGrid"] == {"id": 0, "resolution": 60.0}
    assert "tileCount" not in request
    http.post(f"{BASE}/{request['id']}/analyse")
    analysed = wait_for(http, request["id"], {"ANALYSIS_DONE", "FAILED"})
    assert analysed["status"] == "ANALYSIS_DONE" and analysed["tileCount"] == 66 and analysed["valueEstimate"] > 0
    assert analysed["tileWidthPx"] == analysed["tileHeightPx"] == 334
    listed = tiles(http, request["id"])
    assert len(listed) == 66 and {t["status"] for t in listed} == {"PENDING"}
    one = http.get(f"{BASE}/{request['id']}/tiles/{listed[0]['id']}").json()
    assert one["id"] == listed[0]["id"] and one["origin"]["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32632"
    assert http.get(f"{BASE}/{request['id']}/tiles/1").status_code == 404
    http.post(f"{BASE}/{request['id']}/start")
    done = wait_for(http, request["id"], ENDED)
    assert done["status"] == "DONE" and done["userAction"] == "START"
    processed = tiles(http, request["id"], "PROCESSED")
    assert len(processed) == 66 and all(t["cost"] > 0 for t in processed)
    assert tiles(http, request["id"], "FAILED") == []
    assert len(objects(s3, "reconciler-demo-results", f"{request['id']}/")) == 66
    assert http.get(f"{BASE}/{request['id']}/tiles", params={"status": "DONE"}).status_code == 400


def test_partial_then_restartpartial_until_done(tmp_path):
    flaky = SandboxProcess(tmp_path, "--speed", "10", "--tile-failure-rate", "0.3", "--random-seed", "7")
    try:
        http = flaky.http()
        request = create(http, v1_body())
        http.post(f"{BASE}/{request['id']}/start")
        partial = wait_for(http, request["id"], ENDED)
        assert partial["status"] == "PARTIAL" and "tiles failed" in partial["error"]
        failed = tiles(http, request["id"], "FAILED")
        assert 0 < len(failed) < 66
        for _ in range(1, 10):
            assert http.post(f"{BASE}/{request['id']}/restartpartial").status_code == 204
            after = wait_for(http, request["id"], ENDED)
            if after["status"] == "DONE":
                break
            assert after["status"] == "PARTIAL"
            assert len(tiles(http, request["id"], "FAILED")) <= len(failed)
        assert after["status"] == "DONE"
        assert len(tiles(http, request["id"], "PROCESSED")) == 66
        refused = http.post(f"{BASE}/{request['id']}/restartpartial")
        assert refused.status_code == 400
        assert refused.json()["error"]["message"] == "Only requests with status PARTIAL can be restarted"
    finally:
        flaky.stop()


def test_every_tile_failing_fails_the_request_and_v2_fails_past_the_threshold(tmp_path):
    broken = SandboxProcess(tmp_path, "--speed", "10", "--tile-failure-rate", "1")
    try:
        http = broken.http()
        request = create(http, v1_body())
        http.post(f"{BASE}/{request['id']}/start")
        assert wait_for(http, request["id"], ENDED)["status"] == "FAILED"
        task = http.post("/api/v2/batch/process", json=example_body("corsica-max-ndvi")).json()
        http.post(f"/api/v2/batch/process/{task['id']}/start")
        deadline = time.monotonic() + 60
        while (task := http.get(f"/api/v2/batch/process/{task['id']}").json())["status"] not in ("DONE", "FAILED"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert task["status"] == "FAILED" and task["error"] == "66 of 66 tiles failed"
    finally:
        broken.stop()


def test_cancel(tmp_path):
    slow = SandboxProcess(tmp_path, "--tile-seconds", "0.2", "--workers", "1", "--analysis-seconds", "0.5",
                          "--manual-clock")
    try:
        http = slow.http()
        during_analysis = create(http, v1_body())
        http.post(f"{BASE}/{during_analysis['id']}/analyse")
        assert http.post(f"{BASE}/{during_analysis['id']}/cancel").status_code == 204
        assert http.get(f"{BASE}/{during_analysis['id']}").json()["status"] == "ANALYSING"  # analysis completes first
        slow.advance(0.5)
        canceled = http.get(f"{BASE}/{during_analysis['id']}").json()
        assert canceled["status"] == "CANCELED" and canceled["tileCount"] == 66 and canceled["userAction"] == "CANCEL"

        running = create(http, v1_body())
        http.post(f"{BASE}/{running['id']}/start")
        slow.advance(0.5)  # analysed; the first tile is being processed
        assert http.get(f"{BASE}/{running['id']}").json()["status"] == "PROCESSING"
        assert http.put(f"{BASE}/{running['id']}", json={"description": "no"}).status_code == 409
        assert http.delete(f"{BASE}/{running['id']}").status_code == 409
        slow.advance(0.5)  # two tiles processed, a third under way
        http.post(f"{BASE}/{running['id']}/cancel")
        canceled = http.get(f"{BASE}/{running['id']}").json()
        assert canceled["status"] == "CANCELED"
        slow.advance(0.5)
        assert {t["status"] for t in tiles(http, running["id"])} <= {"PROCESSED", "SCHEDULED"}
        assert http.post(f"{BASE}/{running['id']}/cancel").status_code == 400
        assert http.delete(f"{BASE}/{running['id']}").status_code == 409  # it has processed tiles
    finally:
        slow.stop()


def test_put_and_delete(sandbox):
    http = sandbox.http()
    request = create(http, v1_body("corsica-ndvi-collection"))
    put = http.put(f"{BASE}/{request['id']}", json={"description": "Corsica NDVI collection, renamed"})
    assert put.status_code == 200 and put.json()["description"] == "Corsica NDVI collection, renamed"
    assert put.json()["id"] == request["id"] and put.json()["output"]["createCollection"] is True
    assert http.delete(f"{BASE}/{request['id']}").status_code == 204
    assert http.get(f"{BASE}/{request['id']}").status_code == 404
    assert http.delete(f"{BASE}/{request['id']}").status_code == 404


def test_v1_and_v2_ids_do_not_mix_and_listing_pages(sandbox):
    http = sandbox.http()
    task = http.post("/api/v2/batch/process", json=example_body("corsica-geopackage")).json()
    assert http.get(f"{BASE}/{task['id']}").status_code == 404
    marker = f"v1-paging-{time.time_ns()}"
    created = [create(http, v1_body(description=f"{marker} {i}"))["id"] for i in range(5)]
    first = http.get(BASE, params={"search": marker, "count": 2}).json()
    second = http.get(BASE, params={"search": marker, "count": 2, "viewtoken": first["links"]["nextToken"]}).json()
    assert [r["id"] for r in first["data"] + second["data"]] == created[:4]
    grids = http.get("/api/v1/batch/tilinggrids").json()["data"]
    assert [g["id"] for g in grids] == [0, 1, 2, 3, 6, 7]


def test_invalid_v1_bodies_get_400(sandbox):
    http = sandbox.http()
    body = v1_body()
    body["output"] = {"defaultTilePath": "s3://reconciler-demo-results/x"}  # and bucketName: two destinations
    response = http.post(BASE, json=body)
    assert response.status_code == 400 and "exactly one of" in response.json()["error"]["message"]
    body = v1_body()
    body["input"] = {"type": "tiling-grid", "id": 0, "resolution": 60}
    assert http.post(BASE, json=body).status_code == 400
