"""The status vocabulary, in one place (docs/architecture.md, rule 9): the statuses a live job can
have (v1 and v2 together, the service's own values: docs/api-facts.md), which of them are running,
never started, finished or settled, and what converged means for each `spec.state`. The planner,
apply, `--wait`, `status` and the sandbox all read them here. Pure.

`Status` is a str enum: a member equals the service's string, so a job's status as the service sent
it (a plain string, possibly one this version does not know) compares with the members directly."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CREATED = "CREATED"
    ANALYSING = "ANALYSING"
    ANALYSIS_DONE = "ANALYSIS_DONE"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"  # v2: stopped by a user (resumes on start) or by the service
    PARTIAL = "PARTIAL"  # v1: some tiles failed; restartpartial processes them again
    CANCELED = "CANCELED"  # v1: stopped for good


class UserAction(StrEnum):
    """The last action a user asked for, as the service reports it (`userAction`)."""

    NONE = "NONE"
    ANALYSE = "ANALYSE"
    START = "START"
    STOP = "STOP"  # v2
    CANCEL = "CANCEL"  # v1


RUNNING = frozenset({Status.ANALYSING, Status.PROCESSING})
NEVER_STARTED = frozenset({Status.CREATED, Status.ANALYSIS_DONE})  # deleted as stale by the service: run it again
FINISHED = frozenset({Status.DONE, Status.PARTIAL})  # deleted as stale by the service: never run again (pays twice)
# Nothing moves a job out of these without an action (STOPPED resumes on start, v2 only).
TERMINAL = frozenset({Status.DONE, Status.PARTIAL, Status.FAILED, Status.CANCELED, Status.STOPPED})
KNOWN = RUNNING | NEVER_STARTED | TERMINAL
STOP_TOOK_EFFECT = TERMINAL  # a stop (v2) or cancel (v1) answered 400 because the job is already over
STARTED = frozenset({Status.PROCESSING, Status.DONE, Status.PARTIAL, Status.FAILED})  # a start happened
# What the views say in place of a status where there is no live job (not the service's values):
MISSING = "MISSING"  # a recorded job the listing does not show (--wait)
GONE = "GONE"  # a recorded job the service no longer lists (status)
NOT_CREATED = "NOT CREATED"  # a manifest whose job was never created (status)

# spec.state → the settled statuses that satisfy it (None: any, as long as the job exists)
_CONVERGED: dict[str, frozenset[Status] | None] = {
    "created": None,
    "analysed": frozenset({Status.ANALYSIS_DONE, Status.PROCESSING, Status.DONE, Status.STOPPED}),
    "started": frozenset({Status.DONE}),
    "stopped": frozenset({Status.STOPPED, Status.CANCELED, Status.DONE, Status.PARTIAL, Status.FAILED,
                          Status.ANALYSIS_DONE, Status.CREATED}),
}


def settled(state: str, status: str) -> bool:
    """Whether nothing will move the job further without another run (waiting longer is useless)."""
    if state == "created":
        return True
    if state == "analysed":
        return status != Status.ANALYSING
    return status not in RUNNING


def converged(state: str | None, status: str) -> bool:
    """Whether a settled job is where its manifest wants it."""
    wanted = _CONVERGED.get(state or "")
    return status != MISSING and (wanted is None or status in wanted)


def start_took_effect(status: str, user_action: str | None) -> bool:
    """A start answered 400 because it had already happened (its first answer was lost)."""
    return status in STARTED or user_action == UserAction.START
