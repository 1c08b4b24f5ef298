"""Commands that talk to the Batch API: plan, apply, status, import, grids; and show, which
displays a saved plan without talking to anyone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from reconciler.cli.base import (
    ALLOW_REPLACE,
    FORMAT,
    LEASE_TTL,
    LOCK_TIMEOUT,
    PATHS,
    POLL_INTERVAL,
    SELECTOR,
    SHARD,
    STATE,
    TARGET,
    Duration,
    ci_run_url,
    cli,
    for_each,
    lease_options,
    lockfile_at,
    plan_keys,
    selection_of,
    service_settings,
    units_of,
)


@cli.command()
@PATHS
@STATE
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=str), help="Save the plan for `apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 without changes, 2 with changes, 4 when policy blocks something (a pull request's "
                   "check fails on it), 1 on error.")
@click.option("--show-unmanaged", is_flag=True, help="Also list live jobs the reconciler does not manage.")
@TARGET
@SELECTOR
@ALLOW_REPLACE
@SHARD
def plan(paths, state_location, out_file, fmt, detailed_exitcode, show_unmanaged, targets, selectors,
         allow_replace, shards) -> int:
    """Show what apply would change, with the cost, without changing anything."""
    from reconciler.api.client import BatchClient
    from reconciler.errors import UsageError
    from reconciler.operations.planfile import SavedPlan, published, save
    from reconciler.operations.run import load_manifests, make_plan, options_of, revision
    from reconciler.render.plan import show_plan

    units = units_of(paths, state_location, shards)
    if out_file and len(units) > 1:
        raise UsageError("--out saves the plan of one shard", "add --shard NAME")

    def one(unit) -> int:
        selection = selection_of(unit.paths, targets, selectors, show_unmanaged, allow_replace)
        manifests, names = load_manifests(selection, use_cache=True)
        state_file = lockfile_at(unit.state)
        api = service_settings()
        keys = plan_keys(api.client_secret)
        with BatchClient(api) as client:
            made, refreshed = make_plan(client, state_file, manifests, names, selection, keys)
        made = published(made, keys)  # every view shows the digests a saved plan holds
        saved = SavedPlan(made, options_of(selection, unit.shard), refreshed.snapshot.lockfile.journalSeq,
                          revision(manifests)) if out_file else None
        show_plan(made, fmt, show_unmanaged=show_unmanaged, saved=saved, run_url=ci_run_url())
        if saved is not None:
            save(saved, out_file, keys)
        if not detailed_exitcode:
            return 0
        return 4 if made.blocked else 2 if made.drift else 0

    return for_each(units, one)


@cli.command()
@click.argument("planfile", type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def show(planfile: str, fmt: str) -> int:
    """Show a saved plan (a FILE from `plan --out`), with the options it was made with, without
    refreshing anything: no API call. Its signature is checked first (RECONCILER_PLAN_KEY, or
    SH_CLIENT_SECRET, must be the one it was made with). It is only displayed; `apply FILE` plans
    again and acts only when nothing moved."""
    from reconciler.operations.planfile import load
    from reconciler.render.plan import show_plan

    saved = load(planfile, plan_keys())
    show_plan(saved.plan, fmt, saved=saved, run_url=ci_run_url())
    return 0


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@STATE
@click.option("--auto-approve", is_flag=True, help="Do not ask before changing anything.")
@click.option("--wait", is_flag=True, help="Wait until every job reaches its spec.state (with progress).")
@click.option("--timeout", type=Duration(), default=3600.0, help="How long --wait waits (default 1h).")
@click.option("--parallelism", type=click.IntRange(min=1, max=64), default=4, show_default=True,
              help="How many jobs are acted on at once (a job's own steps always run in order).")
@POLL_INTERVAL
@LOCK_TIMEOUT
@LEASE_TTL
@TARGET
@SELECTOR
@ALLOW_REPLACE
@SHARD
@FORMAT
def apply(paths, state_location, auto_approve, wait, timeout, parallelism, poll_interval, lock_timeout, lease_ttl,
          targets, selectors, allow_replace, shards, fmt) -> int:
    """Converge live jobs to the manifests (PATHS), or execute a saved plan (PLANFILE [PATHS…], a
    FILE from plan --out): its signature is checked first, and PATHS, --shard, --target,
    --selector and --allow-replace must be those it was made with. JSON: docs/apply-json.md."""
    from reconciler.api.client import BatchClient
    from reconciler.batch.statuses import converged
    from reconciler.errors import UsageError
    from reconciler.operations.apply import Outcome
    from reconciler.operations.planfile import is_plan_file, load, published
    from reconciler.operations.run import ApplySettings, apply_fresh, apply_saved
    from reconciler.render.apply import Progress, apply_document, confirm, plan_view, show_results

    settings = ApplySettings(parallelism, wait, timeout, poll_interval, lease_options(lease_ttl, lock_timeout))
    saved_file = paths[0] if paths and is_plan_file(paths[0]) else None
    if fmt == "json" and not (auto_approve or saved_file):
        raise UsageError("apply --format json cannot ask for confirmation", "pass --auto-approve, or apply a plan "
                         "saved with `plan --out FILE` after reviewing it")
    units = units_of(paths[1:] if saved_file else paths, state_location, shards)
    if saved_file and len(units) > 1:
        raise UsageError("a saved plan belongs to one shard", "add --shard NAME (or --state)")
    saved = load(saved_file, plan_keys()) if saved_file else None  # verified before anything else is read or asked

    def one(unit) -> tuple[int, dict | None]:
        state_file, progress = lockfile_at(unit.state), Progress()
        selection = selection_of(unit.paths, targets, selectors, allow_replace=allow_replace)
        api = service_settings()
        keys = plan_keys(api.client_secret)
        with _reporting_interrupts(progress), BatchClient(api) as client:
            if saved is not None:
                made, results, final = apply_saved(client, state_file, saved, selection, unit.shard, settings, keys,
                                                   plan_view(fmt), progress)
            else:
                made, results, final = apply_fresh(client, state_file, selection, settings, keys, plan_view(fmt),
                                                   lambda p: auto_approve or confirm(p), progress)
        behind = tuple(sorted(name for name, (wanted, status) in final.items() if not converged(wanted, status)))
        outcome = Outcome.of(made, results, behind)
        if fmt == "json":
            return outcome.exit_code, apply_document(published(made, keys), outcome, final, wait, saved_file)
        show_results(outcome, {name: status for name, (_, status) in final.items()})
        return outcome.exit_code, None

    return _each(units, fmt, one)


def _each(units, fmt: str, run) -> int:
    """`for_each` over `run(unit) -> (exit code, JSON document or None)`. With --format json, one
    document for them all on stdout: the unit's own, or with shards `{"formatVersion": 1,
    "shards": [...]}` where a shard that failed (of several) holds its error (docs/apply-json.md)."""
    if fmt != "json":
        return for_each(units, lambda unit: run(unit)[0])
    from reconciler.errors import ReconcilerError
    from reconciler.render.diagnostics import show_failure
    from reconciler.render.status import show_documents

    entries, codes = [], []
    for unit in units:
        try:
            code, document = run(unit)
        except ReconcilerError as e:
            if len(units) == 1:
                raise
            e.message = f"shard {unit.shard}: {e.message}"
            show_failure(e)
            code, document = e.exit_code, e
        codes.append(code)
        entries.append((unit.shard, document))
    show_documents(entries)
    return next((c for c in (1, 3, 4, 2) if c in codes), 0)


@cli.command()
@PATHS
@STATE
@click.option("--detect-only", is_flag=True, help="Change nothing; exit 2 if live jobs drifted from the manifests.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=str),
              help="Append a markdown report here (e.g. \"$GITHUB_STEP_SUMMARY\").")
@click.option("--wait", is_flag=True, help="Wait for the jobs it moved to settle.")
@click.option("--timeout", type=Duration(), default=3600.0, help="How long --wait waits (default 1h).")
@click.option("--parallelism", type=click.IntRange(min=1, max=64), default=4, show_default=True,
              help="How many jobs are acted on at once (a job's own steps always run in order).")
@POLL_INTERVAL
@LOCK_TIMEOUT
@LEASE_TTL
@TARGET
@SELECTOR
@SHARD
@FORMAT
def reconcile(paths, state_location, detect_only, report, wait, timeout, parallelism, poll_interval, lock_timeout, lease_ttl,
              targets, selectors, shards, fmt) -> int:
    """For scheduled runs: apply only what needs no review (start, restart within budget, stop,
    description updates, adopt); report creates, replacements, removals and blocked changes.
    JSON: docs/apply-json.md."""
    from reconciler.api.client import BatchClient
    from reconciler.operations.planfile import published
    from reconciler.operations.run import ApplySettings
    from reconciler.operations.run import reconcile as run_reconcile
    from reconciler.render.apply import Progress, plan_view
    from reconciler.render.reconcile import reconcile_document, reconcile_markdown, show_reconciled

    settings = ApplySettings(parallelism, wait, timeout, poll_interval, lease_options(lease_ttl, lock_timeout))

    def one(unit) -> tuple[int, dict | None]:
        progress = Progress()
        api = service_settings()
        keys = plan_keys(api.client_secret)
        with _reporting_interrupts(progress), BatchClient(api) as client:
            outcome = run_reconcile(client, lockfile_at(unit.state), selection_of(unit.paths, targets, selectors), settings,
                                    detect_only, keys, plan_view(fmt), progress)
        if report:
            with open(report, "a", encoding="utf-8") as f:
                f.write(reconcile_markdown(outcome, detect_only, unit.shard))
        # 1: an action failed; 2: left for review (or, detecting only, found): a scheduled run alerts
        code = 1 if any(not r.ok for r in outcome.results) else 2 if outcome.deferred else 0
        if fmt == "json":
            return code, reconcile_document(published(outcome.plan, keys), outcome, detect_only, wait, code)
        show_reconciled(outcome, detect_only)
        return code, None

    return _each(units_of(paths, state_location, shards), fmt, one)


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH|NAME]...")
@STATE
@FORMAT
@SHARD
@click.option("--map", "map_file", type=click.Path(dir_okay=False, path_type=str),
              help="With one NAME: write its tile map (.geojson, or .png/.svg with the map extra).")
def status(paths, state_location, fmt, shards, map_file) -> int:
    """Each job: what it should be, its live status, progress (% and tiles), PU so far, the cost
    estimate, request id and last action (JSON: docs/status-json.md).

    PU SO FAR is what the service reports spent (v2 once processing began); v1 reports none, so a
    v1 job's is estimated ("est."): its share of tiles processed × the service's estimate.
    ESTIMATE PU is the service's figure after analysis (`service`) or the manifest's offline
    estimate (`offline`); a v2 job that ended has none: its PU so far is what it cost.

    An argument that exists as a file or folder, or that cannot be a job name, is a PATH of
    manifests; any other is a job NAME, and only the jobs named are shown (`status
    corsica-max-ndvi`). Manifests are read without resolving ${env:…}: status needs no secret.

    A job the PATHs read do not declare is looked for in the manifest file the lockfile records
    for it. `status NAME [PATH…] --map FILE` writes the tile map of job NAME instead."""
    from reconciler.api.client import BatchClient
    from reconciler.errors import UsageError
    from reconciler.operations.status import read_manifests, statuses
    from reconciler.render.status import show_statuses, status_document

    if map_file:
        return _tile_map(paths, state_location, shards, map_file)
    paths, names = _paths_and_names(paths)
    shown: set[str] = set()

    def one(unit) -> tuple[int, dict | None]:
        readable = read_manifests(unit.paths)
        with BatchClient(service_settings()) as client:
            rows = statuses(client, lockfile_at(unit.state), readable, names or None)
        shown.update(row.name for row in rows)
        if names and not rows:  # named jobs another shard holds: nothing to show here
            return 0, None
        if fmt == "json":
            return 0, status_document(rows)
        show_statuses(rows, fmt)
        return 0, None

    code = _each(units_of(paths, state_location, shards), fmt, one)
    if code == 0 and (unknown := sorted(set(names) - shown)):
        raise UsageError(f"{unknown[0]}: no such file or folder, and no job of that name in the manifests or the "
                         "lockfile", "see `reconciler state list`, or give an existing PATH")
    return code


def _paths_and_names(args: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """status's rule: an argument that exists, or that no job could be named, is a PATH; any other a NAME."""
    import os

    from reconciler.manifests.schema import check_name

    def is_name(arg: str) -> bool:
        try:
            check_name(arg)
        except ValueError:
            return False
        return not os.path.exists(arg)

    return tuple(a for a in args if not is_name(a)), tuple(a for a in args if is_name(a))


@cli.command("import")
@click.argument("name")
@click.argument("request_id")
@click.option("--api", type=click.Choice(["v1", "v2"]), help="The request's API version (default: look in both).")
@click.option("--write", type=click.Path(dir_okay=False, path_type=str),
              help="Write the manifest here and adopt the request; without it, only print the manifest.")
@STATE
@LEASE_TTL
@LOCK_TIMEOUT
@FORMAT
def import_command(name, request_id, api, write, state_location, lease_ttl, lock_timeout, fmt) -> int:
    """Adopt the live request REQUEST_ID as NAME and write its manifest (--write FILE).

    Without --write nothing changes: the manifest is printed, to review before adopting.
    JSON: docs/import-json.md."""
    from pathlib import Path

    from reconciler.api.client import BatchClient
    from reconciler.manifests.schema import check_name
    from reconciler.operations.adopt import import_job
    from reconciler.render.status import show_imported

    try:
        check_name(name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="NAME") from None
    if write and Path(write).exists():
        raise click.BadParameter(f"{write} exists; not overwriting it", param_hint="--write")
    with BatchClient(service_settings()) as client:
        imported = import_job(client, lockfile_at(state_location), name, request_id, api,
                              lease_options(lease_ttl, lock_timeout), adopt=bool(write), file=write)
    if write:
        Path(write).write_text(imported.manifest_yaml)
    show_imported(name, imported, write, fmt)
    return 0


@cli.command()
@click.option("--api", type=click.Choice(["v1", "v2"]), default="v2", show_default=True, help="Batch API version.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def grids(api: str, fmt: str) -> int:
    """List the tiling grids the Batch API offers (needs SH_CLIENT_ID/SH_CLIENT_SECRET)."""
    from reconciler.api.client import BatchClient
    from reconciler.render.grids import show_grids

    with BatchClient(service_settings()) as client:
        show_grids(getattr(client, api).tiling_grids(), fmt)
    return 0


@contextlib.contextmanager
def _reporting_interrupts(progress) -> Iterator[None]:
    """Ctrl-C and SIGTERM (SystemExit from the lease's signal handler) go on to their exit codes
    (130, 143) once the view has said what is left running at the service."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as e:
        progress.interrupted(e)
        raise


def _tile_map(args: tuple[str, ...], state_location, shards, map_file: str) -> int:
    """`status NAME [PATH…] --map FILE`: PATHs and NAME told apart, and the lockfile chosen, as in the table."""
    import os

    from reconciler.api.client import BatchClient
    from reconciler.api.jobs import JobsApi
    from reconciler.errors import UsageError
    from reconciler.operations.tilemap import tile_map
    from reconciler.render.tilemap import write_map

    paths, names = _paths_and_names(args)
    if len(names) != 1:
        raise UsageError("--map needs exactly one job NAME (beside any PATHs)",
                         "e.g. reconciler status corsica-max-ndvi --map tiles.png")
    if missing := [path for path in paths if not os.path.exists(path)]:
        raise UsageError(f"{missing[0]}: no such file or directory")
    name = names[0]
    for unit in units_of(paths, state_location, shards):
        record = lockfile_at(unit.state).read().lockfile.jobs.get(name)
        if record is not None and record.id:
            with BatchClient(service_settings()) as client:
                api = JobsApi(client, record.api)
                job = api.get(record.id)
                write_map(tile_map(api, job), map_file, f"{name} · {job.api} {job.status}")
            return 0
    raise UsageError(f"no managed job named {name!r} has a live request", "see `reconciler state list`")
