"""Batch API v1 (`/api/v1/batch`, deprecated but in use): create body, request, tile, enums."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from reconciler.batch.models.common import (
    ArrayOverride,
    ArrayParameters,
    CogParameters,
    CreateModel,
    LiveModel,
    ProcessOutput,
    ProcessRequest,
    ZarrGroup,
)


class RequestStatus(StrEnum):
    CREATED = "CREATED"
    ANALYSING = "ANALYSING"
    ANALYSIS_DONE = "ANALYSIS_DONE"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class UserAction(StrEnum):
    NONE = "NONE"
    ANALYSE = "ANALYSE"
    START = "START"
    CANCEL = "CANCEL"


class TileStatus(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"


Buffer = Annotated[int, Field(ge=0, le=32767)]


class ProcessRequestV1(ProcessRequest):
    """In v1 `processRequest.output` may be omitted (one `default` TIFF output)."""

    output: ProcessOutput | None = None  # type: ignore[assignment]  # widened: optional in v1 only


class TilingGridSettings(CreateModel):
    id: int
    resolution: Annotated[float, Field(gt=0)]
    bufferX: Buffer | None = None
    bufferY: Buffer | None = None


class Output(CreateModel):
    defaultTilePath: str | None = None
    overwrite: bool | None = None
    skipExisting: bool | None = None
    cogOutput: bool | None = None
    cogParameters: CogParameters | None = None
    createCollection: bool | None = None
    collectionId: str | None = None


class ZarrOutput(CreateModel):
    path: Annotated[str, Field(min_length=1)]
    group: ZarrGroup
    arrayParameters: ArrayParameters | None = None
    arrayOverrides: dict[str, ArrayOverride] | None = None


class CreateBody(CreateModel):
    """`POST /api/v1/batch/process`: exactly one of `output`, `bucketName`, `zarrOutput`."""

    processRequest: ProcessRequestV1
    tilingGrid: TilingGridSettings
    output: Output | None = None
    bucketName: Annotated[str, Field(min_length=3, max_length=63)] | None = None
    zarrOutput: ZarrOutput | None = None
    description: str | None = None


class UpdateBody(CreateModel):
    description: str | None = None


class BatchRequest(LiveModel):
    """A v1 batch request as `GET /process[/{id}]` returns it."""

    id: str
    processRequest: dict[str, Any] = {}
    tilingGrid: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    bucketName: str | None = None
    zarrOutput: dict[str, Any] | None = None
    description: str | None = None
    status: RequestStatus
    userAction: UserAction | None = None
    userActionUpdated: datetime | None = None
    created: datetime | None = None
    error: str | None = None
    valueEstimate: float | None = None
    tileCount: int | None = None
    tileWidthPx: int | None = None
    tileHeightPx: int | None = None
    userId: str | None = None
    accountId: str | None = None


class Tile(LiveModel):
    """One tile of a v1 request (`GET /process/{id}/tiles`)."""

    id: int
    requestId: str | None = None
    geometry: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None
    status: TileStatus
    cost: float | None = None
