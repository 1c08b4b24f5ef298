"""The `reconciler` group and what its commands share: argument types and common options.

Commands stay thin (STYLE rule 5): parse → call an operation → render → exit code. Heavy
libraries are imported inside the commands so that `reconciler --help` starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from reconciler import __version__
from reconciler.settings import DEPLOYMENTS

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
@click.option("--deployment", type=click.Choice(list(DEPLOYMENTS)), default=None,
              help="The Sentinel Hub deployment: eu (default), us-west, or cdse (Copernicus Data Space "
                   "Ecosystem); or set SH_DEPLOYMENT, or SH_BASE_URL and SH_TOKEN_URL.")
def cli(debug: bool, deployment: str | None) -> None:
    """GitOps for Sentinel Hub batch jobs: manifests in git, converged by plan and apply."""


def service_settings():
    """The API settings for this command line (its `--deployment`, else the environment)."""
    from reconciler.settings import api_settings

    context = click.get_current_context(silent=True)
    return api_settings(deployment=context.find_root().params.get("deployment") if context else None)


def plan_keys(client_secret: str | None = None):
    """The keys of this run's plan key (settings.plan_key; `client_secret`: the API settings'):
    they sign and check saved plans and key every digest a plan publishes."""
    import os

    from reconciler.operations.planfile import PlanKeys
    from reconciler.settings import plan_key

    return PlanKeys(plan_key(os.environ, client_secret))


STATE = click.option("--state", "state_location", metavar="URL",
                     help="Lockfile: s3://bucket/key.json or a local path (default: $RECONCILER_STATE).")
LEASE_TTL = click.option("--lease-ttl", type=Duration(), default=None,
                         help="How long the lease lives without renewal (default: $RECONCILER_LEASE_TTL or 10m).")
LOCK_TIMEOUT = click.option("--lock-timeout", type=Duration(), default=0.0,
                            help="Wait this long for a held lease (capped backoff) before exiting 3.")
POLL_INTERVAL = click.option("--poll-interval", type=Duration(), default=1.0, help="How often --wait looks (default 1s).")
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)


def lockfile_at(location: str | None):
    from reconciler.settings import state_location
    from reconciler.state.operations import open_state

    return open_state(state_location(location))


def lease_options(lease_ttl: float | None, lock_timeout: float):
    from reconciler.settings import lease_ttl as ttl_setting
    from reconciler.state.operations import LeaseOptions

    return LeaseOptions(ttl=ttl_setting(lease_ttl), timeout=lock_timeout)


TARGET = click.option("--target", "targets", multiple=True, metavar="NAME", help="Only these jobs (repeatable).")
SELECTOR = click.option("--selector", "selectors", multiple=True, metavar="K=V",
                        help="Only manifests with this label (repeatable; all must match).")
ALLOW_REPLACE = click.option("--allow-replace", is_flag=True,
                             help="Replace jobs whose request changed even where onSpecChange is refuse.")


def selection_of(paths, targets, selectors, show_unmanaged=False, allow_replace=False):
    from reconciler.operations.run import Selection

    pairs = []
    for item in selectors:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not K=V", param_hint="--selector")
        pairs.append((key, value))
    return Selection(tuple(paths), frozenset(targets) if targets else None, tuple(pairs), show_unmanaged, allow_replace)


SHARD = click.option("--shard", "shards", multiple=True, metavar="NAME",
                     help="Only this shard of reconciler.toml (repeatable; default: every shard).")


@dataclass(frozen=True)
class Unit:
    """What one pass of a command works on: manifest paths and a lockfile (a shard, or neither)."""

    shard: str | None
    paths: tuple[str, ...]
    state: str | None


def units_of(paths: tuple[str, ...], state_location: str | None, shards: tuple[str, ...]) -> list[Unit]:
    """Explicit PATHS/--state win; else the shards of reconciler.toml (those named by --shard, or
    all); else the defaults (manifests/ and RECONCILER_STATE)."""
    from reconciler.errors import UsageError
    from reconciler.settings import load_shards

    configured = load_shards() if not (paths or state_location) or shards else {}
    if shards:
        unknown = [s for s in shards if s not in configured]
        if unknown:
            raise UsageError(f"--shard {unknown[0]}: no such shard in reconciler.toml",
                             "shards: " + (", ".join(sorted(configured)) or "(none: is there a reconciler.toml here?)"))
        return [Unit(s, configured[s].paths, configured[s].state) for s in shards]
    if configured:
        return [Unit(s.name, s.paths, s.state) for s in configured.values()]
    return [Unit(None, paths, state_location)]


def for_each(units: list[Unit], run) -> int:
    """Run per unit, with a heading per shard; with several shards an error in one is shown and the
    others still run. The exit code is the most serious: 1, then 3, then 4, then 2, then 0."""
    from reconciler.errors import ReconcilerError
    from reconciler.render import show_heading
    from reconciler.render.diagnostics import show_failure

    codes = []
    for unit in units:
        if unit.shard is not None:
            show_heading(f"shard {unit.shard} · {', '.join(unit.paths)} · {unit.state}")
        if len(units) == 1:
            codes.append(run(unit))
            continue
        try:
            codes.append(run(unit))
        except ReconcilerError as e:
            e.message = f"shard {unit.shard}: {e.message}"
            show_failure(e)
            codes.append(e.exit_code)
    return next((c for c in (1, 3, 4, 2) if c in codes), 0)
