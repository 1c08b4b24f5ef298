"""Refresh, first half (I/O): list every live job of the API versions in play — one paged
listing per version, never a GET per job — and read the lockfile (merged with its journal)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi, LiveJob
from reconciler.manifests.loader import Manifest
from reconciler.state.statefile import Snapshot, StateFile


@dataclass(frozen=True)
class Refreshed:
    snapshot: Snapshot
    live: tuple[LiveJob, ...]
    apis: tuple[str, ...]


def versions_in_play(manifests: Iterable[Manifest], snapshot: Snapshot, every: bool) -> tuple[str, ...]:
    """v1 and v2 when listing unmanaged jobs; else only the versions manifests or records use."""
    if every:
        return ("v1", "v2")
    used = {m.job.spec.api for m in manifests} | {r.api for r in snapshot.lockfile.jobs.values()}
    return tuple(sorted(used)) or ("v2",)


def refresh(client: BatchClient, state: StateFile, manifests: list[Manifest], every: bool = False) -> Refreshed:
    snapshot = state.read()
    apis = versions_in_play(manifests, snapshot, every)
    live: list[LiveJob] = []
    for api in apis:
        live += JobsApi(client, api).list_jobs()
    return Refreshed(snapshot, tuple(live), apis)
