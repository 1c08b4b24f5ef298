"""Planning, first step: pair each manifest name with its lockfile record and its live job (by
the id the lockfile recorded, else by the ownership marker), before any diffing. A pair is one of
three cases, each its own type, so the planner never guesses which fields are there: a manifest
without a live job (`Missing`), a manifest and its live job (`Matched`), a recorded job whose
manifest is gone (`Removed`). What is left over is unmanaged (no marker, not recorded) and only
ever listed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.batch.live import LiveJob
from reconciler.engine.identity import owner
from reconciler.manifests.manifest import Manifest
from reconciler.state.model import JobState


@dataclass(frozen=True, slots=True)
class Missing:
    """A manifest with no live job: new, or gone from the service."""

    name: str
    manifest: Manifest
    record: JobState | None


@dataclass(frozen=True, slots=True)
class Matched:
    """A manifest and the live job that is its request."""

    name: str
    manifest: Manifest
    record: JobState | None
    live: LiveJob
    found_by_marker: bool = False  # not recorded: found by the ownership marker
    duplicates: tuple[LiveJob, ...] = ()  # other live jobs marked for this name


@dataclass(frozen=True, slots=True)
class Removed:
    """A recorded job whose manifest is gone; its live job, if the service still lists it."""

    name: str
    record: JobState
    live: LiveJob | None
    found_by_marker: bool = False
    duplicates: tuple[LiveJob, ...] = ()


Pair = Missing | Matched | Removed


@dataclass(frozen=True)
class Pairing:
    pairs: tuple[Pair, ...]
    unmanaged: tuple[LiveJob, ...]
    foreign: tuple[LiveJob, ...]  # marked for a name neither in the manifests nor in the lockfile


def pair(manifests: Iterable[Manifest], live: Iterable[LiveJob], records: Mapping[str, JobState],
         names: set[str] | None = None) -> Pairing:
    """`names` limits the pairs (a targeted plan); the unmanaged listing is not limited."""
    by_name = {m.name: m for m in manifests}
    jobs = list(live)
    by_id = {job.id: job for job in jobs}
    marked: dict[str, list[LiveJob]] = defaultdict(list)
    for job in jobs:
        if (name := owner(job.description)) is not None:
            marked[name].append(job)
    recorded_ids = {r.id for r in records.values() if r.id}
    all_names = sorted(set(by_name) | set(records))
    pairs: list[Pair] = []
    for name in all_names:
        if names is not None and name not in names:
            continue
        record = records.get(name)
        found, by_marker, duplicates = _live_of(name, record, by_id, marked.get(name, []), recorded_ids)
        manifest = by_name.get(name)
        if manifest is None:
            assert record is not None  # a name comes from a manifest or a record
            pairs.append(Removed(name, record, found, by_marker, duplicates))
        elif found is None:
            pairs.append(Missing(name, manifest, record))
        else:
            pairs.append(Matched(name, manifest, record, found, by_marker, duplicates))
    claimed = ({p.live.id for p in pairs if not isinstance(p, Missing) and p.live is not None} | recorded_ids
               | {d.id for p in pairs if not isinstance(p, Missing) for d in p.duplicates}
               | {i for r in records.values() for i in r.previous or ()})
    known = set(all_names)
    unmanaged = tuple(j for j in jobs if j.id not in claimed and owner(j.description) is None)
    foreign = tuple(j for j in jobs if j.id not in claimed and owner(j.description) not in (None, *known))
    return Pairing(tuple(pairs), unmanaged, foreign)


def _live_of(name: str, record: JobState | None, by_id: Mapping[str, LiveJob], candidates: list[LiveJob],
             recorded_ids: set[str]) -> tuple[LiveJob | None, bool, tuple[LiveJob, ...]]:
    """The live job of `name` (the recorded one, else the newest marked for it that no record
    claims), whether it was found by its marker, and the other marked ones (duplicates)."""
    job = by_id.get(record.id) if record is not None and record.id else None
    predecessors = set(record.previous or ()) if record is not None else set()  # replaced, still marked
    mine = [j for j in candidates if j.id not in predecessors
            and (j.id not in recorded_ids or (record is not None and j.id == record.id))]
    if job is not None:
        return job, False, tuple(c for c in mine if c.id != job.id)
    if mine:
        best, *rest = sorted(mine, key=lambda j: (j.created is not None, j.created), reverse=True)
        return best, True, tuple(rest)
    return None, False, ()
