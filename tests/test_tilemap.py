"""`status NAME --map FILE`: a job's tiles with their grid names and its area of interest, over a
graticule; a status only where the service keeps one — v1 tile by tile from its tiles endpoint, v2
none (the legend says so) — and a GeoPackage job's features read from the sandbox's S3."""

from __future__ import annotations

import json

import pytest

from reconciler.render.tilemap import COLOURS, degrees
from tests.conftest import EXAMPLES, SandboxProcess, copy_evalscripts, rename_examples
from tests.test_sandbox_v2 import write_geopackage

NO_V2_STATUS = "per-tile status not available in Batch v2"
FIELDS = [[(9.0, 42.0), (9.01, 42.0), (9.01, 42.01), (9.0, 42.01), (9.0, 42.0)],
          [(9.1, 42.1), (9.12, 42.1), (9.12, 42.12), (9.1, 42.12), (9.1, 42.1)]]


def _tiles(collection: dict) -> list[dict]:
    return [f for f in collection["features"] if f["properties"]["kind"] == "tile"]


def test_v1_tiles_keep_their_statuses_and_v2_tiles_claim_none(tmp_path, monkeypatch, run_cli):
    flaky = SandboxProcess(tmp_path / "sandbox", "--speed", "20", "--tile-failure-rate", "0.3", "--random-seed", "4")
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
        assert code == 0 and "66 tile(s) (" in out and "FAILED" in out
        collection = json.loads((tmp_path / "v1.geojson").read_text())
        tiles = _tiles(collection)
        assert len(tiles) == 66 and collection["properties"]["status"] == "PARTIAL"
        assert {f["properties"]["status"] for f in tiles} == {"PROCESSED", "FAILED"}
        assert all(f["properties"]["statusOf"] == "tile" and f["geometry"]["type"] == "Polygon" for f in tiles)
        names = [f["properties"]["name"] for f in tiles]
        assert len(set(names)) == 66 and all(name.startswith("32N_") for name in names)  # grid 1, UTM zone 32
        [area] = [f for f in collection["features"] if f["properties"]["kind"] == "aoi"]
        assert area["geometry"]["type"] == "Polygon"

        # v2 has no per-tile status: a FAILED job (some of its tiles failed) shows no failed tile
        code, out, _ = run_cli("status", "corsica-max-ndvi", "--map", "v2.geojson")
        v2 = json.loads((tmp_path / "v2.geojson").read_text())
        assert code == 0 and v2["properties"]["status"] == "FAILED" and "tiles failed" in v2["properties"]["error"]
        assert v2["properties"]["tileStatus"] == NO_V2_STATUS and NO_V2_STATUS in out
        assert out.startswith("Wrote v2.geojson: 66 tile(s), job FAILED at ")
        assert len(_tiles(v2)) == 66 and all(f["properties"]["status"] is None for f in _tiles(v2))
        assert {f["properties"]["name"] for f in _tiles(v2)} == set(names)

        code, _, _ = run_cli("status", "corsica-max-ndvi", "--map", "v2.svg")
        svg = (tmp_path / "v2.svg").read_text()
        assert code == 0 and NO_V2_STATUS in svg and "tile in the job's area (66)" in svg
        assert COLOURS["FAILED"] not in svg and COLOURS["PROCESSED"] not in svg
        assert "42°N" in svg and "9°E" in svg  # the graticule's labels

        for picture in ("v1.png", "v1.svg"):
            code, out, _ = run_cli("status", "corsica-max-ndvi-v1", "--map", picture)
            assert code == 0 and (tmp_path / picture).stat().st_size > 10_000
        assert (tmp_path / "v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (tmp_path / "v1.svg").read_text()
        assert "area of interest" in svg and COLOURS["FAILED"] in svg and COLOURS["PROCESSED"] in svg
        assert "42°N" in svg and "job PARTIAL" in svg

        code, _, err = run_cli("status", "corsica-max-ndvi-v1", "--map", "tiles.bmp")
        assert code == 1 and "unknown format" in err
        code, _, err = run_cli("status", "nope", "--map", "x.png")
        assert code == 1 and "no managed job named 'nope'" in err
    finally:
        flaky.stop()


def test_a_geopackage_jobs_map_draws_its_features_or_says_why_not(workspace, sandbox, run_cli):
    manifests = workspace / "manifests"
    for path in manifests.glob("*.yaml"):
        if path.name not in ("corsica-geopackage.yaml", "corsica-max-ndvi-v1.yaml"):
            path.unlink()
    key = f"maps/{workspace.name}/fields.gpkg"
    geopackage = manifests / "corsica-geopackage.yaml"
    geopackage.write_text(geopackage.read_text().replace("corsica/fields.gpkg", key))
    v1 = manifests / "corsica-max-ndvi-v1.yaml"
    v1.write_text(v1.read_text().replace("state: started", "state: created"))
    rename_examples(workspace, "map-" + workspace.name[-8:].lower().replace("_", "-").strip("-"))
    name = next(line.split(":", 1)[1].strip() for line in geopackage.read_text().splitlines() if "  name:" in line)
    assert run_cli("apply", "--auto-approve")[0] == 0

    code, out, err = run_cli("status", name, "--map", "fields.geojson")
    assert code == 1 and out == "" and f"s3://reconciler-demo-inputs/{key} is not there (NoSuchKey)" in err
    assert not (workspace / "fields.geojson").exists()

    write_geopackage(workspace / "fields.gpkg", FIELDS)
    sandbox.s3().put_object(Bucket="reconciler-demo-inputs", Key=key, Body=(workspace / "fields.gpkg").read_bytes())
    code, out, _ = run_cli("status", name, "--map", "fields.geojson")
    assert code == 0 and out.strip() == f"Wrote fields.geojson: 2 GeoPackage feature(s), job CREATED ({NO_V2_STATUS})"
    collection = json.loads((workspace / "fields.geojson").read_text())
    assert collection["properties"]["tiles"] == "geopackage"
    tiles = _tiles(collection)
    assert [(f["properties"]["id"], f["properties"]["name"], f["properties"]["status"]) for f in tiles] == [
        (1, "field-1", None), (2, "field-2", None)]
    assert [[tuple(p) for p in f["geometry"]["coordinates"][0]] for f in tiles] == FIELDS

    code, _, _ = run_cli("status", name, "--map", "fields.svg")
    svg = (workspace / "fields.svg").read_text()
    assert code == 0 and "GeoPackage feature, one tile each (2)" in svg and NO_V2_STATUS in svg and "42°N" in svg

    sandbox.s3().put_object(Bucket="reconciler-demo-inputs", Key=key, Body=b"not a GeoPackage at all" * 10)
    code, _, err = run_cli("status", name, "--map", "fields.geojson")
    assert code == 1 and f"the GeoPackage at s3://reconciler-demo-inputs/{key} cannot be drawn: not an SQLite file" in err

    # a v1 job before its analysis lists no tiles: the grid's tiles, named, without a status
    v1_name = next(line.split(":", 1)[1].strip() for line in v1.read_text().splitlines() if "  name:" in line)
    code, out, _ = run_cli("status", v1_name, "--map", "v1.geojson")
    tiles = _tiles(json.loads((workspace / "v1.geojson").read_text()))
    assert code == 0 and "66 tile(s), job CREATED (no tiles listed before the analysis" in out
    assert len(tiles) == 66 and all(f["properties"]["status"] is None and f["properties"]["name"] for f in tiles)


def test_reading_a_geopackage_from_s3_is_bounded_and_its_errors_are_ours(sandbox):
    from reconciler.geo.geopackage import GeoPackageError
    from reconciler.operations.tilemap import read_s3_object

    s3 = sandbox.s3()
    s3.create_bucket(Bucket="reconciler-map-inputs")
    s3.put_object(Bucket="reconciler-map-inputs", Key="big.gpkg", Body=b"x" * 2048)
    assert read_s3_object("s3://reconciler-map-inputs/big.gpkg", 2048, s3) == b"x" * 2048
    with pytest.raises(GeoPackageError, match="larger than the 2,047 bytes a map reads"):
        read_s3_object("s3://reconciler-map-inputs/big.gpkg", 2047, s3)
    with pytest.raises(GeoPackageError, match=r"is not there \(NoSuchBucket\)"):
        read_s3_object("s3://reconciler-no-such-bucket/f.gpkg", 2048, s3)
    with pytest.raises(GeoPackageError, match="not an s3://bucket/key URL"):
        read_s3_object("s3://reconciler-map-inputs", 2048, s3)


def test_an_unreachable_s3_is_our_error_too():
    import socket

    import boto3
    from botocore.config import Config

    from reconciler.geo.geopackage import GeoPackageError
    from reconciler.operations.tilemap import read_s3_object

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-central-1",
                      aws_access_key_id="k", aws_secret_access_key="s",
                      config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(GeoPackageError, match="cannot read the GeoPackage at s3://b/f.gpkg") as raised:
        read_s3_object("s3://b/f.gpkg", 2048, s3)
    assert "AWS_ENDPOINT_URL_S3" in raised.value.hint and raised.value.__cause__ is None


def test_v1_tiles_take_their_names_from_the_grid_by_id_or_else_by_place():
    from reconciler.batch.models.v1 import Tile
    from reconciler.geo.tiles import tiles_for_bounds
    from reconciler.operations.tilemap import _grid_names

    grid = tiles_for_bounds({"bbox": [8.9, 41.9, 9.1, 42.1]}, 1, 10)
    outline = {"type": "Polygon", "coordinates": [[list(p) for p in grid[1].wgs84]]}
    listed = [Tile(id=grid[0].id, status="PROCESSED"), Tile(id=7, geometry=outline, status="FAILED")]
    assert _grid_names(listed, grid) == {grid[0].id: grid[0].name, 7: grid[1].name}


def test_graticule_labels_say_the_hemisphere():
    assert [degrees(v, "EW") for v in (8.5, -0.25, 0.0, 179.0001)] == ["8.5°E", "0.25°W", "0°", "179.0001°E"]
    assert [degrees(v, "NS") for v in (42, -12.5)] == ["42°N", "12.5°S"]
