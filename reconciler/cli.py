"""The command line: parse → call an operation → render → exit code. Nothing else lives here.

Heavy libraries are imported inside the commands so that `reconciler --help` starts fast.
Exit codes (DESIGN §5): 0 success, 1 error, 2 changes pending, 3 lease held by someone else.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from reconciler import __version__
from reconciler.errors import ReconcilerError

PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=str))


class Duration(click.ParamType):
    """30s, 10m, 1h30m, 500ms or plain seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        from reconciler.settings import parse_duration

        try:
            return parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


RATE = click.FloatRange(min=0, max=1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (or set RECONCILER_DEBUG=1).")
def cli(debug: bool) -> None:
    """GitOps for Sentinel Hub batch jobs: manifests in git, converged by plan and apply."""


@cli.command()
@PATHS
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--resolve-env", is_flag=True, help="Resolve ${env:NAME} references and fail on unset variables.")
def validate(paths: tuple[str, ...], fmt: str, resolve_env: bool) -> int:
    """Check manifests offline: schema, names, files, grids. No API call.

    PATHS are files or directories (default: manifests/)."""
    from reconciler.manifests.loader import load
    from reconciler.render.diagnostics import show_validation

    result = load(paths, resolve_env=resolve_env)
    show_validation(result.diagnostics, result.files, [m.name for m in result.manifests], result.deferred, fmt)
    return 1 if result.errors else 0


@cli.command("fmt")
@PATHS
@click.option("--check", is_flag=True, help="Change nothing; list the files that are not formatted and exit 1.")
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes as a unified diff.")
def fmt_command(paths: tuple[str, ...], check: bool, show_diff: bool) -> int:
    """Rewrite manifests in canonical form (key order, indentation); comments are kept."""
    from reconciler.manifests.fmt import format_files
    from reconciler.render.diagnostics import show_diagnostics, show_fmt

    report = format_files(paths, write=not check, diff=show_diff)
    show_diagnostics(report.diagnostics, err=True)
    show_fmt(report.changed, check, report.diffs)
    return 1 if report.diagnostics or (check and report.changed) else 0


@cli.command()
def schema() -> int:
    """Print the JSON Schema of a manifest (for editors: `# yaml-language-server: $schema=…`)."""
    import json

    from reconciler.manifests.schema import json_schema
    from reconciler.render import out

    out(json.dumps(json_schema(), indent=2))
    return 0


@cli.command()
@click.option("--api", type=click.Choice(["v1", "v2"]), default="v2", show_default=True, help="Batch API version.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def grids(api: str, fmt: str) -> int:
    """List the tiling grids the Batch API offers (needs SH_CLIENT_ID/SH_CLIENT_SECRET)."""
    from reconciler.api.client import BatchClient
    from reconciler.render.grids import show_grids
    from reconciler.settings import api_settings

    with BatchClient(api_settings()) as client:
        show_grids(getattr(client, api).tiling_grids(), fmt)
    return 0


STATE = click.option("--state", "state_location", metavar="URL",
                     help="Lockfile: s3://bucket/key.json or a local path (default: $RECONCILER_STATE).")
LEASE_TTL = click.option("--lease-ttl", type=Duration(), default=None,
                         help="How long the lease lives without renewal (default: $RECONCILER_LEASE_TTL or 10m).")
LOCK_TIMEOUT = click.option("--lock-timeout", type=Duration(), default=0.0,
                            help="Wait this long for a held lease (capped backoff) before exiting 3.")
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)


def _state(location: str | None):
    from reconciler.settings import state_location
    from reconciler.state.operations import open_state

    return open_state(state_location(location))


def _lease_options(lease_ttl: float | None, lock_timeout: float):
    from reconciler.settings import lease_ttl as ttl_setting
    from reconciler.state.operations import LeaseOptions

    return LeaseOptions(ttl=ttl_setting(lease_ttl), timeout=lock_timeout)


TARGET = click.option("--target", "targets", multiple=True, metavar="NAME", help="Only these jobs (repeatable).")
SELECTOR = click.option("--selector", "selectors", multiple=True, metavar="K=V",
                        help="Only manifests with this label (repeatable; all must match).")
ALLOW_REPLACE = click.option("--allow-replace", is_flag=True,
                             help="Replace jobs whose request changed even where onSpecChange is refuse.")


def _selection(paths, targets, selectors, show_unmanaged=False, allow_replace=False):
    from reconciler.engine.run import Selection

    pairs = []
    for item in selectors:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not K=V", param_hint="--selector")
        pairs.append((key, value))
    return Selection(tuple(paths), frozenset(targets) if targets else None, tuple(pairs), show_unmanaged, allow_replace)


@cli.command()
@PATHS
@STATE
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=str), help="Save the plan for `apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 without changes, 2 with changes (or changes policy blocks), 1 on error.")
@click.option("--show-unmanaged", is_flag=True, help="Also list live jobs the reconciler does not manage.")
@TARGET
@SELECTOR
@ALLOW_REPLACE
def plan(paths, state_location, out_file, fmt, detailed_exitcode, show_unmanaged, targets, selectors,
         allow_replace) -> int:
    """Show what apply would change, with the cost, without changing anything."""
    from reconciler.api.client import BatchClient
    from reconciler.engine.planfile import SavedPlan, save
    from reconciler.engine.run import load_manifests, make_plan
    from reconciler.render.plan import show_plan
    from reconciler.settings import api_settings

    selection = _selection(paths, targets, selectors, show_unmanaged, allow_replace)
    manifests, names = load_manifests(selection)
    state_file = _state(state_location)
    with BatchClient(api_settings()) as client:
        made, refreshed = make_plan(client, state_file, manifests, names, selection)
    show_plan(made, fmt, show_unmanaged=show_unmanaged)
    if out_file:
        save(SavedPlan(made, selection.paths, refreshed.snapshot.lockfile.journalSeq, allow_replace,
                       tuple(sorted(names)) if names is not None else None), out_file)
    return 2 if detailed_exitcode and made.drift else 0


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@STATE
@click.option("--auto-approve", is_flag=True, help="Do not ask before changing anything.")
@click.option("--wait", is_flag=True, help="Wait until every job reaches its spec.state (with progress).")
@click.option("--timeout", type=Duration(), default=3600.0, help="How long --wait waits (default 1h).")
@click.option("--parallelism", type=click.IntRange(min=1, max=64), default=4, show_default=True)
@click.option("--poll-interval", type=Duration(), default=1.0, help="How often --wait looks (default 1s).")
@LOCK_TIMEOUT
@LEASE_TTL
@TARGET
@SELECTOR
@ALLOW_REPLACE
def apply(paths, state_location, auto_approve, wait, timeout, parallelism, poll_interval, lock_timeout, lease_ttl,
          targets, selectors, allow_replace) -> int:
    """Converge live jobs to the manifests (PATHS), or execute a saved plan (a FILE from plan --out)."""
    from reconciler.api.client import BatchClient
    from reconciler.engine.planfile import is_plan_file, load
    from reconciler.engine.run import ApplySettings, apply_fresh, apply_saved, converged
    from reconciler.render.apply import Progress, confirm, show_results
    from reconciler.render.plan import show_plan
    from reconciler.settings import api_settings

    settings = ApplySettings(parallelism, wait, timeout, poll_interval, _lease_options(lease_ttl, lock_timeout))
    state_file, progress = _state(state_location), Progress()
    with BatchClient(api_settings()) as client:
        if len(paths) == 1 and is_plan_file(paths[0]):
            saved = load(paths[0])
            show_plan(saved.plan, "text")
            results, final = apply_saved(client, state_file, saved, settings, progress)
        else:
            selection = _selection(paths, targets, selectors, allow_replace=allow_replace)
            _, results, final = apply_fresh(client, state_file, selection, settings, lambda p: show_plan(p, "text"),
                                            lambda p: auto_approve or confirm(p), progress)
    progress.finish()
    behind = sorted(name for name, (wanted, status) in final.items() if not converged(wanted, status))
    show_results(results, {name: status for name, (_, status) in final.items()}, behind)
    return 1 if behind or any(not r.ok for r in results) else 0


