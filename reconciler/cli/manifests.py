"""Offline commands: validate, fmt, schema."""

from __future__ import annotations

import click

from reconciler.cli.base import PATHS, cli


@cli.command()
@PATHS
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--resolve-env", is_flag=True, help="Resolve ${env:NAME} references and fail on unset variables.")
def validate(paths: tuple[str, ...], fmt: str, resolve_env: bool) -> int:
    """Check manifests offline: schema, names, files, grids. No API call.

    PATHS are files or directories (default: manifests/)."""
    from reconciler.diagnostics import Diagnostic
    from reconciler.manifests.loader import DEFAULT_PATHS, load
    from reconciler.render.diagnostics import show_validation

    result = load(paths, resolve_env=resolve_env, use_cache=True, warn_unset=not resolve_env)
    if not result.files and not result.errors:  # an empty folder is a wrong path far more often than intended
        where = ", ".join(map(str, paths or DEFAULT_PATHS))
        result.diagnostics.append(Diagnostic(where, 0, 0, "", "no manifest file (*.yaml, *.yml) here",
                                             "check the path; manifests live under manifests/ by default"))
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
