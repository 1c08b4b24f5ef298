"""The plan and apply operations, wiring refresh → plan → (lease → check → execute → record)
for the CLI. Rendering is passed in as callbacks: this module never prints."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.batch import ApiVersion
from reconciler.batch.live import LiveJob
from reconciler.engine.actions import Kind, Plan
from reconciler.engine.estimate import Estimator
from reconciler.engine.plan import PlanOptions, plan
from reconciler.errors import InvalidManifests, LeaseLost, ReconcilerError, UsageError
from reconciler.manifests.files import scope_of, source_of
from reconciler.manifests.loader import load
from reconciler.manifests.manifest import Manifest
from reconciler.operations import apply as applying
from reconciler.operations.live import JobProgress, Tracker, joined, recorded_jobs
from reconciler.operations.planfile import Options, PlanKeys, SavedPlan, published
from reconciler.operations.refresh import Refreshed, refresh
from reconciler.state.lease import whoami
from reconciler.state.operations import LeaseOptions, locked
from reconciler.state.statefile import StateFile


class StalePlan(ReconcilerError):
    """A saved plan whose lockfile or live jobs have changed since it was made."""


@dataclass(frozen=True)
class Selection:
    paths: tuple[str, ...] = ()
    targets: frozenset[str] | None = None
    selector: tuple[tuple[str, str], ...] = ()
    show_unmanaged: bool = False
    allow_replace: bool = False


@dataclass(frozen=True)
class ApplySettings:
    parallelism: int = 4
    wait: bool = False
    timeout: float = 3600.0
    poll_seconds: float = 1.0
    lease: LeaseOptions = LeaseOptions()


def load_manifests(selection: Selection, use_cache: bool = False) -> tuple[list[Manifest], frozenset[str] | None]:
    """The manifests (env resolved) and the names the run is limited to (targets ∩ selector).
    `use_cache` only for a plan that is shown, never for one that is applied (docs/security.md: caches)."""
    result = load(selection.paths, resolve_env=True, use_cache=use_cache)
    if result.errors:
        raise InvalidManifests(result.diagnostics)
    names: Set[str] | None = selection.targets
    if selection.selector:
        chosen = {m.name for m in result.manifests
                  if all(m.labels.get(k) == v for k, v in selection.selector)}
        names = chosen if names is None else names & chosen
    return result.manifests, (frozenset(names) if names is not None else None)


def options_of(selection: Selection, shard: str | None) -> Options:
    """The options a saved plan records, and an apply of it must be given (docs/plan-file.md)."""
    return Options(scope_of(selection.paths), shard, tuple(sorted(selection.targets)) if selection.targets else None,
                   tuple(sorted(f"{k}={v}" for k, v in selection.selector)), selection.allow_replace)


def make_plan(client: BatchClient, state: StateFile, manifests: list[Manifest], names: frozenset[str] | None,
              selection: Selection, keys: PlanKeys) -> tuple[Plan, Refreshed]:
    """Refresh and plan. Only the jobs recorded from files inside `selection.paths` may be removed."""
    refreshed = refresh(client, state, manifests, every=selection.show_unmanaged)
    known = {m.name for m in manifests} | set(refreshed.snapshot.lockfile.jobs)
    unknown = sorted(set(selection.targets or ()) - known)
    if unknown:
        raise ReconcilerError(f"--target {unknown[0]}: no manifest or lockfile record has that name",
                              "names: " + ", ".join(sorted(known)[:20]))
    estimator = Estimator()
    made = plan(manifests, refreshed.live, refreshed.snapshot.lockfile,
                PlanOptions(selection.allow_replace, names, keys.digests, scope_of(selection.paths)),
                estimator, estimator.card)
    return made, refreshed


def apply_fresh(client: BatchClient, state: StateFile, selection: Selection, settings: ApplySettings, keys: PlanKeys,
                show: Callable[[Plan], None], confirm: Callable[[Plan], bool],
                progress: Callable[[tuple[JobProgress, ...]], None]) -> tuple[Plan, list[applying.ActionResult], dict]:
    """Plan under the lease, show it, ask, execute it. Returns the plan, what each action did and,
    with `wait`, where each job settled: {name: (spec.state, status)}."""
    manifests, names = load_manifests(selection)
    with locked(state, "apply", settings.lease) as lease:
        made, refreshed = make_plan(client, state, manifests, names, selection, keys)
        show(made)
        if not made.changes and not settings.wait:
            _record_observed(client, state, refreshed, made, manifests, lease, keys)
            return made, [], {}
        if made.changes and not confirm(made):
            raise ReconcilerError("apply cancelled; nothing was changed")
        return (made, *_execute(client, state, refreshed, made, manifests, settings, lease, progress, keys))


def apply_saved(client: BatchClient, state: StateFile, saved: SavedPlan, selection: Selection, shard: str | None,
                settings: ApplySettings, keys: PlanKeys, show: Callable[[Plan], None],
                progress: Callable[[tuple[JobProgress, ...]], None]) -> tuple[Plan, list[applying.ActionResult], dict]:
    """Execute a saved plan (its signature already verified) if nothing it rests on has moved. The
    file carries no authority of its own (docs/plan-file.md): the options come from this command line
    (`selection`, `shard`) and must equal the recorded ones; the plan is made again from the
    manifests, the lockfile and the live jobs, and only when the fresh plan does what the saved one
    says is the fresh one executed (and shown)."""
    if differences := saved.options.differences(options_of(selection, shard)):
        raise UsageError("the saved plan was made with other options: " + "; ".join(differences),
                         "apply it with the options it was made with (`reconciler show FILE` prints them), "
                         "or make a new plan")
    manifests, names = load_manifests(selection)
    with locked(state, "apply", settings.lease) as lease:
        again, refreshed = make_plan(client, state, manifests, names, selection, keys)
        lockfile, snapshot = refreshed.snapshot.lockfile, refreshed.snapshot
        made_on_nothing = saved.plan.serial == 0 and saved.journal_seq == 0  # no lockfile existed: no lineage yet
        exists = snapshot.etag is not None or bool(snapshot.journal)
        if not made_on_nothing and lockfile.lineage != saved.plan.lineage:
            raise StalePlan("the saved plan belongs to another state (lineage differs)", "make a new plan")
        if (made_on_nothing and exists) or (snapshot.stored_serial, lockfile.journalSeq) != (saved.plan.serial, saved.journal_seq):
            raise StalePlan(f"the lockfile changed since the plan was made (serial {saved.plan.serial} → "
                            f"{refreshed.snapshot.stored_serial})", "make a new plan: `reconciler plan --out FILE`")
        if again.fingerprint != saved.plan.fingerprint:
            raise StalePlan("the live jobs changed since the plan was made", "make a new plan: `reconciler plan --out FILE`")
        if differences := plan_differences(saved.plan, published(again, keys)):
            raise StalePlan("the saved plan is not what the manifests, lockfile and live jobs give now: "
                            + "; ".join(differences[:3]) + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""),
                            "make a new plan and review it: `reconciler plan --out FILE`")
        show(again)
        return (again, *_execute(client, state, refreshed, again, manifests, settings, lease, progress, keys))


def plan_differences(saved: Plan, fresh: Plan) -> list[str]:
    """How the actions of a saved plan differ in substance from a fresh plan's, job by job."""
    mine: dict[str, list[tuple[object, ...]]] = {}
    for action in saved.actions:
        mine.setdefault(action.name, []).append(action.substance())
    theirs: dict[str, list[tuple[object, ...]]] = {}
    for action in fresh.actions:
        theirs.setdefault(action.name, []).append(action.substance())
    out = []
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) == theirs.get(name):
            continue
        if name not in theirs:
            out.append(f"{name}: only in the saved plan")
        elif name not in mine:
            out.append(f"{name}: not in the saved plan")
        else:
            words = lambda substance: "/".join(s[1].lower() for s in substance)  # noqa: E731
            same_kinds = words(mine[name]) == words(theirs[name])
            out.append(f"{name}: the saved plan's {words(mine[name])} differs in what it sends or acts on"
                       if same_kinds else f"{name}: saved {words(mine[name])}, now {words(theirs[name])}")
    return out


