"""Live jobs of either API version, as the engine sees them.

Live-state I/O (DESIGN §7 `api/`), between the version clients (`api/client.py`) and the engine:
refresh lists every live job as a `LiveJob` and pairs it with a manifest by lockfile id or by the
ownership marker in its description (§2); apply creates, updates descriptions and acts through
`JobsApi`, without caring whether a job is v1 or v2. Where a version lacks an action (v2 has no
restart, delete or tiles) `JobsApi` raises UnsupportedAction before anything is sent.

Reads here are tolerant of statuses the models do not know yet: the service adds them over time,
and one unknown value must not fail a whole refresh. Such a value is kept as the service's string,
for the planner to decide what it means (acting on a status it does not know would be a guess).
Items are never dropped: a job missing from the listing would look deleted and be created again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from pydantic import Field

from reconciler.api.client import BatchClient, V1Client, V2Client
from reconciler.api.errors import ApiError
from reconciler.api.models import v1, v2
from reconciler.api.models.live import API_VERSIONS, ApiVersion, LiveJob
from reconciler.redaction import from_service

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

    status: _TaskStatus  # type: ignore[assignment]
    userAction: _V2Action | None = None  # type: ignore[assignment]
    stoppedStatusReason: _StoppedReason | None = None  # type: ignore[assignment]


class TolerantBatchRequest(v1.BatchRequest):
    """A v1 request whose status and userAction may be values not known yet."""

    status: _RequestStatus  # type: ignore[assignment]
    userAction: _V1Action | None = None  # type: ignore[assignment]


class TolerantTile(v1.Tile):
    """A v1 tile whose status may be a value not known yet."""

    status: _TileStatus  # type: ignore[assignment]


class UnsupportedAction(ApiError):
    """The job's API version has no such action; nothing was sent."""


def live_job_from_v2(task: v2.Task, shared: dict[str, str] | None = None) -> LiveJob:
    """The LiveJob of a v2 task (strict or tolerant); `shared` lets a listing's jobs share equal
    evalscript texts (10,000 jobs usually run a handful, and each answer brings its own copy)."""
    return LiveJob(
        id=task.id, api="v2", status=str(task.status), description=task.description,
        request=_share_evalscript(task.request, shared) if shared is not None else task.request,
        created=task.created, last_updated=task.lastUpdated, cost_pu=task.costPU,
        completion=task.completionPercentage, user_action=_text(task.userAction), error=from_service(task.error),
        stopped_reason=_text(task.stoppedStatusReason),
    )


def live_job_from_v1(request: v1.BatchRequest) -> LiveJob:
    """The LiveJob of a v1 batch request (strict or tolerant). Only the body fields the service
    sent with a value are kept, so the echo compares with the body that was submitted."""
    sent = request.model_fields_set
    body = {name: copy.deepcopy(getattr(request, name)) for name in V1_BODY_FIELDS
            if name in sent and getattr(request, name) is not None}
    return LiveJob(
        id=request.id, api="v1", status=str(request.status), description=request.description,
        request=body, created=request.created, cost_pu=request.valueEstimate, tile_count=request.tileCount,
        user_action=_text(request.userAction), error=from_service(request.error),
    )


def _share_evalscript(request: dict, shared: dict[str, str]) -> dict:
    process = request.get("processRequest")
    script = process.get("evalscript") if isinstance(process, dict) else None
    if isinstance(script, str):
        process["evalscript"] = shared.setdefault(script, script)
    return request


def _text(value: object) -> str | None:
    return None if value is None else str(value)


_UNSUPPORTED: dict[str, tuple[str, str]] = {
    "restart": ("the Batch API v2 cannot restart a job (restartpartial is v1 only)",
                "a v2 job that ended FAILED is re-run as a replacement with `output.skipExisting: true`, "
                "which processes only the missing tiles; `policy.maxRestarts` says how many times"),
    "delete": ("the Batch API v2 cannot delete a job",
               "stop the job instead; the service deletes stale v2 requests by itself"),
    "tiles": ("the Batch API v2 does not list a job's tiles",
              "follow a v2 job by its completion percentage, or list the outputs in its delivery bucket"),
}


class JobsApi:
    """The calls the engine makes on live jobs of one API version (`"v1"` or `"v2"`)."""

    def __init__(self, client: BatchClient, api: ApiVersion):
        if api not in API_VERSIONS:
            raise ValueError(f"unknown Batch API version {api!r}; expected one of {', '.join(API_VERSIONS)}")
        self.api: ApiVersion = api
        self._client = client

    def list_jobs(self, *, search: str | None = None) -> Iterator[LiveJob]:
        """Every live job of this version, lazily, page by page; unknown statuses are kept."""
        if self.api == "v2":
            shared: dict[str, str] = {}
            tasks = self._client.v2.iter_tasks(search=search, model=TolerantTask)
            return (live_job_from_v2(task, shared) for task in tasks)
        return map(live_job_from_v1, self._client.v1.iter_requests(search=search, model=TolerantBatchRequest))

    def get(self, job_id: str) -> LiveJob:
        if self.api == "v2":
            return live_job_from_v2(self._client.v2.get(job_id, model=TolerantTask))
        return live_job_from_v1(self._client.v1.get(job_id, model=TolerantBatchRequest))

    def create(self, body: Mapping[str, Any]) -> LiveJob:
        """Create a job from its create body, sent once (a lost answer raises CreateOutcomeUnknown)."""
        if self.api == "v2":
            return live_job_from_v2(self._client.v2.create(body, model=TolerantTask))
        return live_job_from_v1(self._client.v1.create(body, model=TolerantBatchRequest))

    def update_description(self, job_id: str, description: str) -> None:
        """Set the description (the only field that changes in place). Conflict while processing."""
        if self.api == "v2":
            self._client.v2.update_description(job_id, description)
        else:
            self._client.v1.update_description(job_id, description, model=TolerantBatchRequest)

    def analyse(self, job_id: str) -> None:
        self._version().analyse(job_id)

    def start(self, job_id: str) -> None:
        self._version().start(job_id)

    def stop(self, job_id: str) -> None:
        """v2 stop (resumable by start) or v1 cancel (final)."""
        if self.api == "v2":
            self._client.v2.stop(job_id)
        else:
            self._client.v1.cancel(job_id)

    def restart(self, job_id: str) -> None:
        """Re-process the failed tiles of a PARTIAL v1 job (BadRequest in any other status)."""
        self._v1_only("restart", job_id).restart_partial(job_id)

    def delete(self, job_id: str) -> None:
        self._v1_only("delete", job_id).delete(job_id)

    def tiles(self, job_id: str, status: str | None = None) -> Iterator[v1.Tile]:
        """The tiles of a v1 job, optionally only those in `status`; unknown tile statuses are kept."""
        return self._v1_only("tiles", job_id).iter_tiles(job_id, status=status, model=TolerantTile)

    def _version(self) -> V1Client | V2Client:
        return self._client.v2 if self.api == "v2" else self._client.v1

    def _v1_only(self, action: str, job_id: str) -> V1Client:
        if self.api == "v1":
            return self._client.v1
        message, hint = _UNSUPPORTED[action]
        raise UnsupportedAction(f"{action} job {job_id}: {message}", hint=hint)
