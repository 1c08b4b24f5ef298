"""The `BatchJob` manifest (README, "Manifests"): desired state of one batch job, as pydantic models.

`spec.request` is the API's own create body (models in `reconciler.batch.models`) minus
`description`, which lives in `spec.description` so the ownership marker can be appended to it.
The JSON Schema for editors is generated from these models (`reconciler schema`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
)

from reconciler.batch import ApiVersion
from reconciler.batch.models import common, v1, v2
from reconciler.names import MARKER_PREFIX, NAME_PATTERN, check_name  # the name rule and the marker: defined there

_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def _label(value: str) -> str:
    if len(value) > 63 or (value and not _LABEL.fullmatch(value)):
        raise ValueError("a label is at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    return value


Name = Annotated[str, AfterValidator(check_name), WithJsonSchema({"type": "string", "maxLength": 63, "pattern": f"^{NAME_PATTERN.pattern}$"})]
LabelKey = Annotated[str, Field(min_length=1), AfterValidator(_label)]
LabelValue = Annotated[str, AfterValidator(_label)]


class ManifestModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class Metadata(ManifestModel):
    name: Name = Field(description="Unique across all manifests; names the job in the lockfile and the ownership marker.")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Free labels; `--selector k=v` filters on them.")


class Policy(ManifestModel):
    maxRestarts: Annotated[int, Field(ge=0, le=100)] = Field(
        0, description="v1: restart a PARTIAL job (only its failed tiles) up to this many times."
    )
    maxCostPU: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Never start a job whose cost estimate (processing units) exceeds this."
    )
    onSpecChange: Literal["refuse", "replace"] = Field(
        "refuse", description="`replace` allows creating a new request (and stopping the old) when the request changes."
    )
    onRemove: Literal["forget", "stop"] = Field("forget", description="What happens to the live job when its manifest is deleted.")


def _no_description(value: Any) -> Any:
    raise ValueError("`description` belongs in spec.description (the reconciler appends its ownership marker to it)")


class _NoDescription(BaseModel):
    @field_validator("description", check_fields=False)
    @classmethod
    def _reject(cls, value: Any) -> Any:
        return _no_description(value)


class ManifestProcessRequest(common.ProcessRequest):
    # optional here (mypy refuses an override that widens a field): a manifest may give spec.evalscriptFile
    evalscript: Annotated[str, Field(min_length=1)] | None = None  # type: ignore[assignment]  # or spec.evalscriptFile


class ManifestProcessRequestV1(v1.ProcessRequestV1):
    # optional here, as above
    evalscript: Annotated[str, Field(min_length=1)] | None = None  # type: ignore[assignment]


class RequestV2(v2.CreateBody, _NoDescription):
    processRequest: ManifestProcessRequest


class RequestV1(v1.CreateBody, _NoDescription):
    processRequest: ManifestProcessRequestV1


State = Literal["created", "analysed", "started", "stopped"]


class _SpecFields(ManifestModel):
    api: str  # narrowed by each version; declared first to fix the canonical key order
    state: State = Field("started", description="How far the job should go: created, analysed, started (to the end) or stopped.")
    description: str = Field("", max_length=900, description="The request's description; the ownership marker is appended.")
    evalscriptFile: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="Evalscript file, relative to the manifest; fills request.processRequest.evalscript."
    )
    request: Any
    policy: Policy = Field(default_factory=Policy)

    @field_validator("description")
    @classmethod
    def _no_marker(cls, value: str) -> str:
        if MARKER_PREFIX in value:
            raise ValueError(f"the description must not contain {MARKER_PREFIX!r}: the reconciler adds its marker itself")
        return value


class SpecV2(_SpecFields):
    api: Literal["v2"] = Field("v2", description="Batch API version: v2 (default) or v1 (deprecated, still in use).")
    request: RequestV2 = Field(description="The v2 create body (processRequest, input, output, instanceType).")


class SpecV1(_SpecFields):
    api: Literal["v1"]
    request: RequestV1 = Field(description="The v1 create body (processRequest, tilingGrid, output | bucketName | zarrOutput).")


def _api_of(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return "v2"  # let the v2 model report "expected a mapping"
    api = spec.get("api", "v2")
    return api if api in ("v1", "v2") else None


Spec = Annotated[
    Annotated[SpecV1, Tag("v1")] | Annotated[SpecV2, Tag("v2")],
    Discriminator(
        _api_of,
        custom_error_type="invalid_api",
        custom_error_message="spec.api must be v1 or v2",
        custom_error_context={"discriminator": "api"},
    ),
]


class StoredSpec(ManifestModel):
    """The spec of a manifest the load cache kept, without its request: the cache entry is bound to
    the file's bytes by their digest, so the request is not validated again (the header is: it is
    small, and what the planner branches on)."""

    api: ApiVersion
    state: State
    description: str
    evalscriptFile: str | None
    policy: Policy


class StoredHeader(ManifestModel):
    apiVersion: Literal["reconciler/v1"]
    kind: Literal["BatchJob"]
    metadata: Metadata
    spec: StoredSpec


class BatchJob(ManifestModel):
    """One desired batch job."""

    apiVersion: Literal["reconciler/v1"]
    kind: Literal["BatchJob"]
    metadata: Metadata
    spec: Spec


def json_schema() -> dict[str, Any]:
    schema = BatchJob.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "reconciler BatchJob manifest",
        **{k: v for k, v in schema.items() if k != "title"},
    }
