"""Apply: execute exactly the actions of a plan (calls to the Batch API, and the lockfile's
journal), recording each step as it happens, so a crash at any point loses nothing and duplicates
nothing. Before it sends a body or a description it checks it against the plan's digest of it.

A create records its intent first; if the answer to the create is lost (CreateOutcomeUnknown)
the request is looked up by its ownership marker, never posted again blindly. Actions of one job
run in order; jobs run in parallel (bounded). A failed action is recorded and reported, and the
others go on. The lease is checked before every step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from reconciler.api.errors import ApiError, BadRequest, CreateOutcomeUnknown, NotFound
from reconciler.api.jobs import JobsApi
from reconciler.batch import ApiVersion
from reconciler.batch.live import LiveJob
from reconciler.batch.statuses import STOP_TOOK_EFFECT, TERMINAL, Status, start_took_effect
from reconciler.engine.actions import Action, Kind, Plan, Step
from reconciler.engine.identity import marker, owner, with_marker
from reconciler.engine.payload import create_body, sent_digest
from reconciler.engine.rerun import sent_overrides
from reconciler.errors import LeaseLost, ReconcilerError
from reconciler.manifests.manifest import Manifest
from reconciler.redaction import from_service
from reconciler.state.model import PREVIOUS_LIMIT, HistoryEntry, Intent, JobState
from reconciler.state.statefile import Journal


@dataclass
class ActionResult:
    action: Action
    ok: bool
    message: str
    job_id: str | None = None
    pending: bool = False  # a step left for later (e.g. a start waiting for the service's estimate)


@dataclass(frozen=True)
class Outcome:
    """How an apply ended, for its one summary and its exit code (the README's exit codes): 1 when an action
    failed or was blocked, or (with --wait) a job did not reach its spec.state. An action whose
    steps ran but whose start waits for the service's estimate is done, and also counted deferred."""

    done: tuple[ActionResult, ...]  # every action that ran without error, those with a deferred start included
    failed: tuple[ActionResult, ...]
    deferred: tuple[ActionResult, ...]  # those of `done` with a step left for a later run (a start waiting for the estimate)
    blocked: tuple[Action, ...]
    behind: tuple[str, ...]  # names that did not reach their spec.state (with --wait)

    @classmethod
    def of(cls, plan: Plan, results: list[ActionResult], behind: tuple[str, ...] = ()) -> Outcome:
        return cls(tuple(r for r in results if r.ok), tuple(r for r in results if not r.ok),
                   tuple(r for r in results if r.ok and r.pending), tuple(a for a in plan.actions if a.kind is Kind.BLOCKED),
                   tuple(behind))

    @property
    def complete(self) -> bool:
        return not (self.failed or self.blocked or self.behind)

    @property
    def verdict(self) -> str:
        """One word for the run, the most serious that holds: failed, blocked, behind, deferred, done."""
        return next((word for word, holds in (("failed", self.failed), ("blocked", self.blocked),
                                              ("behind", self.behind), ("deferred", self.deferred)) if holds), "done")

    @property
    def exit_code(self) -> int:
        return 0 if self.complete else 1


@dataclass
class Context:
    apis: Mapping[ApiVersion, JobsApi]
    journal: Journal
    manifests: Mapping[str, Manifest]
    who: str
    revision: str | None
    check_lease: Callable[[], None]
    wait: bool = False
    timeout: float = 3600.0
    poll_seconds: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    seal: bytes = field(default=b"", repr=False)  # the plan's digest key: `sends` is checked with it (engine.payload)
    files: Mapping[str, str] = field(default_factory=dict)  # name → its manifest file, as the lockfile records it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, job: JobState | None, action: str, result: str, request_id: str | None = None,
               detail: str | None = None) -> None:
        with self.lock:
            self.journal.record(name, job, self._event(action, result, request_id, detail))

    def note(self, name: str, job: JobState, action: str, result: str, request_id: str | None = None) -> None:
        """Record an observation with the run's final lockfile write instead of an object of its own."""
        with self.lock:
            self.journal.note(name, job, self._event(action, result, request_id))

    def _event(self, action: str, result: str, request_id: str | None, detail: str | None = None) -> HistoryEntry:
        # results quote the service's errors: stored with every known secret hidden, and bounded
        return HistoryEntry(at=_now(), who=self.who, action=action, result=from_service(result), requestId=request_id,
                            revision=self.revision, detail=from_service(detail))

    def current(self, name: str) -> JobState | None:
        with self.lock:
            return self.journal.view.jobs.get(name)


def execute(plan: Plan, context: Context, parallelism: int = 4) -> list[ActionResult]:
    """Run the plan's changing actions; each job's actions in order, jobs `parallelism` at a time."""
    by_name: dict[str, list[Action]] = {}
    for action in plan.changes:
        by_name.setdefault(action.name, []).append(action)
    results: list[ActionResult] = []
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply") as pool:
        for outcome in pool.map(lambda actions: _run_job(actions, context), by_name.values()):
            results += outcome
    return sorted(results, key=lambda r: r.action.sort_key())


