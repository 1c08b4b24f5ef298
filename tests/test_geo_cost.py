"""The processing-unit model (reconciler.geo.cost): the example jobs priced by hand, and each factor."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest
from ruamel.yaml import YAML

from reconciler.geo.cost import (
    BATCH_DISCOUNT,
    cost_factors,
    estimate_pu,
    pixels_pu,
    revisit_days,
    tile_pu,
)
from reconciler.geo.tiles import tiles_for_bounds
from tests.conftest import EXAMPLES, ROOT


def example(name: str) -> tuple[dict, dict]:
    """(processRequest with its evalscript inlined, tiling input) of an example manifest."""
    spec = YAML(typ="safe").load((EXAMPLES / f"{name}.yaml").read_text())["spec"]
    process_request = spec["request"]["processRequest"]
    process_request["evalscript"] = (EXAMPLES / spec["evalscriptFile"]).read_text()
    return process_request, spec["request"].get("input") or spec["request"]["tilingGrid"]


def priced(name: str) -> float:
    process_request, grid = example(name)
    tiles = tiles_for_bounds(process_request["input"]["bounds"], grid["id"], grid["resolution"])
    return estimate_pu(process_request, tiles)


def test_the_corsica_geotiff_job_by_hand():
    # 66 tiles of the 20 km grid (test_geo_tiles), each 20040 m / 60 m = 334 px square.
    # area     = 334 × 334 / (512 × 512)               = 111556 / 262144
    # bands    = B04, B08 → 2 / 3
    # samples  = ORBIT over 2019-04-01..2019-06-30 = 90 days, Sentinel-2 every 5 days → 18
    # depth    = one 3-band AUTO output → 1
    # discount = 1 / 3
    # per tile = 111556/262144 × 2/3 × 18 × 1 × 1/3 ≈ 1.70221
    # job      = 66 × that = 112.3458251953125 PU
    expected = 66 * Fraction(111556, 262144) * Fraction(2, 3) * 18 * 1 * Fraction(1, 3)
    assert float(expected) == 112.3458251953125
    assert priced("corsica-max-ndvi") == pytest.approx(float(expected))
    assert priced("corsica-max-ndvi-v1") == pytest.approx(float(expected))  # same job on the v1 API


def test_the_corsica_zarr_job_pays_double_for_float32():
    # 6 tiles of the LAEA 100 km grid at 100 m: 1000 × 1000 px each.
    # area 1e6/262144 × bands 2/3 × samples 18 × depth 2 (maxNDVI is FLOAT32) × 1/3 = 30.517578125 per tile.
    process_request, _ = example("corsica-max-ndvi-zarr")
    factors = cost_factors(process_request)
    assert (factors.bands_factor, factors.samples, factors.depth_factor) == (pytest.approx(2 / 3), 18, 2)
    expected = 6 * Fraction(10**6, 262144) * Fraction(2, 3) * 18 * 2 * Fraction(1, 3)
    assert priced("corsica-max-ndvi-zarr") == pytest.approx(float(expected)) == 183.10546875


def request(evalscript: str, data_type: str = "sentinel-2-l2a", time_range: dict | None = None) -> dict:
    source: dict = {"type": data_type}
    if time_range is not None:
        source["dataFilter"] = {"timeRange": time_range}
    return {"evalscript": evalscript, "input": {"bounds": {"bbox": [0, 0, 1, 1]}, "data": [source]}}


SPRING = {"from": "2019-04-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"}  # 90 days


def script(bands: str = '"B04", "B08"', mosaicking: str = "ORBIT", sample_type: str = "AUTO") -> str:
    return (
        f"//VERSION=3\nfunction setup() {{ return {{ input: [{{bands: [{bands}]}}], output: {{bands: 1, sampleType: "
        f"{sample_type!r}}}, mosaicking: Mosaicking.{mosaicking} }}; }}"
    )


def test_simple_mosaicking_is_one_sample_whatever_the_time_range():
    assert cost_factors(request(script(mosaicking="SIMPLE"), time_range=SPRING)).samples == 1


@pytest.mark.parametrize(
    "data_type, samples",
    [
        ("sentinel-2-l1c", 18),  # ceil(90 / 5)
        ("sentinel-1-grd", 15),  # ceil(90 / 6)
        ("S1GRD", 15),
        ("landsat-ot-l2", 12),  # ceil(90 / 8) = ceil(11.25)
        ("byoc-1234", 90),  # unknown collections: daily
    ],
)
def test_samples_follow_the_collection_revisit(data_type, samples):
    assert cost_factors(request(script(mosaicking="TILE"), data_type, SPRING)).samples == samples


def test_sentinel_1_revisit_is_six_days():
    assert revisit_days("sentinel-1-grd") == 6
    assert revisit_days("sentinel-2-l2a") == 5 and revisit_days("landsat-ot-l1") == 8 and revisit_days(None) == 1


@pytest.mark.parametrize(
    "time_range, samples",
    [
        (None, 1),
        ({"from": "2019-04-01T00:00:00Z"}, 1),
        ({"from": "2019-04-01", "to": "2019-04-11T12:00:00Z"}, 3),  # 10.5 days / 5 → 3
        ({"from": "2019-04-01T00:00:00Z", "to": "2019-04-01T00:00:00Z"}, 1),
        ({"from": "yesterday", "to": "today"}, 1),
    ],
)
def test_time_ranges_that_are_missing_partial_or_odd(time_range, samples):
    assert cost_factors(request(script(), time_range=time_range)).samples == samples


@pytest.mark.parametrize(
    "bands, factor",
    [('"B04", "B08"', 2 / 3), ('"B04", "B08", "dataMask"', 2 / 3), ('"dataMask"', 1 / 3), ("", 1 / 3),
     ('"B01","B02","B03","B04","B05","B06"', 2.0)],
)
def test_bands_factor_counts_input_bands_but_not_datamask(bands, factor):
    assert cost_factors(request(script(bands))).bands_factor == pytest.approx(factor)


def test_depth_factor_is_two_only_for_float32():
    assert cost_factors(request(script(sample_type="FLOAT32"))).depth_factor == 2
    assert cost_factors(request(script(sample_type="UINT16"))).depth_factor == 1


def test_an_unreadable_evalscript_is_priced_conservatively():
    factors = cost_factors(request("return [B04];", time_range=SPRING))
    assert not factors.evalscript.parsed
    assert (factors.bands_factor, factors.samples, factors.depth_factor) == (1.0, 18, 2)
    assert cost_factors({}).samples == 1  # no data source, no time range: one sample


def test_one_pu_is_512_by_512_pixels_of_three_bands_once_at_16_bits_then_discounted():
    factors = cost_factors(request(script('"B02", "B03", "B04"', "SIMPLE", "UINT16")))
    assert pixels_pu(512, 512, factors) == pytest.approx(BATCH_DISCOUNT) == pytest.approx(1 / 3)
    assert pixels_pu(1024, 512, factors) == pytest.approx(2 / 3)


def test_tile_pu_includes_buffers_and_estimate_sums_tiles():
    process_request, _ = example("corsica-max-ndvi")
    factors = cost_factors(process_request)
    bounds = process_request["input"]["bounds"]
    plain = tiles_for_bounds(bounds, 0, 60.0)
    buffered = tiles_for_bounds(bounds, 0, 60.0, buffer_x=10, buffer_y=10)
    assert tile_pu(buffered[0], factors) == pytest.approx(tile_pu(plain[0], factors) * (354 / 334) ** 2)
    assert estimate_pu(process_request, plain) == pytest.approx(sum(tile_pu(t, factors) for t in plain))
    assert estimate_pu(process_request, []) == 0


def test_pricing_does_not_import_the_geometry_libraries():
    # The planner prices jobs at start-up; pyproj and shapely load only when tiles are computed.
    code = (
        "import sys, reconciler.geo.cost, reconciler.geo.grids;"
        " print(sorted({'pyproj', 'shapely'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
