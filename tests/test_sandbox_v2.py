"""The sandbox's Batch API v2 over real HTTP: auth, every endpoint with its codes and bodies, the
status machine on its clock, real analysis, outputs in the delivery bucket."""

from __future__ import annotations

import copy
import time

import pytest

from reconciler.manifests.loader import load
from tests.conftest import EXAMPLES, SandboxProcess

TERMINAL = {"DONE", "FAILED", "STOPPED"}


def example_body(name: str, description: str = "sandbox test") -> dict:
    [manifest] = [m for m in load([EXAMPLES]).manifests if m.name == name]
    return {**copy.deepcopy(manifest.body), "description": description}


def wait_for(http, task_id: str, statuses: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = http.get(f"/api/v2/batch/process/{task_id}").json()
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"still {task['status']} after {timeout} s"
        time.sleep(0.05)


def create(http, body: dict) -> dict:
    response = http.post("/api/v2/batch/process", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def objects(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_token_endpoint_and_authentication(sandbox):
    import requests

    env = sandbox.env
    bad = requests.post(env["SH_TOKEN_URL"], data={"grant_type": "client_credentials", "client_id": env["SH_CLIENT_ID"],
                                                   "client_secret": "wrong"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    good = requests.post(env["SH_TOKEN_URL"], data={"grant_type": "client_credentials", "client_id": env["SH_CLIENT_ID"],
                                                    "client_secret": env["SH_CLIENT_SECRET"]}, timeout=10).json()
    assert good["token_type"] == "Bearer" and good["expires_in"] == 3600
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(good["access_token"].split(".")[1] + "=="))
    assert payload["azp"] == env["SH_CLIENT_ID"] and payload["exp"] > time.time()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {good['access_token']}x"}):
        response = requests.get(env["SH_BASE_URL"] + "/api/v2/batch/process", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "COMMON_UNAUTHORIZED"


def test_create_returns_a_task_with_every_field_clients_read(sandbox):
    http = sandbox.http()
    task = create(http, example_body("corsica-max-ndvi"))
    assert task["status"] == "CREATED" and task["userAction"] == "NONE"
    assert task["request"]["description"] == "sandbox test" and task["request"]["input"]["id"] == 0
    for field in ("id", "domainAccountId", "projectId", "workspaceId", "created", "lastUpdated"):
        assert task[field]
    assert task["completionPercentage"] == 0 and task["costPU"] == 0
    assert http.get(f"/api/v2/batch/process/{task['id']}").json() == task


@pytest.mark.parametrize(
    "change, parameter",
    [
        (lambda b: b["input"].update(resolution=25), "input.resolution"),
        (lambda b: b["output"].update(bogus=True), "output.raster.bogus"),
        (lambda b: b.pop("processRequest"), "processRequest"),
    ],
)
def test_invalid_bodies_get_400_in_the_official_shape(sandbox, change, parameter):
    body = example_body("corsica-max-ndvi")
    change(body)
    response = sandbox.http().post("/api/v2/batch/process", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400 and error["code"] == "COMMON_BAD_PAYLOAD" and error["reason"] == "Bad Request"
    assert any(parameter in v["parameter"] for v in error["errors"]["violations"]), error


def test_analyse_then_start_runs_to_done_and_writes_every_tile(sandbox):
    http, s3 = sandbox.http(), sandbox.s3()
    task = create(http, example_body("corsica-max-ndvi"))
    assert http.post(f"/api/v2/batch/process/{task['id']}/analyse").status_code == 204
    analysed = wait_for(http, task["id"], {"ANALYSIS_DONE", "FAILED"})
    assert analysed["status"] == "ANALYSIS_DONE" and analysed["userAction"] == "ANALYSE"
    estimate = analysed["costPU"]
    assert estimate > 0
    assert http.post(f"/api/v2/batch/process/{task['id']}/start").status_code == 204
    done = wait_for(http, task["id"], TERMINAL)
    assert done["status"] == "DONE" and done["completionPercentage"] == 100 and done["userAction"] == "START"
    assert done["costPU"] == pytest.approx(estimate, rel=1e-6)
    keys = objects(s3, "reconciler-demo-results", f"corsica-max-ndvi/{task['id']}/")
    assert keys and all(k.endswith("/default.tif") for k in keys)
    tiles = {k.split("/")[2] for k in keys}
    assert len(keys) == len(tiles)  # one output per tile


def test_start_from_created_analyses_then_processes(sandbox):
    http = sandbox.http()
    task = create(http, example_body("corsica-max-ndvi-zarr"))
    http.post(f"/api/v2/batch/process/{task['id']}/start")
    assert wait_for(http, task["id"], TERMINAL)["status"] == "DONE"
    keys = objects(sandbox.s3(), "reconciler-demo-results", f"zarr/{task['id']}/")
    assert {".zgroup", ".zattrs", "maxNDVI/.zarray", "band04/.zarray", "band08/.zattrs"} <= {
        k.split(f"{task['id']}/", 1)[1] for k in keys}
    assert any(k.endswith("maxNDVI/0.0.0") for k in keys)


def test_stop_and_resume(tmp_path):
    slow = SandboxProcess(tmp_path, "--tile-seconds", "0.2", "--workers", "1", "--analysis-seconds", "0.1",
                          "--manual-clock")
    try:
        http = slow.http()
        task = create(http, example_body("corsica-max-ndvi"))
        http.post(f"/api/v2/batch/process/{task['id']}/start")
        slow.advance(0.1)  # analysed; the first tile is being processed
        running = http.get(f"/api/v2/batch/process/{task['id']}").json()
        assert running["status"] == "PROCESSING"
        assert http.put(f"/api/v2/batch/process/{task['id']}", json={"description": "x"}).status_code == 409
        slow.advance(0.5)  # two tiles processed, a third under way
        assert http.post(f"/api/v2/batch/process/{task['id']}/stop").status_code == 204
        stopped = http.get(f"/api/v2/batch/process/{task['id']}").json()
        assert stopped["status"] == "STOPPED" and stopped["stoppedStatusReason"] == "USER_ACTION"
        assert 0 < stopped["completionPercentage"] < 100 and running["userAction"] == "START"
        slow.advance(0.5)
        assert http.get(f"/api/v2/batch/process/{task['id']}").json()["completionPercentage"] == stopped["completionPercentage"]
        put = http.put(f"/api/v2/batch/process/{task['id']}", json={"description": "renamed while stopped"})
        assert put.status_code == 200 and put.json()["description"] == "renamed while stopped" and "id" not in put.json()
        assert http.post(f"/api/v2/batch/process/{task['id']}/start").status_code == 204
        slow.advance(66 * 0.2)  # every tile, one at a time, even had none been done
        done = http.get(f"/api/v2/batch/process/{task['id']}").json()
        assert done["status"] == "DONE" and done["request"]["description"] == "renamed while stopped"
    finally:
        assert slow.stop() == 0


def test_actions_the_status_does_not_allow_get_400_and_unknown_ids_404(sandbox):
    http = sandbox.http()
    task = create(http, example_body("corsica-max-ndvi"))
    stop = http.post(f"/api/v2/batch/process/{task['id']}/stop")
    assert stop.status_code == 400 and "CREATED" in stop.json()["error"]["message"]
    http.post(f"/api/v2/batch/process/{task['id']}/start")
    wait_for(http, task["id"], TERMINAL)
    for action in ("analyse", "start", "stop"):
        response = http.post(f"/api/v2/batch/process/{task['id']}/{action}")
        assert response.status_code == 400 and response.json()["error"]["status"] == 400
    missing = http.get("/api/v2/batch/process/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "COMMON_NOT_FOUND"
    assert http.post("/api/v2/batch/process/nope/start").status_code == 404


def test_listing_pages_sorts_and_searches(sandbox):
    http = sandbox.http()
    marker = f"paging-{time.time_ns()}"
    created = [create(http, example_body("corsica-geopackage", f"{marker} job {i}"))["id"] for i in range(25)]
    seen, token, pages = [], None, 0
    while True:
        params = {"count": 10, "search": marker, **({"viewtoken": token} if token else {})}
        page = http.get("/api/v2/batch/process", params=params).json()
        pages += 1
        seen += [t["id"] for t in page["data"]]
        token = page["links"].get("nextToken")
        if not token:
            break
        assert page["links"]["next"].startswith(sandbox.env["SH_BASE_URL"])
    assert pages == 3 and seen == created
    desc = http.get("/api/v2/batch/process", params={"search": marker, "sort": "created:desc", "count": 5}).json()
    assert [t["id"] for t in desc["data"]] == created[::-1][:5]
    both = http.get("/api/v2/batch/process", params={"search": f"{marker}&job 24|nothing-matches-this"}).json()
    assert [t["id"] for t in both["data"]] == [created[24]]
    assert http.get("/api/v2/batch/process", params={"viewtoken": "garbage!"}).status_code == 400


def test_tiling_grids(sandbox):
    http = sandbox.http()
    grids = http.get("/api/v2/batch/tilinggrids").json()["data"]
    assert [g["id"] for g in grids] == [0, 1, 2, 3, 6, 7]
    grid = http.get("/api/v2/batch/tilinggrids/0").json()
    assert grid["properties"] == {"tileWidth": 20040.0, "tileHeight": 20040.0, "resolutions": [10.0, 20.0, 30.0, 60.0],
                                  "unit": "METRE"}
    assert http.get("/api/v2/batch/tilinggrids/5").status_code == 404


def test_skip_existing_and_overwrite(sandbox):
    http = sandbox.http()
    body = example_body("corsica-max-ndvi")
    body["output"]["delivery"]["s3"]["url"] = f"s3://reconciler-demo-results/fixed-{time.time_ns()}/<tileName>/<outputId>.tif"
    first = create(http, body)
    http.post(f"/api/v2/batch/process/{first['id']}/start")
    first = wait_for(http, first["id"], TERMINAL)
    assert first["status"] == "DONE"

    again = create(http, body)
    http.post(f"/api/v2/batch/process/{again['id']}/start")
    failed = wait_for(http, again["id"], TERMINAL)
    assert failed["status"] == "FAILED" and "already exist" in failed["error"]

    body["output"]["skipExisting"] = True
    skip = create(http, body)
    http.post(f"/api/v2/batch/process/{skip['id']}/start")
    skipped = wait_for(http, skip["id"], TERMINAL)
    assert skipped["status"] == "DONE" and skipped["costPU"] == 0 and skipped["completionPercentage"] == 100


def test_stats_count_requests_per_endpoint(sandbox):
    import requests

    http = sandbox.http()
    before = requests.get(sandbox.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]
    http.get("/api/v2/batch/tilinggrids")
    http.get("/api/v2/batch/tilinggrids")
    after = requests.get(sandbox.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]
    key = "GET /api/v2/batch/tilinggrids"
    assert after[key] == before.get(key, 0) + 2


def test_tokens_expire(tmp_path):
    import base64
    import json

    short = SandboxProcess(tmp_path, "--token-ttl", "1")
    try:
        http = short.http()
        token = http.headers["Authorization"].removeprefix("Bearer ")
        expires = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        assert http.get("/api/v2/batch/tilinggrids").status_code == 200
        while time.time() < expires:  # tokens live in real time (the job clock does not move them)
            time.sleep(0.02)
        expired = http.get("/api/v2/batch/tilinggrids")
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    finally:
        short.stop()


def test_sigterm_stops_cleanly_and_removes_the_env_file(tmp_path):
    process = SandboxProcess(tmp_path)
    assert process.env_file.exists()
    assert process.stop() == 0
    assert not process.env_file.exists()


def write_geopackage(path, polygons: list[list[tuple[float, float]]]) -> None:
    """A minimal GeoPackage (SQLite) with one feature table in EPSG:4326."""
    import sqlite3
    import struct

    import shapely

    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY, organization TEXT,
                organization_coordsys_id INTEGER, definition TEXT, description TEXT);
            CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY, data_type TEXT, identifier TEXT,
                description TEXT, last_change TEXT, min_x REAL, min_y REAL, max_x REAL, max_y REAL, srs_id INTEGER);
            CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT, geometry_type_name TEXT,
                srs_id INTEGER, z INTEGER, m INTEGER);
            CREATE TABLE fields (fid INTEGER PRIMARY KEY, identifier TEXT, geom BLOB);
            INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84', 4326, 'EPSG', 4326, '', '');
            INSERT INTO gpkg_contents VALUES ('fields', 'features', 'fields', '', '', 0, 0, 0, 0, 4326);
            INSERT INTO gpkg_geometry_columns VALUES ('fields', 'geom', 'POLYGON', 4326, 0, 0);
        """)
        for i, ring in enumerate(polygons, 1):
            header = b"GP" + bytes([0, 0b00000001]) + struct.pack("<i", 4326)  # no envelope, little endian
            db.execute("INSERT INTO fields VALUES (?, ?, ?)", (i, f"field-{i}", header + shapely.to_wkb(shapely.Polygon(ring))))


def test_geopackage_input_makes_one_tile_per_feature_and_fails_when_missing(sandbox, tmp_path):
    http, s3 = sandbox.http(), sandbox.s3()
    body = example_body("corsica-geopackage")
    key = f"gpkg-{time.time_ns()}/fields.gpkg"
    body["input"]["features"]["s3"]["url"] = f"s3://reconciler-demo-inputs/{key}"
    body["input"]["defaults"] = {"resolution": 0.001}

    missing = create(http, body)
    http.post(f"/api/v2/batch/process/{missing['id']}/analyse")
    failed = wait_for(http, missing["id"], {"ANALYSIS_DONE", "FAILED"})
    assert failed["status"] == "FAILED" and "GeoPackage" in failed["error"]

    path = tmp_path / "fields.gpkg"
    write_geopackage(path, [[(9.0, 42.0), (9.01, 42.0), (9.01, 42.01), (9.0, 42.01), (9.0, 42.0)],
                            [(9.1, 42.1), (9.12, 42.1), (9.12, 42.12), (9.1, 42.12), (9.1, 42.1)]])
    s3.put_object(Bucket="reconciler-demo-inputs", Key=key, Body=path.read_bytes())
    task = create(http, body)
    http.post(f"/api/v2/batch/process/{task['id']}/start")
    done = wait_for(http, task["id"], TERMINAL)
    assert done["status"] == "DONE" and done["costPU"] > 0
    keys = objects(s3, "reconciler-demo-results", f"corsica-geopackage/{task['id']}/")
    assert [k.split("/")[2] for k in keys] == ["field-1", "field-2"]


def test_sigint_stops_cleanly_too(tmp_path):
    import signal

    process = SandboxProcess(tmp_path)
    process.process.send_signal(signal.SIGINT)
    assert process.process.wait(timeout=20) == 0
    assert not process.env_file.exists()
