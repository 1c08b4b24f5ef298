"""Views of diagnostics: `validate` and `fmt` reports, and a single error for the CLI's handler."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from reconciler.diagnostics import Diagnostic
from reconciler.render import colour_enabled, out, paint, plain

FORMAT_VERSION = 1


def show_diagnostics(diagnostics: Sequence[Diagnostic], *, err: bool = False) -> None:
    colour = colour_enabled()
    for d in diagnostics:
        out(_line(d, colour), err=err)
        if d.hint:
            out(paint(f"    hint: {d.hint}", colour, dim=True), err=err)


def _line(d: Diagnostic, colour: bool) -> str:
    where = d.file if d.line <= 0 else f"{d.file}:{d.line}:{d.column}"
    field = f" {d.path}:" if d.path else ""
    severity = "" if d.is_error else paint(" warning:", colour, fg="yellow", bold=True)
    return f"{paint(where + ':', colour, bold=True)}{field}{severity} {d.message}"


def show_validation(
    diagnostics: Sequence[Diagnostic], files: int, manifests: Sequence[str], deferred: Sequence[str], fmt: str
) -> None:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    if fmt == "json":
        report = {
            "formatVersion": FORMAT_VERSION,
            "valid": errors == 0,
            "files": files,
            "manifests": list(manifests) + list(deferred),
            "dependOnEnvironment": list(deferred),
            "errorCount": errors,
            "warningCount": warnings,
            "diagnostics": [_as_json(d) for d in diagnostics],
        }
        out(json.dumps(report, indent=2))
        return
    show_diagnostics(diagnostics)
    colour = colour_enabled()
    if errors:
        out(paint(f"validation failed: {errors} error(s), {warnings} warning(s) in {files} file(s)", colour, fg="red", bold=True))
    else:
        tail = f" ({warnings} warning(s))" if warnings else ""
        count = len(manifests) + len(deferred)
        out(paint(f"{count} manifest(s) in {files} file(s) are valid{tail}", colour, fg="green"))
        if deferred:
            out(f"{len(deferred)} of them hold ${{env:…}} values that are checked when resolved "
                f"(--resolve-env, plan, apply): {', '.join(deferred)}")


def _as_json(d: Diagnostic) -> dict:
    return {
        "severity": d.severity.value,
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "path": d.path,
        "message": d.message,
        "hint": d.hint,
    }


def show_fmt(changed: Sequence[str], check: bool, diffs: Sequence[str] = ()) -> None:
    for diff in diffs:
        out(diff, nl=False)
    for name in changed:
        out(name)
    if check and changed:
        out(f"{len(changed)} file(s) would be reformatted", err=True)


SHOWN = 20  # diagnostics printed before an error; the rest are counted


def show_failure(error) -> None:
    """A ReconcilerError as the user sees it: the manifests' diagnostics first (in validate's
    format, the first SHOWN of them), then the one-line error and its hint."""
    diagnostics = getattr(error, "diagnostics", None)
    if diagnostics:
        show_diagnostics(diagnostics[:SHOWN], err=True)
        if len(diagnostics) > SHOWN:
            out(f"… and {len(diagnostics) - SHOWN} more (`reconciler validate` lists them all)", err=True)
    show_error(error.message, error.hint)


def show_error(message: str, hint: str | None = None) -> None:
    colour = colour_enabled(sys.stderr)
    out(paint("Error: ", colour, fg="red", bold=True) + plain(message), err=True)  # may quote a server or a lease
    if hint:
        out(f"  hint: {plain(hint)}", err=True)
