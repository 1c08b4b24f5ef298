"""The lockfile in its store: conditional reads and writes, and the journal that keeps recording
cheap (docs/lockfile.md).

A full write replaces `<key>` only over the version read (`If-Match`; `If-None-Match: *` for the
first) and bumps `serial`. During an apply every action is recorded as one small journal object
`<key>.journal/<seq>-<lineage>.json` (O(1) bytes whatever the number of jobs); reading merges the lockfile
with the journal entries past its `journalSeq`, and `compact` folds them in with one conditional
write and then deletes them. A crash between the two leaves entries the lockfile already counts
(seq ≤ journalSeq): they are skipped, never applied twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from pydantic import StrictBool, ValidationError

from reconciler.errors import StateConflict, StateError
from reconciler.state.format import DuplicateKey, _shown, decode, encode, json_text, strict_json_loads
from reconciler.state.model import Counter, HistoryEntry, JobName, JobState, Lockfile, _Model
from reconciler.state.objects import ObjectStore, PreconditionFailed


class JournalEntry(_Model):
    seq: Counter
    lineage: str  # an entry of another lineage is a leftover: listed, never merged
    name: JobName
    job: JobState | None = None  # the job's new state (its history travels as `event`)
    event: HistoryEntry | None = None
    removed: StrictBool = False


@dataclass(frozen=True)
class Snapshot:
    """What was read: the merged lockfile, and the stored version it rests on."""

    lockfile: Lockfile
    etag: str | None  # of the lockfile object; None when there is none yet
    stored_serial: int
    journal: tuple[str, ...] = ()  # entry keys merged into `lockfile`


def fold(jobs: dict[str, JobState], entry: JournalEntry) -> None:
    """Apply one journal entry to `jobs`, in place: reading a journal of N entries over a lockfile
    of N jobs stays linear (a copy of the jobs per entry would make it quadratic)."""
    if entry.removed:
        jobs.pop(entry.name, None)
        return
    previous = jobs.get(entry.name)
    base = entry.job or previous
    if base is None:
        return
    history = previous.history if previous else []
    jobs[entry.name] = replace(base, history=history).with_event(entry.event)


def apply_entry(lockfile: Lockfile, entry: JournalEntry) -> Lockfile:
    """A copy of `lockfile` with one journal entry applied."""
    jobs = dict(lockfile.jobs)
    fold(jobs, entry)
    return lockfile.model_copy(update={"jobs": jobs, "journalSeq": entry.seq})


@dataclass
class StateFile:
    store: ObjectStore
    key: str

    @property
    def location(self) -> str:
        return self.store.url(self.key)

    @property
    def journal_prefix(self) -> str:
        return f"{self.key}.journal/"

    def read(self) -> Snapshot:
        blob = self.store.get(self.key)
        etag, text = (blob.etag, json_text(blob.data, self.location)) if blob else (None, None)
        del blob  # the lockfile's bytes are let go before its text is parsed
        lockfile = decode(text, self.location) if text is not None else Lockfile()
        jobs, seq, used = dict(lockfile.jobs), lockfile.journalSeq, []
        for key, entry in self._journal(lockfile):
            if entry is not None:
                fold(jobs, entry)
                seq = entry.seq
            used.append(key)  # folded in now, or left over (already folded, another lineage): the next write drops it
        merged = lockfile.model_copy(update={"jobs": jobs, "journalSeq": seq}) if used else lockfile
        return Snapshot(merged, etag, lockfile.serial, tuple(used))

    def write(self, lockfile: Lockfile, base: Snapshot) -> Snapshot:
        """Store `lockfile` as the next serial, only over `base`; then drop the journal it folded in."""
        stored = lockfile.model_copy(update={"serial": base.stored_serial + 1})
        try:
            if base.etag is None:
                etag = self.store.put(self.key, encode(stored), if_none_match=True)
            else:
                etag = self.store.put(self.key, encode(stored), if_match=base.etag)
        except PreconditionFailed:
            raise StateConflict(
                f"the lockfile {self.location} changed since it was read (at serial {base.stored_serial}); nothing was written",
                "another run wrote it meanwhile: read it again (re-run the command)") from None
        if base.journal:
            self.store.delete_many(list(base.journal))
        return Snapshot(stored, etag, stored.serial)

    def compact(self, snapshot: Snapshot) -> Snapshot:
        """Fold the journal into the lockfile (one conditional write)."""
        if not snapshot.journal and snapshot.etag is not None:
            return snapshot
        return self.write(snapshot.lockfile, snapshot)

    def journal(self, snapshot: Snapshot) -> Journal:
        """A writer of journal entries on top of `snapshot` (for the lease holder only)."""
        if snapshot.etag is None:  # entries carry the lineage: it must be stored first
            snapshot = self.write(snapshot.lockfile, snapshot)
        return Journal(self, snapshot)

    def _journal(self, lockfile: Lockfile):
        entries = []
        for key in self.store.list(self.journal_prefix):
            blob = self.store.get(key)
            if blob is None:
                continue  # compacted meanwhile
            try:
                entry = JournalEntry.model_validate(strict_json_loads(blob.data))
            except ValueError as e:  # a ValidationError is one too
                if isinstance(e, ValidationError):  # the field at fault, never its value
                    first = e.errors(include_input=False, include_url=False)[0]
                    why = f": {'.'.join(_shown(str(part)) for part in first['loc'])}: {first['msg']}"
                else:
                    why = f": {e}" if isinstance(e, DuplicateKey) else ""
                raise StateError(f"journal entry {self.store.url(key)} is unreadable{why}",
                                 "inspect it; delete it if it is garbage (its action is then forgotten)") from None
            current = entry.lineage == lockfile.lineage and entry.seq > lockfile.journalSeq
            entries.append((key, entry if current else None))
        return sorted(entries, key=lambda item: (item[1] is not None, item[1].seq if item[1] else 0))


@dataclass
class Journal:
    """Records one action at a time as its own small object, and keeps the merged view current."""

    state: StateFile
    snapshot: Snapshot
    written: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # the journal's own view, changed in place as entries are recorded (linear in the entries)
        lockfile = self.snapshot.lockfile
        self.view = lockfile.model_copy(update={"jobs": dict(lockfile.jobs)})

    def record(self, name: str, job: JobState | None, event: HistoryEntry | None = None) -> int:
        """Write one entry (the job's new state and/or an event); returns the bytes written."""
        if job is not None:
            job = replace(job, history=[])
        entry = JournalEntry(seq=self.view.journalSeq + 1, lineage=self.view.lineage, name=name, job=job,
                             event=event, removed=job is None and event is None)
        data = json.dumps(entry.model_dump(mode="json", exclude_none=True), separators=(",", ":")).encode()
        key = f"{self.state.journal_prefix}{entry.seq:012d}-{entry.lineage[:8]}.json"
        try:
            self.state.store.put(key, data, if_none_match=True)
        except PreconditionFailed:
            raise StateConflict(f"journal entry {entry.seq} of {self.state.location} already exists",
                                "another run is recording: is the lease held twice?") from None
        self._fold(entry)
        self.written.append(key)
        return len(data)

    def note(self, name: str, job: JobState, event: HistoryEntry | None = None) -> None:
        """Like `record`, but kept in the view only, until `compact` writes the lockfile: for
        observations, which the next run simply makes again if this one dies first."""
        entry = JournalEntry(seq=self.view.journalSeq, lineage=self.view.lineage, name=name,
                             job=replace(job, history=[]), event=event)
        self._fold(entry)

    def _fold(self, entry: JournalEntry) -> None:
        fold(self.view.jobs, entry)
        self.view.journalSeq = entry.seq

    def remove(self, name: str) -> int:
        return self.record(name, None, None)

    def compact(self) -> Snapshot:
        """Fold everything recorded so far into the lockfile."""
        base = Snapshot(self.view, self.snapshot.etag, self.snapshot.stored_serial, (*self.snapshot.journal, *self.written))
        self.snapshot = self.state.write(self.view, base)
        self.written = []
        self.view = self.snapshot.lockfile.model_copy(update={"jobs": dict(self.snapshot.lockfile.jobs)})
        return self.snapshot
