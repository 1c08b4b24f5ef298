"""Batch API v2 (`/api/v2/batch`): the create body, the task the service returns, its enums."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from reconciler.batch.models.common import (
    ArrayOverride,
    ArrayParameters,
    CogParameters,
    CreateModel,
    LiveModel,
    ObjectStorage,
    ProcessRequest,
    ZarrGroup,
)


class TaskStatus(StrEnum):
    CREATED = "CREATED"
    ANALYSING = "ANALYSING"
    ANALYSIS_DONE = "ANALYSIS_DONE"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class UserAction(StrEnum):
    NONE = "NONE"
    ANALYSE = "ANALYSE"
    START = "START"
    STOP = "STOP"


class StoppedStatusReason(StrEnum):
    OUT_OF_PU = "OUT_OF_PU"
    USER_ACTION = "USER_ACTION"
    UNHEALTHY = "UNHEALTHY"


Buffer = Annotated[int, Field(ge=0, le=32767)]


class TilingGridInput(CreateModel):
    type: Literal["tiling-grid"]
    id: int
    resolution: Annotated[float, Field(gt=0)]
    bufferX: Buffer | None = None
    bufferY: Buffer | None = None


class GeoPackageDefaults(CreateModel):
    width: Annotated[int, Field(gt=0)] | None = None
    height: Annotated[int, Field(gt=0)] | None = None
    resolution: Annotated[float, Field(gt=0)] | None = None


class GeoPackageInput(CreateModel):
    type: Literal["geopackage"]
    features: ObjectStorage
    defaults: GeoPackageDefaults | None = None


Input = Annotated[TilingGridInput | GeoPackageInput, Field(discriminator="type")]


class RasterOutput(CreateModel):
    type: Literal["raster"]
    delivery: ObjectStorage
    overwrite: bool | None = None
    skipExisting: bool | None = None
    cogOutput: bool | None = None
    cogParameters: CogParameters | None = None
    createCollection: bool | None = None
    collectionId: str | None = None


class ZarrOutput(CreateModel):
    type: Literal["zarr"]
    delivery: ObjectStorage
    group: ZarrGroup
    arrayParameters: ArrayParameters | None = None
    arrayOverrides: dict[str, ArrayOverride] | None = None


Output = Annotated[RasterOutput | ZarrOutput, Field(discriminator="type")]


class CreateBody(CreateModel):
    """`POST /api/v2/batch/process`."""

    processRequest: ProcessRequest
    input: Input
    output: Output
    instanceType: Literal["normal", "large"] | None = None
    description: str | None = None


class UpdateBody(CreateModel):
    """`PUT /api/v2/batch/process/{id}`: only the description can change."""

    description: str | None = None


class Task(LiveModel):
    """A v2 batch task as `GET /process[/{id}]` returns it."""

    id: str
    request: dict[str, Any]
    domainAccountId: str | None = None
    projectId: str | None = None
    workspaceId: str | None = None
    status: TaskStatus
    error: str | None = None
    userAction: UserAction | None = None
    userActionUpdated: datetime | None = None
    created: datetime | None = None
    lastUpdated: datetime | None = None
    completionPercentage: float = 0.0
    costPU: float | None = None
    stoppedStatusReason: StoppedStatusReason | None = None

    @property
    def description(self) -> str | None:
        return self.request.get("description")
