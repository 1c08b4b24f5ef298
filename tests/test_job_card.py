"""Job cards (engine.estimate): what a create or replace will run — grid, area, time range,
collections, tiles, output and delivery — sized offline once per body, carried on the action,
masked where the manifest is sensitive, and never part of what apply compares."""

from __future__ import annotations

import copy
import json

from reconciler.engine.actions import Kind
from reconciler.engine.estimate import NO_OFFLINE_TILES, Estimator, job_card, size
from reconciler.engine.plan import PlanOptions, plan
from reconciler.redaction import SENSITIVE
from reconciler.state.model import Lockfile
from tests.test_engine_plan import V1_REQUEST, V2_REQUEST, manifest


def planned(manifests, estimator=None):
    estimator = estimator or Estimator()
    return plan(manifests, [], Lockfile(lineage="lineage"), PlanOptions(), estimator, estimator.card)


def test_a_v2_create_carries_its_card(tmp_path):
    [action] = planned([manifest(tmp_path)]).actions
    card = action.card
    assert action.kind is Kind.CREATE and card is not None
    assert (card.grid_id, card.resolution, card.output_type, card.delivery) == (0, 60.0, "raster", "s3://bucket/prefix")
    assert (card.time_from, card.time_to, card.collections) == ("2019-04-01T00:00:00Z", "2019-06-30T00:00:00Z",
                                                                ("sentinel-2-l2a",))
    assert card.tiles == 66 and 20_000 < card.area_km2 < 20_100 and card.note == ""
    assert card.bounds == {"bbox": [8.44, 41.31, 9.66, 43.1]}
    assert action.cost_pu == size(manifest(tmp_path, "other").body).pu  # one tiling gives both


def test_v1_deliveries_and_outputs():
    def card(**changes):
        body = {**copy.deepcopy(V1_REQUEST), **changes}
        return job_card(body, frozenset(), size(body))

    assert card().delivery == "s3://bucket/" and card().output_type == "raster"
    tiles = card(bucketName=None, output={"defaultTilePath": "s3://b/results/<requestId>/<tileName>/<outputId>.tiff"})
    assert tiles.delivery == "s3://b/results/"
    zarr = card(bucketName=None, zarrOutput={"path": "s3://b/zarr/<requestId>", "group": {"zarr_format": 2}})
    assert (zarr.output_type, zarr.delivery) == ("zarr", "s3://b/zarr/")


def test_a_geopackage_input_has_no_offline_tiles_and_says_so():
    body = {**copy.deepcopy(V2_REQUEST), "input": {"type": "geopackage", "features": {"s3": {"url": "s3://b/f.gpkg"}}}}
    card = job_card(body, frozenset(), size(body))
    assert (card.grid_id, card.resolution, card.tiles, card.note) == (None, None, None, NO_OFFLINE_TILES)
    assert card.area_km2 is not None  # the area is still known, and drawn


def test_an_area_that_cannot_be_tiled_says_why():
    body = {**copy.deepcopy(V2_REQUEST), "input": {"type": "tiling-grid", "id": 99, "resolution": 60}}
    sized = size(body)
    assert sized.pu is None and sized.tiles is None and "unknown tiling grid 99" in sized.note


def test_sensitive_values_are_masked_on_the_card(tmp_path, monkeypatch):
    request = copy.deepcopy(V2_REQUEST)
    request["output"]["delivery"]["s3"]["url"] = "s3://${env:CARD_BUCKET}/prefix"
    request["processRequest"]["input"]["data"][0]["type"] = "${env:CARD_COLLECTION}"
    monkeypatch.setenv("CARD_BUCKET", "secret-bucket-name")
    monkeypatch.setenv("CARD_COLLECTION", "sentinel-2-l2a")
    from reconciler.manifests.loader import load

    spec = {"api": "v2", "state": "started", "description": "a job", "request": request}
    (tmp_path / "job.yaml").write_text(json.dumps({"apiVersion": "reconciler/v1", "kind": "BatchJob",
                                                   "metadata": {"name": "job"}, "spec": spec}))
    loaded = load([tmp_path / "job.yaml"], resolve_env=True)
    assert loaded.errors == [], loaded.errors
    [m] = loaded.manifests
    [action] = planned([m]).actions
    assert action.card.delivery == SENSITIVE and action.card.collections == (SENSITIVE,)
    assert "secret-bucket" not in repr(action.card) and "sentinel" not in repr(action.card)


def test_sensitive_bounds_are_neither_measured_nor_kept():
    body = copy.deepcopy(V2_REQUEST)
    card = job_card(body, frozenset({("processRequest", "input", "bounds", "bbox", 0)}), size(body))
    assert card.bounds is None and card.area_km2 is None


def test_equal_bodies_share_one_card_and_a_rerun_shows_where_it_writes(tmp_path):
    estimator = Estimator()
    first, second = manifest(tmp_path, "first"), manifest(tmp_path, "second")
    assert estimator.card(first) is estimator.card(second)
    rerun = estimator.card(first, (("output.skipExisting", True), ("output.delivery.s3.url", "s3://bucket/prefix/id-1/<tileName>")))
    assert rerun.delivery == "s3://bucket/prefix/id-1/" and rerun.tiles == estimator.card(first).tiles
    assert first.body["output"]["delivery"]["s3"]["url"] == "s3://bucket/prefix"  # the manifest is left alone


def test_the_card_is_not_part_of_what_apply_compares(tmp_path):
    m = manifest(tmp_path)
    with_card = planned([m]).actions[0]
    without = plan([m], [], Lockfile(lineage="lineage"), PlanOptions(), Estimator()).actions[0]
    assert without.card is None and with_card.substance() == without.substance()


def test_a_create_that_policy_blocks_carries_the_card_of_what_it_would_run(tmp_path):
    """Over budget, it is blocked: the reviewer still sees what the figure is for, and that none of it
    is spent in this run."""
    from reconciler.render.phrases import card_estimate

    m = manifest(tmp_path, policy={"maxCostPU": 1})
    [action] = planned([m]).actions
    assert action.kind is Kind.BLOCKED and action.refused is Kind.CREATE and action.card is not None
    assert action.card.tiles and action.cost is None and card_estimate(action).startswith("nothing in this run: blocked")
