"""Plan: a pure function of (manifests, live jobs, lockfile, options) → actions (README, "How plan decides").

For each name: a removed manifest is forgotten (or stopped, as its `onRemove` said); a missing
live job is created — unless it finished before the service deleted it as stale (never pay
twice); a changed request is blocked unless replacement is allowed; a changed description is
updated in place (deferred while processing); then `spec.state` drives the lifecycle, with
`maxCostPU` checked against the service's figure when there is one and the offline estimate
otherwise, and PARTIAL v1 jobs restarted within `maxRestarts`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.batch.live import LiveJob
from reconciler.batch.statuses import FINISHED, KNOWN, NEVER_STARTED, RUNNING, Status, UserAction
from reconciler.canonical import canonical
from reconciler.engine.actions import Action, JobCard, Kind, Plan, Step, Unmanaged
from reconciler.engine.diff import FieldChange, changes
from reconciler.engine.identity import with_marker, without_marker
from reconciler.engine.pairing import Matched, Missing, Pair, Removed, pair
from reconciler.engine.payload import Overrides, create_body, keyed_list, sent_digest
from reconciler.engine.reduce import desired, hidden_for, live_digest
from reconciler.engine.rerun import remaining, rerun_overrides, sent_overrides, shown
from reconciler.manifests.manifest import Manifest
from reconciler.redaction import SENSITIVE, KeyPath, digest_of, from_service
from reconciler.state.model import JobState, Lockfile

Estimate = Callable[[Manifest], float | None]  # the offline PU estimate of a manifest, or None
Card = Callable[[Manifest, Overrides], JobCard | None]  # the job card of a manifest sent with overrides
Seen = tuple[str, str, str, str | None, str]  # name, id, status, description, request digest of a live job


@dataclass(frozen=True)
class PlanOptions:
    allow_replace: bool = False
    targets: frozenset[str] | None = None  # names; None = all
    key: bytes = field(default=b"", repr=False)  # keys every digest the plan publishes (engine.payload.keyed)
    # The manifest files this run covers, as repository-relative POSIX paths (files or folders;
    # "." is all of it); None: every recorded job is in scope. A job whose manifest is gone is
    # removed only when the lockfile recorded it from a file inside the scope (README, "Scope").
    scope: tuple[str, ...] | None = None


def plan(manifests: Iterable[Manifest], live: Iterable[LiveJob], lockfile: Lockfile, options: PlanOptions,
         estimate: Estimate = lambda m: None, card: Card = lambda m, overrides: None) -> Plan:
    """`estimate` gives the offline PU estimate of a manifest (reconciler.geo), or None; `card`
    the job card of a manifest sent with an action's overrides (engine.estimate), carried by each
    create and replace."""
    pairing = pair(manifests, live, lockfile.jobs, set(options.targets) if options.targets is not None else None)
    pairs = [p for p in pairing.pairs if not isinstance(p, Removed) or in_scope(p.record, options.scope)]
    outside = tuple(sorted(p.name for p in pairing.pairs if isinstance(p, Removed)
                           and not in_scope(p.record, options.scope)))
    actions: list[Action] = []
    seen: list[Seen] = []  # what the plan's decisions rest on: the fingerprint
    for p in pairs:
        hidden = masked(p)
        if isinstance(p, Removed):
            actions.append(_removed(p))
            if p.live is not None:
                seen.append(_seen(p.name, p.live, hidden, live_digest(p.live, hidden)))
        elif isinstance(p, Missing):
            actions.append(_with_card(_with_sends(_missing(p, _base(p), options, estimate), p.manifest, options.key),
                                      p.manifest, card))
        else:
            digest = live_digest(p.live, hidden)  # once per job: for its decision and the fingerprint
            actions += [_with_card(_with_sends(a, p.manifest, options.key), p.manifest, card)
                        for a in _matched(p, hidden, digest, options, estimate)]
            seen.append(_seen(p.name, p.live, hidden, digest))
    warnings = [f"{p.name}: more than one live request carries its marker ({', '.join(d.id for d in p.duplicates)}); "
                f"using {p.live.id}" for p in pairs if not isinstance(p, Missing) and p.duplicates and p.live]
    unmanaged = [Unmanaged(j.id, j.api, j.status, from_service(j.description) or "") for j in pairing.unmanaged]
    unmanaged += [Unmanaged(j.id, j.api, j.status, from_service(j.description) or "", "marked for a name no manifest has")
                  for j in pairing.foreign]
    return Plan(tuple(sorted(actions, key=Action.sort_key)), lockfile.lineage, lockfile.serial,
                keyed_list(options.key, sorted(seen)), tuple(sorted(unmanaged, key=lambda u: u.id)), tuple(warnings),
                outside)


def _seen(name: str, live: LiveJob, hidden: frozenset[KeyPath], digest: str) -> Seen:
    description = live.description if ("description",) not in hidden else digest_of(live.description)
    return (name, live.id, live.status, description, digest)


def in_scope(record: JobState | None, scope: tuple[str, ...] | None) -> bool:
    """Whether a recorded job's manifest file lies inside the scope. A record that names no file
    (written before files were recorded) is never in a given scope: it is not removed on a guess."""
    if scope is None:
        return True
    file = record.file if record is not None else None
    return file is not None and any(p == "." or file == p or file.startswith(p.rstrip("/") + "/") for p in scope)


def masked(p: Pair) -> frozenset[KeyPath]:
    """The paths of what is sent hidden for this job (engine.reduce.hidden_for)."""
    if isinstance(p, Missing):
        return p.manifest.sent_sensitive
    return hidden_for(None if isinstance(p, Removed) else p.manifest, p.record, p.live.id) if p.live else frozenset()


@functools.lru_cache(maxsize=256)
def _said(reason: str) -> tuple[str]:
    """The reasons of an action that says one thing about a job the plan leaves as it is. Tens of
    thousands of such jobs say the same few things ("DONE matches spec.state: started"): equal
    reasons are one tuple, not one each (a pure function of its text, so sharing changes nothing)."""
    return (reason,)


def _base(p: Missing | Matched) -> Action:
    m, live = p.manifest, (p.live if isinstance(p, Matched) else None)
    return Action(Kind.NOOP, p.name, m.api, live.id if live else None, (), live_status=live.status if live else None,
                  desired_state=m.state, spec_hash=m.desired[1])


def _matched(p: Matched, hidden: frozenset[KeyPath], digest: str, options: PlanOptions,
             estimate: Estimate) -> list[Action]:
    m, base = p.manifest, _base(p)
    want = desired(m, p.record, p.live.id, hidden)
    out = []
    if p.found_by_marker:
        out.append(replace(base, kind=Kind.ADOPT, steps=(Step.ADOPT,), reasons=("found by its ownership marker",)))
    diff = () if digest == want.digest else changes(canonical(want.body, want.sensitive),
                                                         canonical(p.live.body, want.sensitive))
    if diff or p.live.api != m.api:
        return out + [_spec_changed(p, base, diff, options, estimate)]
    wanted = with_marker(m.description, p.name)
    if p.live.description != wanted:
        out.append(_description(p, base, wanted, ("description",) in hidden))
    lifecycle = _lifecycle(p, base, estimate)
    if lifecycle.kind is Kind.WAIT and out and out[-1].kind is Kind.WAIT:  # one job waits once
        out[-1] = replace(out[-1], reasons=(*out[-1].reasons, *lifecycle.reasons))
    else:
        out.append(lifecycle)
    return [a for a in out if a.kind is not Kind.NOOP] or [out[-1]]


def _with_sends(action: Action, m: Manifest, key: bytes) -> Action:
    """The action with the digest of what apply will send for it (engine.payload)."""
    sent: dict[str, Any] | str  # a create body, or a description
    if Step.CREATE in action.steps:
        sent = create_body(m.body, m.description, m.name, sent_overrides(m.body, action.rerun_of))
    elif Step.UPDATE in action.steps:
        sent = with_marker(m.description, m.name)
    else:
        return action
    return replace(action, sends=sent_digest(sent, m.sent_sensitive, key))


def _with_card(action: Action, m: Manifest, card: Card) -> Action:
    """A create or replace with the card of what it runs, and one that policy blocks with the card
    of what it would have run (the reviewer sees what the figure is for); others run nothing new."""
    if action.kind not in NEW_JOB and action.refused not in NEW_JOB:
        return action
    return replace(action, card=card(m, sent_overrides(m.body, action.rerun_of)))


NEW_JOB = (Kind.CREATE, Kind.REPLACE)


def _removed(p: Removed) -> Action:
    record = p.record
    base = Action(Kind.FORGET, p.name, record.api, p.live.id if p.live else None, (), steps=(Step.FORGET,),
                  live_status=p.live.status if p.live else None)
    if p.live is None:
        return replace(base, reasons=("the manifest is gone and so is the request",))
    if record.onRemove == "stop" and p.live.status in RUNNING:
        return replace(base, steps=(Step.STOP, Step.FORGET), reasons=("the manifest is gone; onRemove: stop",))
    return replace(base, reasons=(f"the manifest is gone; onRemove: {record.onRemove} (the request is left as it is)",))


def _missing(p: Missing, base: Action, options: PlanOptions, estimate: Estimate) -> Action:
    record, m = p.record, p.manifest
    if record is None or record.id is None:
        reason = "an earlier create did not reach the service" if record and record.intent else "new"
        return _create(m, base, (reason,), estimate)
    gone = f"request {record.id} is gone (last seen {record.status or 'never'})"
    if record.status in NEVER_STARTED:
        return _create(m, base, (f"{gone}: deleted by the service before it started",), estimate)
    changed = base.spec_hash != record.specHash
    if record.status in FINISHED and not (changed and _replace_allowed(m, options)):
        note = " (the manifest changed since: allow replacement to run it again)" if changed else ""
        return replace(base, reasons=(f"{gone}: it finished and the service deleted it as stale; "
                                      f"results stay in the bucket, it is not run again{note}",))
    if record.status == Status.FAILED and m.api == "v2" and record.restarts < m.policy.max_restarts:
        return _rerun(m, record, base, record.id, None, f"{gone}: it failed", Kind.CREATE, estimate)
    if changed and _replace_allowed(m, options):
        return _create(m, base, (f"{gone}; the manifest changed and replacement is allowed",), estimate)
    return replace(base, kind=Kind.BLOCKED, refused=Kind.CREATE, reasons=(
        f"{gone}; not created again automatically",
        "run `reconciler state rm` to forget it, or change the manifest and allow replacement"))


def _create(m: Manifest, base: Action, reasons: tuple[str, ...], estimate: Estimate) -> Action:
    cost = estimate(m)
    then = _then(m.state, m.policy.max_cost_pu)
    action = replace(base, kind=Kind.CREATE, job_id=None, steps=(Step.CREATE, *then), reasons=reasons,
                     cost_pu=cost, cost_source="estimate" if cost is not None else None)
    return _within_budget(action, m.policy.max_cost_pu, cost, "estimate") if then else action


def _then(state: str, max_cost: float | None) -> tuple[Step, ...]:
    if state == "analysed":
        return (Step.ANALYSE,)
    if state == "started":
        # with a budget, the service's own estimate must be known before paying
        return (Step.ANALYSE, Step.START_WITHIN_BUDGET) if max_cost is not None else (Step.START,)
    return ()


def _spec_changed(p: Matched, base: Action, diff: tuple[FieldChange, ...], options: PlanOptions,
                  estimate: Estimate) -> Action:
    reasons = ("the request changed; only the description can change in place",)
    if p.live.api != p.manifest.api:
        reasons = (f"the API version changed ({p.live.api} → {p.manifest.api})",)
    if not _replace_allowed(p.manifest, options):
        return replace(_create(p.manifest, base, reasons, estimate), kind=Kind.BLOCKED, refused=Kind.REPLACE,
                       steps=(), job_id=p.live.id, changes=diff,
                       reasons=(*reasons, "set onSpecChange: replace (or --allow-replace) to create a new request"))
    created = _create(p.manifest, base, reasons, estimate)
    if created.kind is Kind.BLOCKED:  # over budget: nothing happens, the old request included
        return replace(created, job_id=p.live.id, changes=diff, refused=Kind.REPLACE)
    # create first, then stop the old one, then start the new: if the create is refused, the old one keeps running
    stop_old = (Step.STOP_OLD,) if p.live.status in RUNNING or p.live.status == Status.ANALYSIS_DONE else ()
    create, *then = created.steps
    return replace(created, kind=Kind.REPLACE, job_id=p.live.id, changes=diff, steps=(create, *stop_old, *then),
                   reasons=(*created.reasons, f"the old request {p.live.id} is " +
                            ("stopped once the new one exists" if stop_old else "left as it is")))


def _replace_allowed(m: Manifest, options: PlanOptions) -> bool:
    return options.allow_replace or m.policy.on_spec_change == "replace"


def _description(p: Matched, base: Action, wanted: str, hidden: bool) -> Action:
    before, after = without_marker(p.live.description), p.manifest.description
    reason = "description changed" if before != after else "add the ownership marker"
    shown = (SENSITIVE, SENSITIVE) if hidden else (from_service(before), after)
    change = (FieldChange("description", *shown),) if before != after else ()
    busy = p.live.status == Status.PROCESSING or (p.live.status == Status.ANALYSING
                                                  and p.live.user_action == UserAction.START)
    if busy:
        return replace(base, kind=Kind.WAIT, changes=change,
                       reasons=(f"{reason}; deferred: the API refuses updates while a job is processing",))
    return replace(base, kind=Kind.UPDATE, steps=(Step.UPDATE,), changes=change, reasons=(reason,))


def _lifecycle(p: Matched, base: Action, estimate: Estimate) -> Action:
    status, state = p.live.status, p.manifest.state
    if status not in KNOWN:
        return replace(base, kind=Kind.WAIT, reasons=(f"status {status} is unknown to this version: doing nothing",))
    if status in RUNNING:
        if state == "stopped":
            return replace(base, kind=Kind.STOP, steps=(Step.STOP,), reasons=("spec.state: stopped",))
        if state == "started" or (state == "analysed" and status == Status.ANALYSING):
            return replace(base, kind=Kind.WAIT, reasons=_said(status.lower().replace("_", " ")))
        return replace(base, reasons=_said(f"{status} is already past spec.state: {state}"))
    if state == "analysed" and status == Status.CREATED:
        return replace(base, kind=Kind.ANALYSE, steps=(Step.ANALYSE,), reasons=("spec.state: analysed",))
    if state == "started":
        return _started(p, base, estimate)
    return replace(base, reasons=_said(f"{status} matches spec.state: {state}"))


def _started(p: Matched, base: Action, estimate: Estimate) -> Action:
    m, live, record = p.manifest, p.live, p.record
    status, budget = live.status, m.policy.max_cost_pu
    if status == Status.CREATED:
        then = _then("started", budget)
        cost = estimate(p.manifest)
        action = replace(base, kind=Kind.START if then == (Step.START,) else Kind.ANALYSE, steps=then,
                         reasons=("spec.state: started",), cost_pu=cost,
                         cost_source="estimate" if cost is not None else None)
        return _within_budget(action, budget, cost, "estimate")
    if status == Status.ANALYSIS_DONE or (status == Status.STOPPED and live.api == "v2"):
        figure, source, note = live.cost_pu, "service", " (resume)" if status == Status.STOPPED else ""
        if status == Status.STOPPED and live.completion:  # stopped while processing: what remains, not what was spent
            figure, source = remaining(estimate(p.manifest), live.completion), "estimate"
            note = f" (resume: {100 - live.completion:.0f}% of the tiles left)"
        action = replace(base, kind=Kind.START, steps=(Step.START,), cost_pu=figure,
                         cost_source=source if figure is not None else None, reasons=(f"spec.state: started{note}",))
        return _within_budget(action, budget, figure, f"{source} estimate")
    restarts = record.restarts if record else 0
    if status == Status.PARTIAL:
        if restarts < m.policy.max_restarts:
            cost = _failed_share(live)
            return replace(base, kind=Kind.RESTART, steps=(Step.RESTART,), cost_pu=cost,
                           cost_source="estimate" if cost is not None else None,
                           reasons=(f"PARTIAL: restart {restarts + 1} of {m.policy.max_restarts} (failed tiles only"
                                    + (f": {live.failed_tiles} of {live.tile_count})" if cost is not None else ")"),))
        return replace(base, kind=Kind.BLOCKED, reasons=(f"PARTIAL after {restarts} restart(s); maxRestarts is "
                                                         f"{m.policy.max_restarts}",))
    if status == Status.FAILED:
        if live.api == "v2" and restarts < m.policy.max_restarts:
            return _rerun(m, record, base, live.id, live.completion, f"FAILED: {live.error or 'no reason given'}",
                          Kind.REPLACE, estimate)
        return replace(base, kind=Kind.BLOCKED, reasons=(f"FAILED: {live.error or 'no reason given'}",
                                                         "raise maxRestarts (v2) or fix the cause and replace it"))
    if status == Status.CANCELED:
        return replace(base, kind=Kind.BLOCKED, reasons=("CANCELED: a v1 request cannot be resumed",))
    return replace(base, reasons=_said(f"{status}"))


def _rerun(m: Manifest, record: JobState | None, base: Action, failed_id: str, completion: float | None, head: str,
           kind: Kind, estimate: Estimate) -> Action:
    """A FAILED v2 job run again as a new request that skips the tiles done, where the failed run
    wrote them (engine.rerun): a `kind` REPLACE of the failed request, or a CREATE when the failed
    request is no longer listed (`head` says why)."""
    restarts = record.restarts if record else 0
    # the first run of a chain of re-runs wrote the tiles done: every re-run writes there
    written_by = record.rerunOf if record is not None and record.id == failed_id and record.rerunOf else failed_id
    overrides = rerun_overrides(m.body, written_by)
    if isinstance(overrides, str):
        return replace(base, kind=Kind.BLOCKED, refused=kind, reasons=(head, overrides, "fix the cause, then allow replacement"))
    cost = remaining(estimate(m), completion)
    left = "the tiles left are not known: it is gone" if completion is None else f"{100 - completion:.0f}% of the tiles left"
    action = replace(base, kind=kind, job_id=None if kind is Kind.CREATE else failed_id,
                     steps=(Step.CREATE, *_then("started", m.policy.max_cost_pu)),
                     overrides=shown(overrides, m.body_sensitive), rerun_of=written_by, cost_pu=cost,
                     cost_source="estimate" if cost is not None else None,
                     reasons=(head, f"re-run {restarts + 1} of {m.policy.max_restarts}: a new request that skips "
                                    f"the tiles done ({left})"))
    return _within_budget(action, m.policy.max_cost_pu, cost, "estimate")


def _failed_share(live: LiveJob) -> float | None:
    """A v1 restart re-processes the failed tiles only: their share of the service's estimate."""
    if live.cost_pu is None or not live.tile_count or live.failed_tiles is None:
        return None
    return round(live.cost_pu * live.failed_tiles / live.tile_count, 1)


def _within_budget(action: Action, budget: float | None, cost: float | None, what: str) -> Action:
    if budget is not None and cost is not None and cost > budget:
        return replace(action, kind=Kind.BLOCKED, refused=action.kind, steps=(),
                       reasons=(*action.reasons, f"{what} {cost:,.1f} PU exceeds maxCostPU {budget:,.1f}"))
    return action
