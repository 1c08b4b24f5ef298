"""The `reconciler` group and what its commands share: argument types and common options.

Commands stay thin (STYLE rule 5): parse → call an operation → render → exit code. Heavy
libraries are imported inside the commands so that `reconciler --help` starts fast.
"""

from __future__ import annotations

import click

from reconciler import __version__

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