@cli.command()
@PATHS
@STATE
@FORMAT
def status(paths, state_location, fmt) -> int:
    """Each job: what it should be, its live status, progress, cost and last action."""
    from reconciler.api.client import BatchClient
    from reconciler.engine.run import load_manifests
    from reconciler.engine.status import statuses
    from reconciler.render.status import show_statuses
    from reconciler.settings import api_settings

    manifests, _ = load_manifests(_selection(paths, (), ()))
    with BatchClient(api_settings()) as client:
        show_statuses(statuses(client, _state(state_location), manifests), fmt)
    return 0


@cli.command("import")
@click.argument("name")
@click.argument("request_id")
@click.option("--api", type=click.Choice(["v1", "v2"]), help="The request's API version (default: look in both).")
@click.option("--write", type=click.Path(dir_okay=False, path_type=str), help="Write the manifest here (else print it).")
@STATE
@LEASE_TTL
@LOCK_TIMEOUT
def import_command(name, request_id, api, write, state_location, lease_ttl, lock_timeout) -> int:
    """Adopt the live request REQUEST_ID as NAME and write its manifest."""
    from pathlib import Path

    from reconciler.api.client import BatchClient
    from reconciler.engine.adopt import import_job
    from reconciler.manifests.schema import check_name
    from reconciler.render.status import show_imported
    from reconciler.settings import api_settings

    try:
        check_name(name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="NAME") from None
    if write and Path(write).exists():
        raise click.BadParameter(f"{write} exists; not overwriting it", param_hint="--write")
    with BatchClient(api_settings()) as client:
        imported = import_job(client, _state(state_location), name, request_id, api, _lease_options(lease_ttl, lock_timeout))
    if write:
        Path(write).write_text(imported.manifest_yaml)
    show_imported(name, imported, write)
    return 0


