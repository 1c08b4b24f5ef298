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
