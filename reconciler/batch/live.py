"""A live batch job of either API version, as the engine sees it: plain data, made here from the
v1 and v2 models the HTTP client parses (`reconciler.api.jobs` lists and fetches), and planned on
by the pure engine, which needs no HTTP client to know what a live job is.

Reads are tolerant of statuses the models do not know yet: the service adds them over time, and
one unknown value must not fail a whole refresh. Such a value is kept as the service's string, for
the planner to decide what it means (acting on a status it does not know would be a guess)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from reconciler.batch import ApiVersion
from reconciler.batch.models import v1, v2
from reconciler.redaction import KeyPath, from_service


@dataclass(frozen=True, slots=True)
class LiveJob:
    """One live batch job, v1 request or v2 task. `status` is the service's string (it may be one
    the models do not know); `request` is the create body as the service echoes it."""

    id: str
    api: ApiVersion
    status: str
    description: str | None
    # The create body as the service echoes it; None once a plan's refresh has reduced the job to
    # its `digest` (engine/reduce.py) and nothing needs the body itself.
    request: dict[str, Any] | None
    created: datetime | None = None
    last_updated: datetime | None = None  # v2 lastUpdated; v1 has none
    cost_pu: float | None = None  # v2 costPU, v1 valueEstimate: known once analysed
    completion: float | None = None  # v2 completionPercentage; v1 has none
    tile_count: int | None = None  # v1 tileCount
    failed_tiles: int | None = None  # v1 PARTIAL: its FAILED tiles, counted by refresh for managed jobs
    user_action: str | None = None
    error: str | None = None
    stopped_reason: str | None = None  # v2 stoppedStatusReason
    digest: str | None = None  # the request digest a plan compares, with the `hidden` paths as digests
    hidden: frozenset[KeyPath] | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The request: a job read from the service has it; one a plan reduced may not."""
        if self.request is None:
            raise ValueError(f"the request of {self.id} was not kept")
        return self.request


# The v1 request fields that together are the create body the service echoes back.
V1_BODY_FIELDS = ("processRequest", "tilingGrid", "output", "bucketName", "zarrOutput", "description")

# A known value becomes the enum member; an unknown non-empty string stays a plain string.
_Text = Annotated[str, Field(min_length=1)]
_TaskStatus = Annotated[v2.TaskStatus | _Text, Field(union_mode="left_to_right")]
_V2Action = Annotated[v2.UserAction | _Text, Field(union_mode="left_to_right")]
_StoppedReason = Annotated[v2.StoppedStatusReason | _Text, Field(union_mode="left_to_right")]
_RequestStatus = Annotated[v1.RequestStatus | _Text, Field(union_mode="left_to_right")]
_V1Action = Annotated[v1.UserAction | _Text, Field(union_mode="left_to_right")]
_TileStatus = Annotated[v1.TileStatus | _Text, Field(union_mode="left_to_right")]


class TolerantTask(v2.Task):
    """A v2 task whose status, userAction and stoppedStatusReason may be values not known yet."""

    # Each ignore: mypy refuses an override that widens a field's type, and widening is the point.
    status: _TaskStatus  # type: ignore[assignment]
    userAction: _V2Action | None = None  # type: ignore[assignment]
    stoppedStatusReason: _StoppedReason | None = None  # type: ignore[assignment]


class TolerantBatchRequest(v1.BatchRequest):
    """A v1 request whose status and userAction may be values not known yet."""

    # Each ignore: a widened field, as in TolerantTask.
    status: _RequestStatus  # type: ignore[assignment]
    userAction: _V1Action | None = None  # type: ignore[assignment]


class TolerantTile(v1.Tile):
    """A v1 tile whose status may be a value not known yet."""

    # The ignore: a widened field, as in TolerantTask.
    status: _TileStatus  # type: ignore[assignment]


# What a plan keeps of a live job's request (engine.reduce): given its id, version, description and
# request, the request itself or None, its digest, and the paths hidden in that digest.
Reduced = tuple[dict[str, Any] | None, str | None, frozenset[KeyPath] | None]
Reduce = Callable[[str, ApiVersion, str | None, dict[str, Any]], Reduced]


def live_job_from_v2(task: v2.Task, shared: dict[str, str] | None = None, reduce: Reduce | None = None) -> LiveJob:
    """The LiveJob of a v2 task (strict or tolerant); `shared` lets a listing's jobs share equal
    evalscript texts (10,000 jobs usually run a handful, and each answer brings its own copy);
    `reduce` keeps of its request only what a plan needs (engine.reduce)."""
    request = _share_evalscript(task.request, shared) if shared is not None else task.request
    kept, digest, hidden = reduce(task.id, "v2", task.description, request) if reduce else (request, None, None)
    return LiveJob(
        id=task.id, api="v2", status=str(task.status), description=task.description, request=kept,
        created=task.created, last_updated=task.lastUpdated, cost_pu=task.costPU,
        completion=task.completionPercentage, user_action=_text(task.userAction), error=from_service(task.error),
        stopped_reason=_text(task.stoppedStatusReason), digest=digest, hidden=hidden,
    )


def live_job_from_v1(request: v1.BatchRequest, reduce: Reduce | None = None) -> LiveJob:
    """The LiveJob of a v1 batch request (strict or tolerant). Only the body fields the service
    sent with a value are kept, so the echo compares with the body that was submitted."""
    sent = request.model_fields_set
    body = {name: copy.deepcopy(getattr(request, name)) for name in V1_BODY_FIELDS
            if name in sent and getattr(request, name) is not None}
    kept, digest, hidden = reduce(request.id, "v1", request.description, body) if reduce else (body, None, None)
    return LiveJob(
        id=request.id, api="v1", status=str(request.status), description=request.description,
        request=kept, created=request.created, cost_pu=request.valueEstimate, tile_count=request.tileCount,
        user_action=_text(request.userAction), error=from_service(request.error), digest=digest, hidden=hidden,
    )


def _share_evalscript(request: dict[str, Any], shared: dict[str, str]) -> dict[str, Any]:
    process = request.get("processRequest")
    if isinstance(process, dict) and isinstance(script := process.get("evalscript"), str):
        process["evalscript"] = shared.setdefault(script, script)
    return request


def _text(value: object) -> str | None:
    return None if value is None else str(value)