def _run_job(actions: list[Action], context: Context) -> list[ActionResult]:
    results = []
    for action in actions:
        result = _Step(action, context).run()
        results.append(result)
        if not result.ok:
            break  # the job's later actions assumed this one worked
    return results


T = TypeVar("T")
REPLICA_LAG = 30.0  # seconds a request just created may still answer 404 (the service's read replicas lag)


class _Step:
    def __init__(self, action: Action, context: Context):
        self.action, self.context = action, context
        self.api = context.apis[action.api]
        self.job_id = action.job_id
        self.created_at: float | None = None  # when this action created self.job_id (clock time)
        self.pending = False

    def run(self) -> ActionResult:
        done: list[str] = []
        try:
            for step in self.action.steps:
                self.context.check_lease()
                _STEPS[step](self)
                done.append(str(step))
        except LeaseLost:
            raise  # another run may hold the lease: record nothing more, start nothing more
        except (ApiError, ReconcilerError) as e:
            self.context.record(self.action.name, None, "/".join(map(str, self.action.steps)), f"failed: {e.message}",
                                self.job_id)
            return ActionResult(self.action, False, f"{e.message}", self.job_id)
        message = "pending: " + ", ".join(done) if self.pending else ", ".join(done)
        return ActionResult(self.action, True, message, self.job_id, self.pending)

    # -- steps ----------------------------------------------------------------------------------

    def _adopt(self) -> None:
        manifest = self.context.manifests[self.action.name]
        previous = self.context.current(self.action.name)
        masked = manifest.sent_sensitive | (previous.masked if previous and previous.id == self.job_id else frozenset())
        job = JobState(id=self.job_id, api=self.action.api, specHash=self.action.spec_hash or "",
                       status=self.action.live_status, observedAt=_now(), restarts=previous.restarts if previous else 0,
                       onRemove=manifest.policy.on_remove, sensitivePaths=JobState.paths(masked),
                       file=self.context.files.get(self.action.name))
        self.context.record(self.action.name, job, "adopt", "ok", self.job_id, "found by its ownership marker")

    def _forget(self) -> None:
        with self.context.lock:
            self.context.journal.remove(self.action.name)

    def _stop(self) -> None:
        self._act(self.api.stop, _stopped)
        self._status("stop", Status.STOPPED if self.action.api == "v2" else Status.CANCELED)

    def _stop_old(self) -> None:
        """A replacement's old request, stopped once its successor exists (the record is the new one's now)."""
        old = self.action.job_id
        self._act(self.api.stop, _stopped, old)
        self.context.record(self.action.name, None, "stop", "ok", old, f"replaced by {self.job_id}")

    def _create(self) -> None:
        name, manifest = self.action.name, self.context.manifests[self.action.name]
        previous = self.context.current(name)
        body = _checked(self.action, manifest, create_body(manifest.body, manifest.description, name,
                                                           sent_overrides(manifest.body, self.action.rerun_of)),
                        self.context.seal)
        old = self.job_id or (previous.id if previous else None)  # what this create replaces, if anything
        predecessors = [*(previous.previous or [] if previous else []), *([old] if old else [])][-PREVIOUS_LIMIT:]
        assert self.action.spec_hash is not None  # a create is planned from a manifest, whose spec hash it carries
        base = previous or JobState(api=self.action.api, specHash=self.action.spec_hash, file=self.context.files.get(name))
        intent = Intent(action="create", at=_now(), who=self.context.who, marker=marker(name),
                        specHash=self.action.spec_hash)
        self.context.record(name, replace(base, intent=intent), "create", "intent", None)
        live: LiveJob | None
        try:
            live, how = self.api.create(body), "ok"
        except CreateOutcomeUnknown as e:
            live, how = self._find_created(name, exclude=set(predecessors)), "ok (answer lost; found by its marker)"
            if live is None:
                raise ReconcilerError(f"the create's outcome is unknown ({e.message}) and no request carries the marker yet",
                                      "the next run looks for it by its marker before creating anything") from None
        restarts = (previous.restarts if previous else 0) + bool(self.action.rerun_of)  # a re-run counts
        job = JobState(id=live.id, api=self.action.api, specHash=self.action.spec_hash, status=live.status,
                       observedAt=_now(), restarts=restarts, onRemove=manifest.policy.on_remove,
                       sensitivePaths=JobState.paths(manifest.sent_sensitive), rerunOf=self.action.rerun_of,
                       previous=predecessors or None, file=self.context.files.get(name))
        self.context.record(name, job, "create", how, live.id, f"replaces {old}" if old else None)
        self.job_id, self.created_at = live.id, self.context.clock()

    def _find_created(self, name: str, exclude: set[str]) -> LiveJob | None:
        for attempt in range(5):
            found = [j for j in self.api.list_jobs() if owner(j.description) == name and j.id not in exclude]
            if found:
                return max(found, key=lambda j: (j.created is not None, j.created))
            self.context.sleep(min(2.0, 0.2 * 2**attempt))
        return None

    def _update(self) -> None:
        manifest = self.context.manifests[self.action.name]
        description = _checked(self.action, manifest, with_marker(manifest.description, self.action.name),
                               self.context.seal)
        self.api.update_description(self._live_id(), description)
        # the live description is now the manifest's: it is sensitive exactly when the manifest's is
        previous = self.context.current(self.action.name)
        kept = (previous.masked if previous else frozenset()) - {("description",)}
        self._status("update", None, masked=kept | (manifest.sent_sensitive & {("description",)}))

    def _analyse(self) -> None:
        self._act(self.api.analyse, lambda job: job.status != Status.CREATED)
        self._status("analyse", Status.ANALYSING)

    def _start(self) -> None:
        self._act(self.api.start, lambda job: start_took_effect(job.status, job.user_action))
        self._status("start", Status.PROCESSING)

    def _restart(self) -> None:
        self._act(self.api.restart, lambda job: job.status != Status.PARTIAL)
        previous = self.context.current(self.action.name)
        self._status("restart", Status.PROCESSING, restarts=(previous.restarts if previous else 0) + 1)

    def _act(self, call: Callable[[str], None], took_effect: Callable[[LiveJob], bool], job_id: str | None = None) -> None:
        """Call an action; a 400 "does not fit the status" after a retry may mean the first try took
        effect and only its answer was lost: look at the job before calling it a failure."""
        job_id = job_id or self._live_id()
        try:
            self._settled(lambda: call(job_id), job_id)
        except BadRequest:
            if not took_effect(self._settled(lambda: self.api.get(job_id), job_id)):
                raise

    def _live_id(self) -> str:
        """The request this step acts on: the action's, or the one the action's create made."""
        assert self.job_id is not None  # only a create has no request yet, and it runs first
        return self.job_id

    def _settled(self, attempt: Callable[[], T], job_id: str) -> T:
        """`attempt()`, tried again while a request this action has just created still answers 404
        (read replicas lag behind a create), for up to REPLICA_LAG seconds; never a second create."""
        delay = 0.25
        while True:
            try:
                return attempt()
            except NotFound:
                created_at = self.created_at if job_id == self.job_id else None  # None: not created by this action
                if created_at is None or self.context.clock() - created_at > REPLICA_LAG:
                    raise
            self.context.sleep(delay)
            delay = min(delay * 2, 4.0)

    def _start_within_budget(self) -> None:
        """Start once the service's own estimate is known and within maxCostPU (only with --wait)."""
        if not self.context.wait:
            self.pending = True
            self.context.record(self.action.name, None, "start", "pending: waits for the service's estimate",
                                self.job_id)
            return
        live = self._await({Status.ANALYSIS_DONE, *TERMINAL})
        budget = self.context.manifests[self.action.name].policy.max_cost_pu
        if live.status != Status.ANALYSIS_DONE:
            raise ReconcilerError(f"analysis ended {live.status}" + (f": {live.error}" if live.error else ""))
        if budget is not None and live.cost_pu is not None and live.cost_pu > budget:
            raise ReconcilerError(f"the service estimates {live.cost_pu:,.1f} PU, over maxCostPU {budget:,.1f}: not started")
        self._start()

    def _await(self, statuses: set[str]) -> LiveJob:
        deadline = self.context.clock() + self.context.timeout
        job_id = self._live_id()
        while True:
            self.context.check_lease()
            live = self._settled(lambda: self.api.get(job_id), job_id)
            if live.status in statuses:
                return live
            if self.context.clock() > deadline:
                raise ReconcilerError(f"timed out waiting for {self.job_id} (still {live.status})")
            self.context.sleep(self.context.poll_seconds)

    def _status(self, step: str, status: str | None, restarts: int | None = None,
                masked: frozenset[tuple] | None = None) -> None:
        previous = self.context.current(self.action.name)
        job = None
        if previous is not None:
            update: dict[str, Any] = {"observedAt": _now()}
            if status:
                update["status"] = status
            if restarts is not None:
                update["restarts"] = restarts
            if masked is not None:
                update["sensitivePaths"] = JobState.paths(masked)
            job = replace(previous, **update)
        self.context.record(self.action.name, job, step, "ok", self.job_id)


Sent = TypeVar("Sent", dict[str, Any], str)  # a create body, or a description


def _checked(action: Action, manifest: Manifest, sent: Sent, key: bytes) -> Sent:
    """`sent`, if it is what the plan's action said apply would send (engine.payload): secrets too."""
    if sent_digest(sent, manifest.sent_sensitive, key) != action.sends:
        raise ReconcilerError(f"what {action.name} would send is not what the plan showed (the manifest changed since)",
                              "make a new plan")
    return sent


def _stopped(job: LiveJob) -> bool:
    return job.status in STOP_TOOK_EFFECT


_STEPS: dict[Step, Callable[[_Step], None]] = {
    Step.ADOPT: _Step._adopt, Step.FORGET: _Step._forget, Step.CREATE: _Step._create, Step.UPDATE: _Step._update,
    Step.ANALYSE: _Step._analyse, Step.START: _Step._start, Step.START_WITHIN_BUDGET: _Step._start_within_budget,
    Step.RESTART: _Step._restart, Step.STOP: _Step._stop, Step.STOP_OLD: _Step._stop_old,
}


def _now() -> datetime:
    return datetime.now(UTC)
