"""The lockfile (DESIGN §3): which manifest name owns which live request, what was last seen,
what is in flight, and what happened. One `JobState` per name; `Lockfile` is versioned, carries
a lineage (one state history) and a serial (bumped by every write)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CURRENT_VERSION = 2
HISTORY_LIMIT = 50  # entries kept per job; older ones are dropped when new ones arrive
PREVIOUS_LIMIT = 20  # replaced requests remembered per job


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryEntry(_Model):
    """One recorded action: when, who, what, how it ended, and the manifests' git commit."""

    at: datetime
    who: str
    action: str
    result: str  # "ok", "failed: <reason>", "intent", ...
    requestId: str | None = None
    revision: str | None = None  # git commit of the manifests, when they sit in a work tree
    detail: str | None = None


class Intent(_Model):
    """An action under way whose outcome may be unknown after a crash (a create): the next run
    looks for the request by its marker instead of acting again."""

    action: str
    at: datetime
    who: str
    marker: str
    specHash: str


class JobState(_Model):
    id: str | None = None
    api: Literal["v1", "v2"]
    specHash: str
    status: str | None = None  # last observed live status
    observedAt: datetime | None = None
    restarts: int = 0
    onRemove: Literal["forget", "stop"] = "forget"  # the manifest's policy, for when it is gone
    # Paths in the create body ("description" for the description) whose values were ever
    # sensitive for this request: masked in every output until the live value changes, even once
    # the manifest stops referencing a secret there (DESIGN §4). Paths only, never values.
    sensitivePaths: list[list[str | int]] | None = None
    # What the reconciler itself set in this request's body, by dotted path (a re-run's
    # skipExisting and delivery path): applied to the manifest's body before comparing.
    overrides: dict[str, Any] | None = None
    # Requests this one replaced (re-runs, replacements), newest last: they still carry the
    # marker until the service deletes them, and are predecessors, not duplicates.
    previous: list[str] | None = None
    intent: Intent | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def masked(self) -> frozenset[tuple]:
        return frozenset(tuple(path) for path in self.sensitivePaths or ())

    @staticmethod
    def paths(masked: frozenset[tuple]) -> list[list[str | int]] | None:
        """`sensitivePaths` as recorded: sorted, and absent when there are none."""
        return sorted((list(path) for path in masked), key=str) or None

    def with_event(self, entry: HistoryEntry | None) -> JobState:
        if entry is None:
            return self
        return self.model_copy(update={"history": [*self.history, entry][-HISTORY_LIMIT:]})


class Lockfile(_Model):
    version: int = CURRENT_VERSION
    lineage: str = Field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    journalSeq: int = 0  # the last journal entry folded in (see reconciler.state.journal)
    jobs: dict[str, JobState] = Field(default_factory=dict)