@cli.group()
def state() -> None:
    """Read and repair the lockfile (what the reconciler manages)."""


@state.command("rebuild")
@PATHS
@STATE
@LEASE_TTL
@LOCK_TIMEOUT
def state_rebuild(paths, state_location, lease_ttl, lock_timeout) -> int:
    """Recover the lockfile from the ownership markers of the live requests."""
    from reconciler.api.client import BatchClient
    from reconciler.engine.adopt import rebuild
    from reconciler.engine.run import load_manifests
    from reconciler.render.status import show_rebuilt
    from reconciler.settings import api_settings

    manifests, _ = load_manifests(_selection(paths, (), ()))
    with BatchClient(api_settings()) as client:
        show_rebuilt(rebuild(client, _state(state_location), manifests, _lease_options(lease_ttl, lock_timeout)))
    return 0


@state.command("list")
@STATE
@FORMAT
def state_list(state_location: str | None, fmt: str) -> int:
    """The managed jobs: name, API, request id, last seen status, last action."""
    from reconciler.render.state import show_jobs

    state_file = _state(state_location)
    snapshot = state_file.read()
    show_jobs(snapshot.lockfile, state_file.location, fmt, exists=snapshot.etag is not None or bool(snapshot.journal))
    return 0


@state.command("show")
@click.argument("name")
@STATE
@FORMAT
def state_show(name: str, state_location: str | None, fmt: str) -> int:
    """One job's record and its audit trail."""
    from reconciler.render.state import show_job
    from reconciler.state.operations import job

    show_job(name, job(_state(state_location), name), fmt)
    return 0


@state.command("rm")
@click.argument("name")
@STATE
@LEASE_TTL
@LOCK_TIMEOUT
def state_rm(name: str, state_location: str | None, lease_ttl: float | None, lock_timeout: float) -> int:
    """Forget NAME: its live request is left alone and becomes unmanaged."""
    from reconciler.render.state import show_done
    from reconciler.state.operations import forget

    removed = forget(_state(state_location), name, _lease_options(lease_ttl, lock_timeout))
    show_done(f"Forgot {name}; its request {removed.id or '(none)'} is left as it is.")
    return 0


@state.command("pull")
@STATE
def state_pull(state_location: str | None) -> int:
    """Print the lockfile (with any journal folded in) as JSON."""
    from reconciler.errors import StateError
    from reconciler.render.state import show_lockfile

    state_file = _state(state_location)
    snapshot = state_file.read()
    if snapshot.etag is None and not snapshot.journal:
        raise StateError(f"there is no lockfile at {state_file.location} yet")
    show_lockfile(snapshot.lockfile)
    return 0


@state.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@STATE
@click.option("--force", is_flag=True, help="Also replace a state of another lineage or a newer serial.")
@LEASE_TTL
@LOCK_TIMEOUT
def state_push(file: str, state_location: str | None, force: bool, lease_ttl: float | None, lock_timeout: float) -> int:
    """Replace the lockfile with FILE (refuses an older serial or another lineage unless --force)."""
    from pathlib import Path

    from reconciler.render.state import show_done
    from reconciler.state.format import decode
    from reconciler.state.operations import push

    incoming = decode(Path(file).read_bytes(), file)
    written = push(_state(state_location), incoming, force, _lease_options(lease_ttl, lock_timeout))
    show_done(f"Pushed {file}: the state is now at serial {written.stored_serial}.")
    return 0


@cli.group()
def lock() -> None:
    """The lease that lets one run at a time change live jobs."""


@lock.command("status")
@STATE
def lock_status(state_location: str | None) -> int:
    """Who holds the lease, since when, until when."""
    import time

    from reconciler.render.state import show_lease
    from reconciler.state.operations import lease_status

    state_file = _state(state_location)
    holder, expired = lease_status(state_file, time.time())
    show_lease(holder, state_file.location, expired)
    return 0


