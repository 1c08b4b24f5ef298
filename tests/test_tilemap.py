"""`status NAME --map FILE`: a job's tiles coloured by status, with its area of interest — v1
from the tiles endpoint (tile by tile), v2 from the grid (the job's status)."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES, SandboxProcess, copy_evalscripts


def test_tile_maps_of_a_partial_v1_job_and_a_done_v2_job(tmp_path, monkeypatch, run_cli):
    flaky = SandboxProcess(tmp_path / "sandbox", "--speed", "20", "--tile-failure-rate", "0.3", "--seed", "4")
    try:
        for key, value in flaky.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "manifests").mkdir()
        copy_evalscripts(tmp_path / "manifests")
        for name in ("corsica-max-ndvi-v1.yaml", "corsica-max-ndvi.yaml"):
            text = (EXAMPLES / name).read_text()
            (tmp_path / "manifests" / name).write_text(text.replace("maxRestarts: 2", "maxRestarts: 0"))
        run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")

        code, out, _ = run_cli("status", "corsica-max-ndvi-v1", "--map", "v1.geojson")
        assert code == 0 and "66 tile(s)" in out
        collection = json.loads((tmp_path / "v1.geojson").read_text())
        tiles = [f for f in collection["features"] if f["properties"]["kind"] == "tile"]
        statuses = {f["properties"]["status"] for f in tiles}
        assert len(tiles) == 66 and statuses == {"PROCESSED", "FAILED"} and collection["properties"]["status"] == "PARTIAL"
        assert all(f["properties"]["statusOf"] == "tile" and f["geometry"]["type"] == "Polygon" for f in tiles)
        [area] = [f for f in collection["features"] if f["properties"]["kind"] == "aoi"]
        assert area["geometry"]["type"] == "Polygon"

        code, out, _ = run_cli("status", "corsica-max-ndvi", "--map", "v2.geojson")
        v2 = json.loads((tmp_path / "v2.geojson").read_text())
        assert {f["properties"].get("status") for f in v2["features"] if f["properties"]["kind"] == "tile"} <= {
            "PROCESSED", "FAILED"}

        for picture in ("v1.png", "v1.svg"):
            code, out, _ = run_cli("status", "corsica-max-ndvi-v1", "--map", picture)
            assert code == 0 and (tmp_path / picture).stat().st_size > 10_000
        assert (tmp_path / "v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"area of interest" in (tmp_path / "v1.svg").read_bytes()

        code, _, err = run_cli("status", "corsica-max-ndvi-v1", "--map", "tiles.bmp")
        assert code == 1 and "unknown format" in err
        code, _, err = run_cli("status", "nope", "--map", "x.png")
        assert code == 1 and "no managed job named 'nope'" in err
    finally:
        flaky.stop()
