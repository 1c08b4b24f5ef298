"""The data collections of a process request (`reconciler.batch.models.datasets`), held to the
official API document: every collection it lists, each with the `dataFilter` and `processing`
fields, fixed words and bounds the document gives it; and how a source is told apart by `type`."""

from __future__ import annotations

import types
import typing
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.batch.models import datasets
from reconciler.batch.models.datasets import COLLECTIONS, DATASETS, BYOCDataset, DataSource, TimeRange
from reconciler.manifests.schema import json_schema
from tests.conformance import DOCUMENT, load_document, missing_reason

pytestmark = pytest.mark.skipif(not DOCUMENT.exists(), reason=missing_reason(DOCUMENT, {}))
SOURCE = TypeAdapter(DataSource)
UUID = "017aa0ae-33a6-45d3-8548-0f7d1041b40c"


@pytest.fixture(scope="module")
def schemas() -> dict:
    return load_document()["components"]["schemas"]


def resolve(schema: dict, schemas: dict) -> dict:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def properties(schema: dict, schemas: dict) -> dict[str, dict]:
    """The properties `schema` declares through `$ref`s and `allOf`s; a later declaration of a name
    wins, as the document refines `dataFilter` that way (Landsat: LandsatFiltering + tiers)."""
    schema = resolve(schema, schemas)
    found: dict[str, dict] = {}
    for part in schema.get("allOf", []):
        found.update(properties(part, schemas))
    found.update(schema.get("properties", {}))
    return found


def branches(schemas: dict) -> dict[str, str]:
    """The document's data collections: type (or "byoc") → the name of its schema."""
    out = {}
    for item in schemas["ProcessRequestInputData"]["items"]["oneOf"]:
        name = item["$ref"].rsplit("/", 1)[-1]
        enum = properties(item, schemas)["type"].get("enum")
        out[enum[0] if enum else "byoc"] = name
    return out


def fields(model: type[BaseModel]) -> dict[str, Any]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def plain(annotation: Any) -> Any:
    """The annotation without Annotated and Optional."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            if len(members) != 1:
                return members
            annotation = members[0]
        else:
            return annotation


def bounds(info: Any) -> tuple:
    """(ge, le) of a field, wherever pydantic keeps them (its metadata, or an Annotated member)."""
    found: dict[str, Any] = {}
    stack = [*info.metadata, *[m for a in typing.get_args(info.annotation) if typing.get_origin(a) is typing.Annotated
                               for m in typing.get_args(a)[1:]]]
    while stack:
        item = stack.pop()
        stack.extend(getattr(item, "metadata", None) or [])
        found.update({key: getattr(item, key) for key in ("ge", "le") if getattr(item, key, None) is not None})
    return found.get("ge"), found.get("le")


def assert_matches(model: type[BaseModel], schema: dict, schemas: dict, where: str) -> None:
    """`model` has exactly the document's properties, with its enums, bounds and nested objects."""
    declared = properties(schema, schemas)
    ours = fields(model)
    assert set(ours) == set(declared), f"{where}: ours {sorted(ours)}, the document's {sorted(declared)}"
    for name, prop in declared.items():
        info, at = ours[name], f"{where}.{name}"
        prop = resolve(prop, schemas)
        kind = plain(info.annotation)
        if "enum" in prop and name != "type":
            assert typing.get_origin(kind) is typing.Literal, at
            assert list(typing.get_args(kind)) == prop["enum"], at
        elif "oneOf" in prop:  # S1 speckleFilter: one model per branch, told apart by `type`
            for branch, member in zip(prop["oneOf"], kind, strict=True):
                assert_matches(member, branch, schemas, at)
                assert {n for n, i in member.model_fields.items() if i.is_required()} == set(resolve(branch, schemas)["required"])
        elif prop.get("type") == "object" or "allOf" in prop or "properties" in prop:
            assert isinstance(kind, type) and issubclass(kind, BaseModel), at
            assert_matches(kind, prop, schemas, at)
        elif prop.get("type") == "boolean":
            assert kind is bool, at
        elif prop.get("type") in ("number", "integer"):
            assert kind is (int if prop["type"] == "integer" else float), at
            assert bounds(info) == (prop.get("minimum"), prop.get("maximum")), at
        elif prop.get("type") == "string" and name != "type":
            assert kind is str, at


def test_every_collection_of_the_document_and_no_other(schemas):
    assert set(branches(schemas)) == set(COLLECTIONS) | {"byoc"}
    assert {name: COLLECTIONS[name][0] for name in COLLECTIONS} == {t: s for t, s in branches(schemas).items() if t != "byoc"}
    assert branches(schemas)["byoc"] == BYOCDataset.__name__


@pytest.mark.parametrize("collection", sorted(COLLECTIONS) + ["byoc"])
def test_each_collection_has_the_fields_the_document_gives_it(collection, schemas):
    model = BYOCDataset if collection == "byoc" else DATASETS[collection]
    schema = schemas[branches(schemas)[collection]]
    assert_matches(model, schema, schemas, collection)
    if collection != "byoc":
        assert typing.get_args(plain(fields(model)["type"].annotation)) == (collection,)


def test_previous_names_point_at_collections_that_exist():
    assert set(datasets.PREVIOUS_NAMES.values()) <= set(COLLECTIONS)
    assert not set(datasets.PREVIOUS_NAMES) & set(COLLECTIONS)


