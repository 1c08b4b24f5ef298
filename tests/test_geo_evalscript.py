"""Reading an evalscript's setup() for cost (reconciler.geo.evalscript): the examples, hand-written
variants of every form the reader supports, and what it must give up on without raising."""

from __future__ import annotations

import pytest

from reconciler.geo.evalscript import UNPARSED, EvalscriptInfo, OutputInfo, parse_evalscript
from tests.conftest import EXAMPLES

SCRIPTS = EXAMPLES / "evalscripts"


def test_the_example_max_ndvi_script():
    assert parse_evalscript((SCRIPTS / "max_ndvi.js").read_text()) == EvalscriptInfo(
        input_bands=("B04", "B08"),
        outputs=(OutputInfo("default", 3, "AUTO"),),
        mosaicking="ORBIT",
        parsed=True,
    )


def test_the_example_zarr_arrays_script():
    info = parse_evalscript((SCRIPTS / "max_ndvi_arrays.js").read_text())
    assert info.outputs == (
        OutputInfo("maxNDVI", 1, "FLOAT32"),
        OutputInfo("band04", 1, "UINT16"),
        OutputInfo("band08", 1, "UINT16"),
    )
    assert (info.input_bands, info.mosaicking, info.parsed) == (("B04", "B08"), "ORBIT", True)


def test_the_example_single_value_script():
    info = parse_evalscript((SCRIPTS / "max_ndvi_value.js").read_text())
    assert info.outputs == (OutputInfo("ndvi", 1, "FLOAT32"),)
    assert info.parsed


def setup_returning(body: str) -> str:
    return f"//VERSION=3\nfunction setup() {{\n  return {body};\n}}\nfunction evaluatePixel(s) {{ return [s.B02]; }}\n"


@pytest.mark.parametrize(
    "body, bands",
    [
        ('{input: ["B02", "B03"], output: {bands: 2}}', ("B02", "B03")),
        ("{input: ['B02','B03' ,'B04',], output: {bands: 3}}", ("B02", "B03", "B04")),
        ('{input: [{bands: ["B04","B08"], units: "DN"}], output: {bands: 1}}', ("B04", "B08")),
        (
            '{\n  input: [\n    {\n      bands: [\n        "B04",\n        "B08",\n      ],\n    },\n  ],\n'
            "  output: { bands: 1 },\n}",
            ("B04", "B08"),
        ),
        ('{"input": [{"bands": ["VV", "VH", "dataMask"]}], "output": {"bands": 3}}', ("VV", "VH", "dataMask")),
        ("{input: [`B11`, `B12`], output: {bands: 2}}", ("B11", "B12")),
        ("{input: [], output: {bands: 1}}", ()),
    ],
)
def test_input_band_forms(body, bands):
    info = parse_evalscript(setup_returning(body))
    assert info.parsed and info.input_bands == bands


def test_data_fusion_lists_the_bands_of_every_source():
    script = setup_returning(
        '{input: [{datasource: "s1", bands: ["VV"]}, {datasource: "l2a", bands: ["B02", "B03"], units: "REFLECTANCE"}],'
        ' output: [{id: "default", bands: 3}]}'
    )
    assert parse_evalscript(script).input_bands == ("VV", "B02", "B03")


def test_output_defaults_and_forms():
    single = parse_evalscript(setup_returning('{input: ["B02"], output: {}}'))
    assert single.outputs == (OutputInfo("default", 1, "AUTO"),)
    listed = parse_evalscript(
        setup_returning(
            '{input: ["B02"], output: [{id: "rgb", bands: 3, sampleType: SampleType.UINT8},'
            " {id: 'index', sampleType: \"FLOAT32\"}, {id: 'mask', bands: 1, sampleType: 'uint16'}]}"
        )
    )
    assert listed.outputs == (
        OutputInfo("rgb", 3, "UINT8"),
        OutputInfo("index", 1, "FLOAT32"),
        OutputInfo("mask", 1, "UINT16"),
    )


@pytest.mark.parametrize(
    "mosaicking, expected",
    [("", "SIMPLE"), ("mosaicking: Mosaicking.ORBIT,", "ORBIT"), ('mosaicking: "TILE",', "TILE"),
     ("mosaicking: 'SIMPLE'", "SIMPLE"), ("mosaicking : Mosaicking . TILE", "TILE")],
)
def test_mosaicking_forms(mosaicking, expected):
    info = parse_evalscript(setup_returning(f'{{input: ["B02"], output: {{bands: 1}}, {mosaicking}}}'))
    assert info.parsed and info.mosaicking == expected


def test_comments_whitespace_and_other_keys_are_skipped():
    script = """
    //VERSION=3
    /* an old version: function setup() { return {input: ["B01"]} } */
    function   setup ( )
    {
      // return {input: ["B09"]};
      return ({
        input: [{ bands: ["B02", /* blue */ "B03"], metadata: ["bounds"] }],  // two bands
        output: { id: "default", bands: 2, sampleType: SampleType.UINT16, nodataValue: -1 },
        processing: { upsampling: "BICUBIC" },
        mosaicking: Mosaicking.TILE,
      });
    }
    """
    info = parse_evalscript(script)
    assert info == EvalscriptInfo(("B02", "B03"), (OutputInfo("default", 2, "UINT16"),), "TILE", True)


@pytest.mark.parametrize(
    "head",
    ["const setup = () => (", "var setup = function () { return ", "let setup = () => { return "],
)
def test_setup_written_as_an_assigned_function(head):
    tail = ")" if head.endswith("(") else "}"
    script = f'//VERSION=3\n{head}{{input: ["B04"], output: {{bands: 1, sampleType: "FLOAT32"}}}}{tail}\n'
    info = parse_evalscript(script)
    assert info.parsed and info.input_bands == ("B04",) and info.outputs[0].sample_type == "FLOAT32"


@pytest.mark.parametrize(
    "script",
    [
        "return [B04, B03, B02];",  # evalscript V1: no setup()
        setup_returning("{input: BANDS, output: {bands: 1}}"),
        setup_returning('{input: ["B02"], output: makeOutputs()}'),
        setup_returning('{input: ["B02"], output: {bands: 1}, mosaicking: "WEEKLY"}'),
        setup_returning('{input: ["B02"], output: {bands: 1, sampleType: "FLOAT64"}}'),
        setup_returning('{input: ["B02"], output: {bands: 0}}'),
        setup_returning('{input: ["B02"]}'),
        setup_returning('{output: {bands: 1}}'),
        setup_returning('{input: [`${band}`], output: {bands: 1}}'),
        setup_returning('{...defaults, input: ["B02"], output: {bands: 1}}'),
        "function setup() { return {input: [\"B02\"], output: {bands: 1}",
        "",
    ],
)
def test_what_cannot_be_read_gives_the_conservative_defaults(script):
    assert parse_evalscript(script) == UNPARSED
    assert UNPARSED.parsed is False and UNPARSED.mosaicking == "ORBIT" and UNPARSED.outputs[0].sample_type == "FLOAT32"


@pytest.mark.parametrize("name", ["max_ndvi.js", "max_ndvi_arrays.js", "max_ndvi_value.js"])
def test_no_prefix_of_a_real_script_makes_the_reader_raise(name):
    text = (SCRIPTS / name).read_text()
    for end in range(len(text)):
        assert isinstance(parse_evalscript(text[:end]), EvalscriptInfo)


def test_non_strings_are_unparsed():
    assert parse_evalscript(None) == UNPARSED
    assert parse_evalscript(b"function setup() {}") == UNPARSED  # type: ignore[arg-type]
