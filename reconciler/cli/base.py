"""The `reconciler` group and what its commands share: argument types and common options.

Commands stay thin (docs/architecture.md, rule 5): parse → call an operation → render → exit code. Heavy
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


def _keep_global(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if value:  # given: before the command or after it (the later wins), it is the run's
        ctx.find_root().meta[f"reconciler.{param.name}"] = value


# Options of the whole run, taken by the group and by every command alike (`reconciler --deployment
# cdse plan` or `reconciler plan --deployment cdse`). Like --help, they are added by `get_params`, not
# kept in each command's `params`; their values are read with `global_option`.
GLOBAL_OPTIONS = (
    click.Option(["--deployment"], type=click.Choice(list(DEPLOYMENTS)), default=None, expose_value=False,
                 callback=_keep_global, help="The Sentinel Hub deployment: eu (default), us-west, or cdse (Copernicus "
                 "Data Space Ecosystem); or set SH_DEPLOYMENT, else SH_BASE_URL and SH_TOKEN_URL (or the "
                 "sh_base_url and sh_token_url of a sentinelhub-py profile)."),
    click.Option(["--debug"], is_flag=True, expose_value=False, callback=_keep_global,
                 help="Show the traceback of an unexpected error (or set RECONCILER_DEBUG=1)."),
)


def global_option(name: str) -> object:
    """The value of the global option `name` (e.g. "deployment") in this run; None when not given."""
    context = click.get_current_context(silent=True)
    return context.find_root().meta.get(f"reconciler.{name}") if context else None


class Command(click.Command):
    """A command of `reconciler`: it takes GLOBAL_OPTIONS and lists them in its help under "Global options"."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)  # its own, then --help
        own = len(self.params)
        return [*params[:own], *GLOBAL_OPTIONS, *params[own:]]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own = [p for p in self.get_params(ctx) if p not in GLOBAL_OPTIONS]
        for title, params in (("Options", own), ("Global options", GLOBAL_OPTIONS)):
            records = [r for p in params if not isinstance(p, click.Argument) and (r := p.get_help_record(ctx))]
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class Group(Command, click.Group):
    """`reconciler` and its groups (state, lock, sandbox): their commands and groups are of these classes."""

    command_class = Command
    group_class = type

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)  # Command's: the options, apart from the global ones
        self.format_commands(ctx, formatter)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """GitOps for Sentinel Hub batch jobs: manifests in git, converged by plan and apply."""


def service_settings():
    """The API settings for this command line (its `--deployment`, else the environment)."""
    from reconciler.settings import api_settings

    deployment = global_option("deployment")
    return api_settings(deployment=deployment if isinstance(deployment, str) else None)


def ci_run_url() -> str | None:
    """The page of the CI run this command runs in (GitHub Actions), for a saved plan's comment."""
    import os

    server, repository, run = (os.environ.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                                                                      "GITHUB_RUN_ID"))
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else None


def plan_keys(client_secret: str | None = None):
    """The keys of this run's plan key (settings.plan_key; `client_secret`: the API settings', else the
    one they would have, from SH_CLIENT_SECRET or the sentinelhub-py profile): they sign and check
    saved plans and key every digest a plan publishes."""
    import os

    from reconciler.operations.planfile import PlanKeys
    from reconciler.profiles import client_secret as configured_secret
    from reconciler.settings import PLAN_KEY_VARIABLE, plan_key

    if client_secret is None and not os.environ.get(PLAN_KEY_VARIABLE, "").strip():
        client_secret = configured_secret(os.environ) or None  # `show` and `apply PLANFILE` read no API settings
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
    from reconciler.shards import load_shards

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
