"""Beside refresh: the live job each recorded name has now — one listing per API version, each
name joined to its request by the id the lockfile holds. `status`, apply's last look at the jobs
(observe) and `apply --wait` all read live state this way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.api.jobs import JobsApi
from reconciler.api.models.live import LiveJob
from reconciler.state.model import JobState


def recorded_jobs(apis: Iterable[JobsApi], records: Mapping[str, JobState | None]) -> dict[str, LiveJob | None]:
    """{name: its live job, or None when it has no request or the listing does not show it}."""
    return joined([job for api in apis for job in api.list_jobs()], records)


def joined(live: Iterable[LiveJob], records: Mapping[str, JobState | None]) -> dict[str, LiveJob | None]:
    """The same, from jobs already listed."""
    by_id = {job.id: job for job in live}
    return {name: by_id.get(record.id) if record is not None and record.id else None for name, record in records.items()}
