"""Parts shared by v1 and v2: the process request, S3 locations, Zarr and COG parameters,
tiling grid descriptors, paging links and the error body. The data collections of a process
request are in `datasets`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from reconciler.batch import CRS84
from reconciler.batch.models.base import CreateModel, LiveModel, OpenModel
from reconciler.batch.models.datasets import DataSource

__all__ = ["CreateModel", "LiveModel", "OpenModel"]  # and the models below; the bases live in `base`

Position = Annotated[list[float], Field(min_length=2, max_length=2)]
LinearRing = Annotated[list[Position], Field(min_length=4)]


class Polygon(CreateModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[LinearRing], Field(min_length=1)]


class MultiPolygon(CreateModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[LinearRing], Field(min_length=1)]], Field(min_length=1)]


Geometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class BoundsProperties(CreateModel):
    crs: str = CRS84


def _bbox_in_order(bbox: list[float] | None) -> list[float] | None:
    if bbox is not None and not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        raise ValueError("expected [minX, minY, maxX, maxY] with min < max")
    return bbox


class Bounds(CreateModel):
    bbox: Annotated[list[float], Field(min_length=4, max_length=4)] | None = None
    geometry: Geometry | None = None
    properties: BoundsProperties | None = None

    _bbox = field_validator("bbox")(_bbox_in_order)

    @model_validator(mode="after")
    def _bbox_or_geometry(self) -> Bounds:
        if self.bbox is None and self.geometry is None:
            raise ValueError("bounds need a `bbox` or a `geometry` (or both)")
        return self


class ProcessInput(CreateModel):
    bounds: Bounds
    data: Annotated[list[DataSource], Field(min_length=1)]


OutputFormatType = Literal["image/tiff", "image/png", "image/jpeg", "application/json", "zarr/array"]


class ResponseFormat(OpenModel):
    type: OutputFormatType


class OutputResponse(CreateModel):
    identifier: Annotated[str, Field(min_length=1)]
    format: ResponseFormat


class ProcessOutput(CreateModel):
    responses: Annotated[list[OutputResponse], Field(min_length=1)]


class ProcessRequest(CreateModel):
    """The Process API request inside a batch body (v2: output required)."""

    input: ProcessInput
    output: ProcessOutput
    evalscript: Annotated[str, Field(min_length=1)]


_S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")


def _s3_url(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get("unresolved") and "${env:" in value:
        return value  # a manifest's `${env:…}` value: checked once resolved
    if not _S3_URL.fullmatch(value):
        raise ValueError("expected an S3 URL such as s3://bucket/prefix (bucket: 3-63 lowercase letters, digits, '.', '-')")
    return value


S3Url = Annotated[str, AfterValidator(_s3_url), WithJsonSchema({"type": "string", "pattern": f"^{_S3_URL.pattern}$"})]


class S3Location(CreateModel):
    url: S3Url
    iamRoleARN: str | None = None
    accessKey: str | None = None
    secretAccessKey: str | None = None
    region: str | None = None

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> S3Location:
        if (self.accessKey is None) != (self.secretAccessKey is None):
            raise ValueError("`accessKey` and `secretAccessKey` go together: give both or neither")
        if self.iamRoleARN is not None and self.accessKey is not None:
            raise ValueError("give either `iamRoleARN` or `accessKey`/`secretAccessKey`, not both")
        return self


class ObjectStorage(CreateModel):
    s3: S3Location


class CogParameters(CreateModel):
    overviewLevels: list[int] | None = None
    overviewMinSize: int | None = None
    resamplingAlgorithm: (
        Literal["nearest", "average", "gauss", "cubic", "cubicspline", "lanczos", "average_magphase", "mode"]
        | None
    ) = None
    blockxsize: Annotated[int, Field(gt=0)] | None = None
    blockysize: Annotated[int, Field(gt=0)] | None = None
    usePredictor: bool | None = None


class ZarrCoordinates(CreateModel):
    origin: Literal["topLeft", "bottomLeft"] = "topLeft"


class ZarrGroup(CreateModel):
    zarr_format: Literal[2]
    coordinates: ZarrCoordinates | None = None
    customAttributes: dict[str, Any] | None = None


ZarrDtype = Literal["|u1", "|i1", "<u2", ">u2", "<i2", ">i2", "<f4", ">f4", "<f8", ">f8"]
FillValue = float | Literal["NaN", "Infinity", "-Infinity"]
Chunks = Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=3, max_length=3)]


def _time_chunk_is_one(chunks: list[int] | None) -> list[int] | None:
    if chunks is not None and chunks[0] != 1:
        raise ValueError("the first chunk dimension (time) must be 1")
    return chunks


class ArrayParameters(CreateModel):
    dtype: ZarrDtype
    order: Literal["C"] = "C"
    chunks: Chunks
    fill_value: FillValue
    compressor: dict[str, Any] | None = None

    _chunks = field_validator("chunks")(_time_chunk_is_one)


class ArrayOverride(CreateModel):
    dtype: ZarrDtype | None = None
    order: Literal["C"] | None = None
    chunks: Chunks | None = None
    fill_value: FillValue | None = None
    compressor: dict[str, Any] | None = None
    customAttributes: dict[str, Any] | None = None

    _chunks = field_validator("chunks")(_time_chunk_is_one)


class TilingGridProperties(LiveModel):
    tileWidth: float
    tileHeight: float
    resolutions: list[float]
    unit: Literal["METRE", "DEGREE"]
    chunkWidth: int | None = None
    chunkHeight: int | None = None
    singleCrs: bool | None = None


class TilingGrid(LiveModel):
    id: int
    name: str
    properties: TilingGridProperties


class Links(LiveModel):
    currentToken: str | None = None
    nextToken: str | None = None
    previousToken: str | None = None
    self_: str | None = Field(default=None, alias="@id")
    next: str | None = None
    previous: str | None = None


T = TypeVar("T")


class Page(LiveModel, Generic[T]):
    """One page of a listing; page on with `links.nextToken` until it is absent."""

    data: list[T]
    links: Links = Links()


class ErrorDetail(LiveModel):
    status: int
    reason: str | None = None
    message: str | None = None
    code: str | None = None
    errors: Any = None


class ErrorBody(LiveModel):
    """The service's error shape: `{"error": {status, reason, message, code, errors?}}`."""

    error: ErrorDetail