@cli.command("force-unlock")
@click.argument("lease_id")
@STATE
def force_unlock(lease_id: str, state_location: str | None) -> int:
    """Break the lease LEASE_ID (refused if the lease held has another id)."""
    from reconciler.render.state import show_done
    from reconciler.state.lease import force_unlock as unlock

    state_file = _state(state_location)
    holder = unlock(state_file.store, state_file.key, lease_id)
    show_done(f"Broke lease {holder.id} held by {holder.who} ({holder.operation}).")
    return 0


@cli.group()
def sandbox() -> None:
    """The local stand-in of the Batch API and S3, for trying manifests offline."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only by default).")
@click.option("--port", type=int, default=0, show_default=True, help="Batch API port; 0 picks a free one.")
@click.option("--s3-port", type=int, default=0, show_default=True, help="S3 port; 0 picks a free one.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=str),
              help="Write SH_*, AWS_* and RECONCILER_STATE here once both servers accept connections.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=str),
              help="Keep jobs (and generated credentials) in SQLite here across restarts. S3 objects stay in memory.")
@click.option("--client-id", help="OAuth client id (default: generated).")
@click.option("--client-secret", help="OAuth client secret (default: generated).")
@click.option("--token-ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Token lifetime, seconds.")
@click.option("--speed", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Divides every phase duration (10 = ten times faster).")
@click.option("--analysis-seconds", type=click.FloatRange(min=0), default=0.3, show_default=True)
@click.option("--tile-seconds", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Processing time of one tile.")
@click.option("--workers", type=click.IntRange(min=1), default=8, show_default=True, help="Tiles processed at once.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random fault.")
@click.option("--tile-failure-rate", type=RATE, default=0.0, show_default=True,
              help="Fault: share of tile runs that fail (v1 → PARTIAL, or FAILED when all fail).")
@click.option("--v2-failure-threshold", type=RATE, default=0.0, show_default=True,
              help="A v2 job FAILS when more than this share of its tiles failed.")
@click.option("--error-rate", type=RATE, default=0.0, show_default=True, help="Fault: share of API requests answered 5xx.")
@click.option("--lost-response-rate", type=RATE, default=0.0, show_default=True,
              help="Fault: share of API writes that take effect but are answered 5xx.")
@click.option("--rate-limit", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Fault: requests per second above which the answer is 429 with Retry-After (ms); 0 = off.")
@click.option("--latency", type=Duration(), default=0.0, help="Fault: time added to every request (e.g. 50ms).")
@click.option("--replica-lag", type=Duration(), default=0.0, help="Fault: a new job answers 404 to GET this long.")
@click.option("--stale-after", type=Duration(), default=None,
              help="Delete finished, failed and never-started requests this long after their last change.")
@click.option("--s3-write-latency", type=Duration(), default=0.0,
              help="Fault: time added inside every S3 object write (widens race windows in tests).")
def sandbox_serve(env_file: str | None, data_dir: str | None, client_id: str | None, client_secret: str | None,
                  host: str, port: int, s3_port: int, token_ttl: int, s3_write_latency: float, **knobs) -> int:
    """Serve the sandbox until Ctrl-C or SIGTERM.

    Jobs live in memory unless --data-dir is given; S3 objects always live in memory."""
    from pathlib import Path

    from reconciler.render.sandbox import show_sandbox
    from reconciler.sandbox.faults import Faults
    from reconciler.sandbox.server import SandboxOptions, serve
    from reconciler.sandbox.worker import Timing

    timing = Timing(**{k: knobs.pop(k) for k in ("analysis_seconds", "tile_seconds", "workers", "speed")})
    options = SandboxOptions(host=host, port=port, s3_port=s3_port, client_id=client_id, client_secret=client_secret,
                             token_ttl=token_ttl, timing=timing, faults=Faults(**knobs), s3_write_latency=s3_write_latency,
                             data_dir=Path(data_dir) if data_dir else None)
    serve(options, Path(env_file) if env_file else None, lambda s: show_sandbox(s, env_file))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes a message and an exit code, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("RECONCILER_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Abort:
        code = 130
    except click.ClickException as e:  # usage errors: bad option, missing argument
        e.show()
        code = 1
    except ReconcilerError as e:
        _show_error(e.message, e.hint)
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 — the last line of defence
        if debug:
            traceback.print_exc()
        _show_error(f"unexpected {type(e).__name__}: {e}", None if debug else "run with --debug for the traceback")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _show_error(message: str, hint: str | None) -> None:
    from reconciler.render.diagnostics import show_error

    show_error(message, hint)
