"""A live batch job of either API version, as the engine sees it: plain data, built by
`api/jobs.py` from the v1 and v2 models, and planned on by the pure engine (which must not import
the HTTP client to know what a live job is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ApiVersion = Literal["v1", "v2"]
API_VERSIONS: tuple[ApiVersion, ...] = ("v2", "v1")


@dataclass(frozen=True)
class LiveJob:
    """One live batch job, v1 request or v2 task. `status` is the service's string (it may be one
    the models do not know); `request` is the create body as the service echoes it."""

    id: str
    api: ApiVersion
    status: str
    description: str | None
    request: dict[str, Any]
    created: datetime | None = None
    last_updated: datetime | None = None  # v2 lastUpdated; v1 has none
    cost_pu: float | None = None  # v2 costPU, v1 valueEstimate: known once analysed
    completion: float | None = None  # v2 completionPercentage; v1 has none
    tile_count: int | None = None  # v1 tileCount
    failed_tiles: int | None = None  # v1 PARTIAL: its FAILED tiles, counted by refresh for managed jobs
    user_action: str | None = None
    error: str | None = None
    stopped_reason: str | None = None  # v2 stoppedStatusReason
