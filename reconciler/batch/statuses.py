"""The status vocabulary, in one place (STYLE rule 9): which live statuses are running, never
started, finished or settled, and what converged means for each `spec.state`. The values are the
Batch API's own, v1 and v2 together (BATCH_API.md); the planner, apply, `--wait` and `status` all
read them here. Pure."""

from __future__ import annotations

RUNNING = frozenset({"ANALYSING", "PROCESSING"})
NEVER_STARTED = frozenset({"CREATED", "ANALYSIS_DONE"})  # deleted as stale by the service: run it again
FINISHED = frozenset({"DONE", "PARTIAL"})  # deleted as stale by the service: never run again (pays twice)
# Nothing moves a job out of these without an action (STOPPED resumes on start, v2 only).
TERMINAL = frozenset({"DONE", "PARTIAL", "FAILED", "CANCELED", "STOPPED"})
KNOWN = RUNNING | NEVER_STARTED | TERMINAL
STOP_TOOK_EFFECT = TERMINAL  # a stop (v2) or cancel (v1) answered 400 because the job is already over
MISSING = "MISSING"  # a recorded job the listing does not show

# spec.state → the settled statuses that satisfy it (None: any, as long as the job exists)
_CONVERGED: dict[str, frozenset[str] | None] = {
    "created": None,
    "analysed": frozenset({"ANALYSIS_DONE", "PROCESSING", "DONE", "STOPPED"}),
    "started": frozenset({"DONE"}),
    "stopped": frozenset({"STOPPED", "CANCELED", "DONE", "PARTIAL", "FAILED", "ANALYSIS_DONE", "CREATED"}),
}


def settled(state: str, status: str) -> bool:
    """Whether nothing will move the job further without another run (waiting longer is useless)."""
    if state == "created":
        return True
    if state == "analysed":
        return status != "ANALYSING"
    return status not in RUNNING


def converged(state: str | None, status: str) -> bool:
    """Whether a settled job is where its manifest wants it."""
    wanted = _CONVERGED.get(state or "")
    return status != MISSING and (wanted is None or status in wanted)


def start_took_effect(status: str, user_action: str | None) -> bool:
    """A start answered 400 because it had already happened (its first answer was lost)."""
    return status in ("PROCESSING", "DONE", "PARTIAL", "FAILED") or user_action == "START"
