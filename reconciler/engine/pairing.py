"""Planning, first step: pair each manifest name with its lockfile record and its live job (by
the id the lockfile recorded, else by the ownership marker), before any diffing. What is left
over is unmanaged (no marker, not recorded) and only ever listed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.batch.live import LiveJob
from reconciler.engine.identity import owner
from reconciler.manifests.manifest import Manifest
from reconciler.state.model import JobState


@dataclass(frozen=True)
class Pair:
    name: str
    manifest: Manifest | None
    record: JobState | None
    live: LiveJob | None
    found_by_marker: bool = False
    duplicates: tuple[LiveJob, ...] = ()  # other live jobs marked for this name


@dataclass(frozen=True)
class Pairing:
    pairs: tuple[Pair, ...]
    unmanaged: tuple[LiveJob, ...]
    foreign: tuple[LiveJob, ...]  # marked for a name neither in the manifests nor in the lockfile


def pair(manifests: Iterable[Manifest], live: Iterable[LiveJob], records: Mapping[str, JobState],
         names: set[str] | None = None) -> Pairing:
    """`names` limits the pairs (a targeted plan); the unmanaged listing is not limited."""
    manifests = {m.name: m for m in manifests}
    live = list(live)
    by_id = {job.id: job for job in live}
    marked: dict[str, list[LiveJob]] = defaultdict(list)
    for job in live:
        if (name := owner(job.description)) is not None:
            marked[name].append(job)
    recorded_ids = {r.id for r in records.values() if r.id}
    all_names = sorted(set(manifests) | set(records))
    pairs = []
    for name in all_names:
        if names is not None and name not in names:
            continue
        record = records.get(name)
        job = by_id.get(record.id) if record and record.id else None
        predecessors = set(record.previous or ()) if record else set()  # replaced, still marked: not duplicates
        candidates = [j for j in marked.get(name, []) if j.id not in predecessors
                      and (j.id not in recorded_ids or (record and j.id == record.id))]
        if job is not None:
            pairs.append(Pair(name, manifests.get(name), record, job, False, tuple(c for c in candidates if c.id != job.id)))
        elif candidates:
            best, *rest = sorted(candidates, key=lambda j: (j.created is not None, j.created), reverse=True)
            pairs.append(Pair(name, manifests.get(name), record, best, True, tuple(rest)))
        else:
            pairs.append(Pair(name, manifests.get(name), record, None))
    claimed = ({p.live.id for p in pairs if p.live} | recorded_ids | {d.id for p in pairs for d in p.duplicates}
               | {i for r in records.values() for i in r.previous or ()})
    known = set(all_names)
    unmanaged = tuple(j for j in live if j.id not in claimed and owner(j.description) is None)
    foreign = tuple(j for j in live if j.id not in claimed and owner(j.description) not in (None, *known))
    return Pairing(tuple(pairs), unmanaged, foreign)