def _execute(client, state, refreshed, made: Plan, manifests, settings: ApplySettings, lease, progress, keys: PlanKeys):
    snapshot = state.compact(refreshed.snapshot)  # fold in what a crashed run left first
    journal = state.journal(snapshot)
    apis: dict[ApiVersion, JobsApi] = {api: JobsApi(client, api) for api in ("v1", "v2")}
    files = {m.name: source_of(m.file) for m in manifests}
    context = applying.Context(apis, journal, {m.name: m for m in manifests}, whoami(), revision(manifests), lease.check,
                               settings.wait, settings.timeout, settings.poll_seconds, seal=keys.digests, files=files)
    final: dict[str, tuple[str, str]] = {}
    lost = False
    try:
        results = applying.execute(made, context, settings.parallelism)
        if settings.wait:
            final = _wait(context, made, manifests, settings, progress)
        names = {a.name for a in made.actions} | set(refreshed.snapshot.lockfile.jobs)
        _observe(context, recorded_jobs(apis.values(), {name: context.current(name) for name in names}))
    except LeaseLost:
        # Another run may hold the lease now: folding this run's journal into the lockfile could
        # count that run's entries as folded. The entries stay for the next holder to fold in.
        lost = True
        raise
    finally:
        if not lost:
            journal.compact()
    return results, final


