"""Refresh, as each page of the listing arrives (pure): a live job is reduced to what the plan
needs of it — its id, status, description and the few fields shown, and the digest of its request
as the plan compares it. Its request itself is kept only where the plan must show how it differs
from the manifest; the request of an unmanaged job is never kept. So a listing of 100,000 jobs is
never alive in full, and a request that echoes its manifest exactly costs one comparison, not a
canonical form and a hash.

What the plan compares a live job with (`Desired`) is made here, once, for the reduction and for
the planner alike (engine/plan.py), so the two cannot disagree on a digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from reconciler.batch import ApiVersion
from reconciler.batch.live import LiveJob, Reduced
from reconciler.canonical import canonical, request_digest
from reconciler.engine.identity import owner
from reconciler.engine.rerun import desired_body
from reconciler.manifests.manifest import NOT_SENSITIVE, Manifest
from reconciler.redaction import KeyPath
from reconciler.state.model import JobState


@dataclass(frozen=True, slots=True)
class Desired:
    """What the live request of a manifest's job should be, as the plan compares it."""

    body: dict[str, Any]  # the manifest's body with the reconciler's own settings of a re-run applied
    sensitive: frozenset[KeyPath]  # body paths hidden on both sides
    digest: str  # request digest of `body` with `sensitive` hidden


def hidden_for(manifest: Manifest | None, record: JobState | None, live_id: str) -> frozenset[KeyPath]:
    """The paths of what is sent (body paths, and ("description",)) hidden for the live job
    `live_id`: the manifest's sensitive ones, and those the lockfile recorded for that request (a
    path once sensitive stays masked until the live value changes)."""
    recorded = record.masked if record is not None and record.id == live_id else NOT_SENSITIVE
    sent = manifest.sent_sensitive if manifest is not None else NOT_SENSITIVE
    return sent | recorded if recorded else sent


def body_paths(hidden: frozenset[KeyPath]) -> frozenset[KeyPath]:
    return frozenset(path for path in hidden if path != ("description",))


def desired(manifest: Manifest, record: JobState | None, live_id: str, hidden: frozenset[KeyPath]) -> Desired:
    """What the job of `manifest` should echo when its live request is `live_id`."""
    sensitive = body_paths(hidden)
    # the reconciler's own settings of the live request (a re-run's) are not a change of the manifest
    rerun_of = record.rerunOf if record is not None and record.id == live_id else None
    body = desired_body(manifest.body, rerun_of)
    if sensitive != manifest.body_sensitive or rerun_of:  # masked for the live request's sake: both sides alike
        return Desired(body, sensitive, request_digest(manifest.api, canonical(body, sensitive)))
    return Desired(body, sensitive, manifest.desired[0])


def live_digest(job: LiveJob, hidden: frozenset[KeyPath]) -> str:
    """The request digest of a live job, its hidden values as digests."""
    if job.digest is not None and job.hidden == hidden:
        return job.digest
    return _digest(job.api, job.body, hidden)


class Reducer:
    """Reduces each live job of a listing against the manifests and the lockfile of the run."""

    def __init__(self, manifests: Iterable[Manifest], records: Mapping[str, JobState]):
        self._manifests = {m.name: m for m in manifests}
        self._records = records
        self._by_id = {record.id: name for name, record in records.items() if record.id}

    def __call__(self, job: LiveJob) -> LiveJob:
        """`job` as a plan keeps it."""
        request, digest, hidden = self.fields(job.id, job.api, job.description, job.body)
        return replace(job, request=request, digest=digest, hidden=hidden)

    def fields(self, job_id: str, api: ApiVersion, description: str | None, request: dict[str, Any]) -> Reduced:
        """What a plan keeps of the live job `job_id`: its request or None, its digest (None when
        nothing pairs with it) and the paths hidden in that digest (batch.live makes the job with them)."""
        name = self._by_id.get(job_id) or owner(description)
        record = self._records.get(name) if name is not None else None
        manifest = self._manifests.get(name) if name is not None else None
        if manifest is None and record is None:
            return None, None, None  # unmanaged, or marked for a name nobody has: only listed
        hidden = hidden_for(manifest, record, job_id)
        if manifest is None:  # its manifest is gone: the fingerprint needs its digest, nothing its body
            return None, _digest(api, request, hidden), hidden
        want = desired(manifest, record, job_id, hidden)
        if api == manifest.api and want.body is manifest.body and _echoes(request, want.body):
            digest = want.digest  # equal requests, equal canonical forms: nothing to hash
        else:
            digest = _digest(api, request, hidden)
        return (None if digest == want.digest else request), digest, hidden


def _digest(api: ApiVersion, request: dict[str, Any], hidden: frozenset[KeyPath]) -> str:
    return request_digest(api, canonical(request, body_paths(hidden)))


def _echoes(request: dict[str, Any] | None, body: dict[str, Any]) -> bool:
    """Whether a live request (with its description) is exactly `body`. Values compare as Python
    compares JSON values (60 equals 60.0, as in the canonical form; `true` equals 1, which the
    service never echoes for a boolean it validated): equal here means equal canonical forms."""
    if request is None or len(request) - ("description" in request) != len(body):
        return False
    return all(key in request and request[key] == value for key, value in body.items())
