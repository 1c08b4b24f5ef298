"""The command line (DESIGN §5). Exit codes: 0 success, 1 error, 2 changes pending
(`--detailed-exitcode`), 3 the lease is held by someone else."""

from __future__ import annotations

import gc
import os
import sys
import traceback

import click

from reconciler.cli import engine, manifests, sandbox, state  # noqa: F401 — each registers its commands
from reconciler.cli.base import RETAINED, cli
from reconciler import redaction
from reconciler.errors import ReconcilerError

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes a message and an exit code, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    # Loading 10,000 manifests makes millions of small, acyclic objects: with the default thresholds
    # the cycle collector rescans them over and over and doubles the time (bench/RESULTS.md).
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    debug = "--debug" in args or bool(os.environ.get("RECONCILER_DEBUG"))
    redaction.forget()
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
    code = code if isinstance(code, int) else 0
    if argv is None and RETAINED:
        # The process ends here: freeing a 10,000-job plan object by object would cost a tenth of
        # its CPU time, for nothing (mypy exits the same way). Buffered output is flushed first.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    RETAINED.clear()  # in-process (tests): let it go
    sys.exit(code)


def _show_error(message: str, hint: str | None) -> None:
    from reconciler.render.diagnostics import show_error

    show_error(message, hint)
