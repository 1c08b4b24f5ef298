"""The lockfile (docs/lockfile.md): which manifest name owns which live request, what was last seen,
what is in flight, and what happened. One `JobState` per name; `Lockfile` is versioned, carries
a lineage (one state history) and a serial (bumped by every write).

The model is strict about what a hand edit or another tool could get wrong: counters are integers
(not strings, not booleans) within what JSON readers keep exact, times are ISO 8601 strings with an
offset (not numbers). What a stored document must hold besides is checked in `format`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    field_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from reconciler.names import NAME_RULE, is_name

CURRENT_VERSION = 3
HISTORY_LIMIT = 50  # entries kept per job; older ones are dropped when new ones arrive
PREVIOUS_LIMIT = 20  # replaced requests remembered per job
# Serials and counters stop here: the largest integer every JSON reader (JavaScript, jq) keeps exact,
# and more writes than any state will see. A bigger one is a corrupt or forged file, not a count.
COUNTER_LIMIT = 2**53


def _iso_time(value: object) -> object:
    """A time as written (an ISO 8601 string) or as made in code (a datetime); pydantic alone would
    also take a number as seconds since 1970."""
    if isinstance(value, (str, datetime)):
        return value
    raise ValueError("should be an ISO 8601 time string with an offset")


def _job_name(name: str) -> str:
    """A job's name is a manifest's name (reconciler.names). One no manifest could declare (a hand
    edit, another tool) is refused when read: it would reach markers, messages and searches unchecked."""
    if not is_name(name):
        shown = repr(name[:80]) + ("…" if len(name) > 80 else "")  # from the file: quoted, on one line, cut short
        raise PydanticCustomError("job_name", "{name} is not a job name: {rule}", {"name": shown, "rule": NAME_RULE})
    return name


Counter = Annotated[int, Field(strict=True, ge=0, le=COUNTER_LIMIT)]
JobName = Annotated[str, Field(strict=True), AfterValidator(_job_name)]
Time = Annotated[AwareDatetime, BeforeValidator(_iso_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A job, its history entries and its intent are frozen slotted (pydantic) dataclasses rather than
# models: a lockfile holds one job per manifest and up to HISTORY_LIMIT entries each, and a history
# entry held about 1.1 KB as a model (its __dict__ and the set of fields given), 0.15 KB as this.
# They are validated alike; a changed copy is `dataclasses.replace`, which validates it again.
RECORD = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, config=RECORD)
class HistoryEntry:
    """One recorded action: when, who, what, how it ended, and the manifests' git commit."""

    at: Time
    who: str
    action: str
    result: str  # "ok", "failed: <reason>", "intent", ...
    requestId: str | None = None
    revision: str | None = None  # git commit of the manifests, when they sit in a work tree
    detail: str | None = None


@dataclass(frozen=True, slots=True, config=RECORD)
class Intent:
    """An action under way whose outcome may be unknown after a crash (a create): the next run
    looks for the request by its marker instead of acting again."""

    action: str
    at: Time
    who: str
    marker: str
    specHash: str


@dataclass(frozen=True, slots=True, kw_only=True, config=RECORD)
class JobState:
    id: str | None = None
    api: Literal["v1", "v2"]
    specHash: str
    status: str | None = None  # last observed live status
    observedAt: Time | None = None
    restarts: Counter = 0
    onRemove: Literal["forget", "stop"] = "forget"  # the manifest's policy, for when it is gone
    # Paths in the create body ("description" for the description) whose values were ever
    # sensitive for this request: masked in every output until the live value changes, even once
    # the manifest stops referencing a secret there (docs/security.md). Paths only, never values.
    sensitivePaths: list[list[StrictStr | StrictInt]] | None = None
    # A re-run: the request whose tiles done it skips (the first run of its chain). The re-run's
    # own settings (skipExisting, that run's delivery path) are made again from the manifest's
    # body and applied to it before comparing (engine.rerun); an id, never the URL, may be stored.
    rerunOf: str | None = None
    # Requests this one replaced (re-runs, replacements), newest last: they still carry the
    # marker until the service deletes them, and are predecessors, not duplicates.
    previous: list[str] | None = None
    # The manifest file that declares this job, relative to the repository root (POSIX): a run
    # over other paths leaves the job alone, and only a run over this file removes it (docs/security.md).
    # None in records written before version 3: such a job is never removed automatically.
    file: str | None = None
    intent: Intent | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def masked(self) -> frozenset[tuple]:
        return frozenset(tuple(path) for path in self.sensitivePaths or ())

    @staticmethod
    def paths(masked: frozenset[tuple]) -> list[list[str | int]] | None:
        """`sensitivePaths` as recorded: sorted, and absent when there are none."""
        return sorted((list(path) for path in masked), key=str) or None

    def as_json(self) -> dict:
        """The job as the lockfile stores it (absent fields left out)."""
        return _JOB.dump_python(self, mode="json", exclude_none=True)

    def with_event(self, entry: HistoryEntry | None) -> JobState:
        if entry is None:
            return self
        return replace(self, history=[*self.history, entry][-HISTORY_LIMIT:])


_JOB = TypeAdapter(JobState)


class Lockfile(_Model):
    version: Annotated[int, Field(strict=True, ge=1, le=CURRENT_VERSION)] = CURRENT_VERSION
    lineage: str = Field(default_factory=lambda: str(uuid.uuid4()))  # a UUID in a stored lockfile (see format)
    serial: Counter = 0
    journalSeq: Counter = 0  # the last journal entry folded in (see reconciler.state.statefile)
    jobs: dict[str, JobState] = Field(default_factory=dict)

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, jobs: dict[str, JobState]) -> dict[str, JobState]:
        for name in jobs:  # here rather than on the key type: the error is then about `jobs`, naming the key
            _job_name(name)
        return jobs
