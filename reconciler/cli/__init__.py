"""The command line (README "Commands"). Exit codes: 0 success, 1 error, 2 changes pending
(`--detailed-exitcode`, `reconcile`), 3 the lease is held by someone else or was lost, 4 something
in the plan is blocked (`plan --detailed-exitcode`)."""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from reconciler import redaction
from reconciler.cli import completion, engine, manifests, sandbox, shards, state  # noqa: F401 — each registers its commands
from reconciler.cli.base import cli
from reconciler.errors import ReconcilerError
from reconciler.render.diagnostics import show_error, show_failure

__all__ = ["cli", "console", "main"]

# Loading 10,000 manifests makes millions of small objects that are not cyclic: at the default
# thresholds the collector rescans them over and over (bench/RESULTS.md). The youngest generation
# is collected every 50,000 allocations instead of 700, the middle one after 50 of those instead
# of 10 (each of its collections walks every object made since: 0.16 s at 10,000 jobs); the
# oldest keeps its own. Only the console script (`console`) uses this, for its own process; a
# library caller's interpreter is left alone.
GC_THRESHOLD = (50_000, 50)

# numpy (geo's arrays of coordinates) starts OpenBLAS's pool of threads on import, for linear
# algebra the reconciler never does; they spin while the command runs: a plan of the five example
# jobs, new, took 0.94–0.97 s of CPU with the pool and 0.77–0.87 s without it, on two cores. The console
# script's process runs with one OpenBLAS thread unless its environment asks for more.
OPENBLAS_THREADS = ("OPENBLAS_NUM_THREADS", "1")


@contextmanager
def tuned_collector() -> Iterator[None]:
    """The console script's collector thresholds for the block, then those it found."""
    threshold = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD, threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def main(argv: list[str] | None = None) -> None:
    """Entry point for callers: every failure becomes a message and an exit code, never a
    traceback. The caller's interpreter is left as it is."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def console() -> None:
    """The `reconciler` console script (and `python -m reconciler`): `main` for this process's
    one run, with the collector tuned for it and no OpenBLAS threads of its own (OPENBLAS_THREADS)."""
    os.environ.setdefault(*OPENBLAS_THREADS)
    with tuned_collector():
        code = run(sys.argv[1:])
    sys.exit(code)


def run(args: list[str]) -> int:
    """Run the command line `args`; the exit code (see the module docstring)."""
    # --debug is a global option (cli.base.GLOBAL_OPTIONS), wanted here even when parsing fails
    options = args[:args.index("--")] if "--" in args else args
    debug = "--debug" in options or bool(os.environ.get("RECONCILER_DEBUG"))
    redaction.forget()
    try:
        code = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Abort:
        code = 130
    except click.ClickException as e:  # usage errors: bad option, missing argument
        e.show()
        code = 1
    except ReconcilerError as e:
        show_failure(e)
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 — the last line of defence
        if debug:
            traceback.print_exc()
        show_error(f"unexpected {type(e).__name__}: {e}", None if debug else "run with --debug for the traceback")
        code = 1
    return code if isinstance(code, int) else 0