def _wait(context: applying.Context, made: Plan, manifests: list[Manifest], settings: ApplySettings,
          progress: Callable[[tuple[JobProgress, ...]], None]) -> dict[str, tuple[str, str]]:
    """Poll (one listing per version per round, plus a tile count per processing v1 job) until every
    job of the plan has settled, handing each round's `JobProgress` to `progress`. Every action has
    run by now (starts that waited for an estimate included): jobs only move on their own, so one
    that is not ANALYSING or PROCESSING is as far as this run takes it."""
    untouched = {a.name for a in made.actions if a.kind in (Kind.BLOCKED, Kind.FORGET)}
    acted = {a.name for a in made.actions} - untouched
    wanted = {m.name: m.state for m in manifests if m.name in acted}
    tracker = Tracker(context.apis, {m.name: m.body for m in manifests if m.name in wanted})
    deadline = time.monotonic() + settings.timeout
    while True:
        context.check_lease()
        jobs = recorded_jobs(context.apis.values(), {name: context.current(name) for name in wanted})
        rows = tuple(tracker.progress(name, wanted[name], jobs[name]) for name in sorted(wanted))
        progress(rows)
        if all(row.settled for row in rows):
            return {row.name: (wanted[row.name], row.status) for row in rows}
        if time.monotonic() > deadline:
            raise ReconcilerError(f"timed out after {settings.timeout:.0f}s waiting for the jobs to converge",
                                  "they go on running; `reconciler status` shows where they are")
        time.sleep(settings.poll_seconds)


def _observe(context: applying.Context, jobs: dict[str, LiveJob | None]) -> None:
    """Record the status each managed job has now (stale-deletion decisions rest on it), and the
    manifest file that declares it (a job's scope), with the final lockfile write: one write for all."""
    for name, job in sorted(jobs.items()):
        record = context.current(name)
        if record is None:
            continue
        update: dict = {}
        if job is not None and job.status != record.status:
            update = {"status": job.status, "observedAt": datetime.now(UTC)}
        if (file := context.files.get(name)) is not None and file != record.file:
            update["file"] = file
        if update:
            context.note(name, replace(record, **update), "observe", update.get("status", "declared in " + str(file)),
                         job.id if job is not None else record.id)


def _record_observed(client, state, refreshed: Refreshed, made: Plan, manifests, lease, keys: PlanKeys) -> None:
    """With nothing to do, still record statuses that moved (from the listing the plan was made on)
    and manifest files that records do not name yet."""
    records = refreshed.snapshot.lockfile.jobs
    moved = any(job is not None and job.status != records[name].status for name, job in joined(refreshed.live, records).items())
    if moved or any(m.name in records and records[m.name].file != source_of(m.file) for m in manifests):
        _execute(client, state, refreshed, replace(made, actions=()), manifests, ApplySettings(), lease, lambda s: None,
                 keys)


def revision(manifests: Sequence[Manifest]) -> str | None:
    """The git commit the manifests sit at (like Flux's lastAppliedRevision), if in a work tree."""
    if not manifests:
        return None
    folder = Path(manifests[0].file).resolve().parent
    try:
        answer = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip() or None if answer.returncode == 0 else None




@dataclass(frozen=True)
class Reconciled:
    plan: Plan
    results: tuple[applying.ActionResult, ...]
    deferred: tuple  # actions that need review (or that policy blocks): reported, not done
    final: dict


def reconcile(client: BatchClient, state: StateFile, selection: Selection, settings: ApplySettings, detect_only: bool,
              keys: PlanKeys, show: Callable[[Plan], None],
              progress: Callable[[tuple[JobProgress, ...]], None]) -> Reconciled:
    """Refresh and plan; unless `detect_only`, apply the actions that need no review."""
    manifests, names = load_manifests(selection)
    if detect_only:
        made, _ = make_plan(client, state, manifests, names, selection, keys)
        show(made)
        return Reconciled(made, (), tuple(a for a in made.actions if a.kind.changes or a.kind is Kind.BLOCKED), {})
    with locked(state, "reconcile", settings.lease) as lease:
        made, refreshed = make_plan(client, state, manifests, names, selection, keys)
        show(made)
        # what a scheduled run may do on its own (Kind facts: the manifests were reviewed when they merged,
        # so moving jobs along their lifecycle is expected; creating, replacing or forgetting waits for a human)
        automatic = tuple(a for a in made.actions if a.kind.value.unattended)
        deferred = tuple(a for a in made.actions if (a.kind.changes and not a.kind.value.unattended)
                         or a.kind is Kind.BLOCKED)
        results, final = _execute(client, state, refreshed, replace(made, actions=automatic), manifests, settings, lease,
                                  progress, keys)
    return Reconciled(made, tuple(results), deferred, final)
