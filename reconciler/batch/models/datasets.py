"""The data collections a process request reads (`processRequest.input.data[]`), each with the
`dataFilter` and `processing` fields the API document gives it (its `*Dataset`, `*Filtering` and
`*Processing` schemas), so that a misspelt filter fails validation instead of silently processing,
and paying for, every acquisition. `tests/test_datasets.py` holds these models to the document.

The document's own `oneOf` is ambiguous (its BYOC branch takes any `type`, so `sentinel-2-l2a`
matches two branches: docs/api-facts.md, the published OpenAPI document's errors). Here `type` alone picks the model: a name of
`COLLECTIONS`, `byoc-`/`batch-`/`zarr-` and a collection id for BYOC, and anything else is an
unknown collection, reported at `type` with the nearest known name while its time range is still
checked (an unknown type does not hide the other errors of its data source).
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from reconciler.batch.models.base import CreateModel, OpenModel, problem

# --- time range -----------------------------------------------------------------------------------

# The document's `date-time`; a date alone "will not work", a time without a zone is read as UTC.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE = "2019-04-01T00:00:00Z"


def instant(text: str) -> datetime:
    """The moment a valid `from`/`to` names (a time without a zone is UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date_time(value: str) -> str:
    if _DATE_TIME.fullmatch(value):
        try:
            instant(value)  # the pattern's numbers may still name no moment (month 13)
            return value
        except ValueError:
            pass
    elif _DATE.fullmatch(value):
        raise problem("date_time", f"expected an ISO 8601 date-time, got the date {value!r} alone",
                      f"the API needs a time too: write {value}T00:00:00Z")
    raise problem("date_time", f"expected an ISO 8601 date-time such as {_EXAMPLE}")


DateTime = Annotated[str, AfterValidator(_date_time), WithJsonSchema({"type": "string", "format": "date-time"})]


class TimeRange(CreateModel):
    """Both ends inclusive; they may be equal."""

    from_: DateTime = Field(alias="from")
    to: DateTime

    @model_validator(mode="after")
    def _in_order(self) -> TimeRange:
        if instant(self.from_) > instant(self.to):
            raise problem("time_range_order", f"`from` ({self.from_}) is after `to` ({self.to})", "swap them")
        return self


# --- dataFilter -----------------------------------------------------------------------------------

CloudCoverage = Annotated[float, Field(ge=0, le=100)]
Orbit = Literal["ASCENDING", "DESCENDING"]


class BasicFiltering(CreateModel):
    """The document's ModisFiltering, S3OlciFiltering and BYOCFiltering."""

    timeRange: TimeRange | None = None
    mosaickingOrder: Literal["mostRecent", "leastRecent"] | None = None


class CloudFiltering(CreateModel):
    """The document's S2L2AFiltering, LandsatFiltering and S3OlciL2Filtering."""

    timeRange: TimeRange | None = None
    mosaickingOrder: Literal["mostRecent", "leastRecent", "leastCC"] | None = None
    maxCloudCoverage: CloudCoverage | None = None


class S2L1CFiltering(CloudFiltering):
    previewMode: Literal["DETAIL", "TILE_PREVIEW", "PREVIEW", "EXTENDED_PREVIEW"] | None = None


class LandsatFilteringWithRt(CloudFiltering):
    tiers: Literal["TIER_1", "TIER_1_AND_RT", "ALL_TIERS"] | None = None


class LandsatFilteringWithoutRt(CloudFiltering):
    tiers: Literal["TIER_1", "ALL_TIERS"] | None = None


class HLSFiltering(CloudFiltering):
    constellation: Literal["SENTINEL", "LANDSAT"] | None = None


class S1Filtering(BasicFiltering):
    resolution: Literal["HIGH", "MEDIUM", "FULL"] | None = None
    acquisitionMode: Literal["SM", "IW", "EW", "WV", "EN", "AN", "IM"] | None = None
    polarization: Literal["SH", "SV", "DH", "DV", "HH", "HV", "VV", "VH"] | None = None
    orbitDirection: Orbit | None = None
    timeliness: Literal["NRT10m", "NRT1h", "NRT3h", "Fast24h", "Offline", "Reprocessing", "ArchNormal"] | None = None


class S3SlstrFiltering(CloudFiltering):
    orbitDirection: Orbit | None = None


class S5PFiltering(BasicFiltering):
    timeliness: Literal["NRTI", "OFFL", "RPRO"] | None = None


class DEMFiltering(CreateModel):
    demInstance: Literal["MAPZEN", "COPERNICUS_30", "COPERNICUS_90"] | None = None


# --- processing -----------------------------------------------------------------------------------

Interpolation = Literal["NEAREST", "BILINEAR", "BICUBIC"]
WindowSize = Annotated[int, Field(ge=1, le=7)]


class Processing(CreateModel):
    """The document's BaseDatasetProcessing."""

    upsampling: Interpolation | None = None
    downsampling: Interpolation | None = None


class S2Processing(Processing):
    harmonizeValues: bool | None = None


class DEMProcessing(Processing):
    clampNegative: bool | None = None
    egm: bool | None = None


class SpeckleFilterLee(CreateModel):
    type: Literal["LEE"]
    windowSizeX: WindowSize
    windowSizeY: WindowSize


class SpeckleFilterNone(CreateModel):
    type: Literal["NONE"]


class S1Processing(Processing):
    speckleFilter: Annotated[SpeckleFilterLee | SpeckleFilterNone, Field(discriminator="type")] | None = None
    backCoeff: Literal["BETA0", "SIGMA0_ELLIPSOID", "GAMMA0_ELLIPSOID", "GAMMA0_TERRAIN"] | None = None
    orthorectify: bool | None = None
    demInstance: Literal["MAPZEN", "COPERNICUS", "COPERNICUS_30", "COPERNICUS_90"] | None = None
    radiometricTerrainOversampling: Annotated[float, Field(ge=1, le=4)] | None = None


class S3SlstrProcessing(Processing):
    view: Literal["NADIR", "OBLIQUE"] | None = None


class S5PProcessing(Processing):
    minQa: Annotated[int, Field(ge=0, le=100)] | None = None


# --- the collections ------------------------------------------------------------------------------

# type → (the document's schema, its dataFilter, its processing)
COLLECTIONS: dict[str, tuple[str, type[CreateModel], type[CreateModel]]] = {
    "sentinel-2-l1c": ("S2L1CDataset", S2L1CFiltering, S2Processing),
    "sentinel-2-l2a": ("S2L2ADataset", CloudFiltering, S2Processing),
    "landsat-8-l1c": ("Ls8Dataset", LandsatFilteringWithRt, Processing),
    "landsat-ot-l1": ("L8L1Dataset", LandsatFilteringWithRt, Processing),
    "landsat-ot-l2": ("L8L2Dataset", LandsatFilteringWithoutRt, Processing),
    "landsat-etm-l1": ("LETML1Dataset", LandsatFilteringWithRt, Processing),
    "landsat-etm-l2": ("LETML2Dataset", LandsatFilteringWithoutRt, Processing),
    "landsat-tm-l1": ("LTML1Dataset", LandsatFilteringWithoutRt, Processing),
    "landsat-tm-l2": ("LTML2Dataset", LandsatFilteringWithoutRt, Processing),
    "landsat-mss-l1": ("LMSSL1Dataset", LandsatFilteringWithoutRt, Processing),
    "modis": ("ModisDataset", BasicFiltering, Processing),
    "dem": ("DEMDataset", DEMFiltering, DEMProcessing),
    "sentinel-1-grd": ("S1Dataset", S1Filtering, S1Processing),
    "sentinel-3-olci": ("S3OlciDataset", BasicFiltering, Processing),
    "sentinel-3-olci-l2": ("S3OlciL2Dataset", CloudFiltering, Processing),
    "sentinel-3-slstr": ("S3SlstrDataset", S3SlstrFiltering, S3SlstrProcessing),
    "sentinel-5p-l2": ("S5PDataset", S5PFiltering, S5PProcessing),
    "hls": ("HLSDataset", HLSFiltering, Processing),
}
BYOC_PREFIXES = ("byoc-", "batch-", "zarr-")
# The names the documentation says these collections had before ("use sentinel-2-l2a, previously
# S2L2A"); the API document lists only the current ones, so these are refused with the new name.
PREVIOUS_NAMES = {
    "s2l1c": "sentinel-2-l1c", "s2l2a": "sentinel-2-l2a", "s1grd": "sentinel-1-grd", "l8l1c": "landsat-8-l1c",
    "lotl1": "landsat-ot-l1", "lotl2": "landsat-ot-l2", "letml1": "landsat-etm-l1", "letml2": "landsat-etm-l2",
    "ltml1": "landsat-tm-l1", "ltml2": "landsat-tm-l2", "lmssl1": "landsat-mss-l1", "s3olci": "sentinel-3-olci",
    "s3slstr": "sentinel-3-slstr", "s5pl2": "sentinel-5p-l2",
}
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_BYOC_TYPE = re.compile(rf"(byoc|batch|zarr)-{_UUID}")
_BYOC_EXAMPLE = "byoc-017aa0ae-33a6-45d3-8548-0f7d1041b40c"


class Collection(CreateModel):
    id: str | None = Field(None, description="The source's name in the evalscript, for data fusion.")


def _collection(type_name: str, schema: str, filtering: type, processing: type) -> type[Collection]:
    # The field types are made at run time from COLLECTIONS (a Literal of a variable, unions of
    # classes passed in), which mypy cannot read as types.
    return create_model(
        schema, __base__=Collection, __module__=__name__, type=(Literal[type_name], ...),  # type: ignore[arg-type]
        dataFilter=(filtering | None, None), processing=(processing | None, None),  # type: ignore[arg-type]
    )


def _byoc_type(value: str) -> str:
    if not _BYOC_TYPE.fullmatch(value):
        raise problem("collection_id", f"{value!r} does not name a collection by its id",
                      f"write byoc-, batch- or zarr- and the collection's id, e.g. {_BYOC_EXAMPLE}")
    return value


class BYOCDataset(Collection):
    """A BYOC, BATCH or ZARR collection, by its id."""

    type: Annotated[str, AfterValidator(_byoc_type), WithJsonSchema({"type": "string", "pattern": f"^{_BYOC_TYPE.pattern}$"})]
    dataFilter: BasicFiltering | None = None
    processing: Processing | None = None


class _AnyFiltering(OpenModel):
    timeRange: TimeRange | None = None


class UnknownCollection(OpenModel):
    """A source whose `type` names no collection: only that, and its time range, can be checked."""

    type: str
    id: str | None = None
    dataFilter: _AnyFiltering | None = None

    @field_validator("type")
    @classmethod
    def _unknown(cls, value: str) -> str:
        raise problem("unknown_collection", f"unknown data collection type {value!r}", type_hint(value))


def type_hint(name: str) -> str:
    """What to write instead of the unknown collection type `name`."""
    lowered = name.strip().lower()
    if lowered in COLLECTIONS:
        return f"did you mean `{lowered}`? (types are lowercase)"
    if lowered in PREVIOUS_NAMES:
        return f"`{name}` is the collection's previous name; the API document names it `{PREVIOUS_NAMES[lowered]}`"
    if lowered.startswith(("byoc", "batch", "zarr")):
        return f"write byoc-, batch- or zarr- and the collection's id, e.g. {_BYOC_EXAMPLE}"
    close = difflib.get_close_matches(lowered, list(COLLECTIONS), n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return "known types: " + ", ".join(COLLECTIONS) + ", and byoc-/batch-/zarr-<collection id>"


def _tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    if isinstance(kind, str):
        if kind in COLLECTIONS:
            return kind
        if kind.startswith(BYOC_PREFIXES):
            return "byoc"
    return "unknown"


DATASETS: dict[str, type[Collection]] = {name: _collection(name, *spec) for name, spec in COLLECTIONS.items()}

if TYPE_CHECKING:
    # What mypy can know of the union below, which is built at run time from DATASETS: every
    # branch is a Collection, or the unknown one.
    DataSource = Collection | UnknownCollection
else:
    # The unknown branch is left out of the JSON Schema, so editors see an unambiguous `oneOf`.
    DataSource = Annotated[
        Union[  # noqa: UP007 (a union of members listed at run time: `X | Y` cannot spell it)
            tuple(Annotated[model, Tag(name)] for name, model in DATASETS.items())
            + (Annotated[BYOCDataset, Tag("byoc")], SkipJsonSchema[Annotated[UnknownCollection, Tag("unknown")]])
        ],
        Discriminator(_tag),
    ]