# --- telling sources apart ----------------------------------------------------------------------


@pytest.mark.parametrize("collection", sorted(COLLECTIONS))
def test_a_bare_source_of_each_collection_is_valid(collection):
    assert type(SOURCE.validate_python({"type": collection})) is DATASETS[collection]


@pytest.mark.parametrize("prefix", ["byoc", "batch", "zarr"])
def test_byoc_batch_and_zarr_collections_by_id(prefix):
    source = SOURCE.validate_python({"type": f"{prefix}-{UUID}", "id": "mine", "dataFilter": {"mosaickingOrder": "leastRecent"}})
    assert isinstance(source, BYOCDataset) and source.id == "mine"
    with pytest.raises(ValidationError, match="does not name a collection by its id"):
        SOURCE.validate_python({"type": f"{prefix}-my-collection"})


def error_of(source: Any) -> dict:
    with pytest.raises(ValidationError) as e:
        SOURCE.validate_python(source)
    [error] = e.value.errors()
    return error


@pytest.mark.parametrize(
    "given, hint",
    [
        ("sentinel-2-l3z", "did you mean `sentinel-2-l2a`?"),
        ("SENTINEL-1-GRD", "did you mean `sentinel-1-grd`? (types are lowercase)"),
        ("S1GRD", "`S1GRD` is the collection's previous name; the API document names it `sentinel-1-grd`"),
        ("byoc", "write byoc-, batch- or zarr- and the collection's id"),
        ("planet-scope", "known types: sentinel-2-l1c"),
    ],
)
def test_an_unknown_type_is_named_with_what_to_write_instead(given, hint):
    error = error_of({"type": given})
    assert error["type"] == "unknown_collection" and error["loc"][-1] == "type"
    assert error["msg"] == f"unknown data collection type {given!r}" and hint in error["ctx"]["hint"]


def test_an_unknown_type_does_not_hide_its_time_range():
    with pytest.raises(ValidationError) as e:
        SOURCE.validate_python({"type": "sentinel-2-l3z", "dataFilter": {
            "timeRange": {"from": "2019-07-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"}}})
    assert [error["type"] for error in e.value.errors()] == ["unknown_collection", "time_range_order"]


@pytest.mark.parametrize("source", [{}, {"type": 5}, "sentinel-2-l2a", None])
def test_a_source_without_a_string_type(source):
    assert error_of(source)["type"] in ("missing", "string_type", "model_type")


def test_the_document_s_ambiguity_is_not_kept_in_the_manifest_schema():
    """The document's oneOf matches sentinel-2-l2a twice (its BYOC branch takes any type); ours once."""
    schema = json_schema()
    branches = schema["$defs"]["ProcessInput"]["properties"]["data"]["items"]["oneOf"]
    for source in [{"type": name} for name in COLLECTIONS] + [{"type": f"byoc-{UUID}"}]:
        matching = [b for b in branches if jsonschema.Draft202012Validator({"$defs": schema["$defs"], **b}).is_valid(source)]
        assert len(matching) == 1, (source, matching)
    assert not any(jsonschema.Draft202012Validator({"$defs": schema["$defs"], **b}).is_valid({"type": "sentinel-2-l3z"}) for b in branches)


# --- time ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    ["2019-04-01T00:00:00Z", "2019-01-31T14:00:00+01:00", "2018-10-01T00:00:00.000Z", "2019-04-01T00:00Z",
     "2019-04-01T00:00:00"],  # no zone: UTC, as the cost model reads it too
)
def test_date_times_the_api_takes(moment):
    assert TimeRange.model_validate({"from": moment, "to": "2020-01-01T00:00:00Z"}).from_ == moment


@pytest.mark.parametrize("moment", ["2019-04-01", "2019-04-01 00:00:00Z", "2019-13-01T00:00:00Z", "01/04/2019",
                                    "2019-04-01T00:00:00 Z", "2019-W14-1T00:00:00Z"])
def test_date_times_it_does_not(moment):
    with pytest.raises(ValidationError, match="expected an ISO 8601 date-time"):
        TimeRange.model_validate({"from": moment, "to": "2020-01-01T00:00:00Z"})


def test_a_date_alone_gets_a_hint_with_the_time_added():
    with pytest.raises(ValidationError) as e:
        TimeRange.model_validate({"from": "2019-04-01", "to": "2020-01-01T00:00:00Z"})
    assert e.value.errors()[0]["ctx"]["hint"] == "the API needs a time too: write 2019-04-01T00:00:00Z"


def test_time_ranges_are_in_order_by_instant_and_may_be_a_single_instant():
    TimeRange.model_validate({"from": "2019-04-01T10:00:00+02:00", "to": "2019-04-01T09:00:00Z"})  # 08:00Z ≤ 09:00Z
    TimeRange.model_validate({"from": "2019-04-01T00:00:00Z", "to": "2019-04-01T00:00:00Z"})
    with pytest.raises(ValidationError, match=r"`from` \(2019-04-01T10:00:00Z\) is after `to`"):
        TimeRange.model_validate({"from": "2019-04-01T10:00:00Z", "to": "2019-04-01T11:00:00+02:00"})
