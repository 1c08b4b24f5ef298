"""Live jobs of either API version, through the HTTP client: the calls refresh and apply make.

Between the version clients (`api/client.py`) and the operations: refresh lists every live job as
a `LiveJob` (reconciler.batch.live, tolerant of statuses the models do not know yet) and pairs it
with a manifest by lockfile id or by the ownership marker in its description; apply creates,
updates descriptions and acts through `JobsApi`, without caring whether a job is v1 or v2. Where a
version lacks an action (v2 has no restart, delete or tiles) `JobsApi` raises UnsupportedAction
before anything is sent. Items are never dropped: a job missing from the listing would look
deleted and be created again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.api.client import BatchClient, V1Client, V2Client
from reconciler.api.errors import ApiError
from reconciler.batch import API_VERSIONS, ApiVersion
from reconciler.batch.live import (
    LiveJob,
    Reduce,
    TolerantBatchRequest,
    TolerantTask,
    TolerantTile,
    live_job_from_v1,
    live_job_from_v2,
)
from reconciler.batch.models import v1


class UnsupportedAction(ApiError):
    """The job's API version has no such action; nothing was sent."""


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

    def list_jobs(self, *, search: str | None = None, reduce: Reduce | None = None) -> Iterator[LiveJob]:
        """Every live job of this version, lazily, page by page; unknown statuses are kept. With
        `reduce`, each is made as a plan keeps it (engine.reduce) as its page arrives."""
        if self.api == "v2":
            shared: dict[str, str] = {}
            tasks = self._client.v2.iter_tasks(search=search, model=TolerantTask)
            return (live_job_from_v2(task, shared, reduce) for task in tasks)
        requests = self._client.v1.iter_requests(search=search, model=TolerantBatchRequest)
        return (live_job_from_v1(request, reduce) for request in requests)

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
