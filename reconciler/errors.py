"""The one error hierarchy of the project.

Third-party exceptions (ruamel, pydantic, requests, botocore) are translated into these where they
enter; the CLI turns any of them into a message, an optional hint and the error's exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostic


class ReconcilerError(Exception):
    """Base of every error the user may see. `exit_code` is the README's exit code table."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ReconcilerError):
    """The command line asks for something that cannot be done (bad path, bad option value)."""


class InvalidManifests(ReconcilerError):
    """Manifests failed validation; carries every diagnostic, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(f"{len(errors)} error(s) in the manifests, nothing was planned or changed",
                         "fix them (`reconciler validate` checks manifests offline)")
        self.diagnostics = diagnostics


class StateError(ReconcilerError):
    """The lockfile cannot be read or written (unreadable, newer format, storage failure)."""


class StateConflict(StateError):
    """Someone else wrote the lockfile since it was read; nothing was overwritten."""


class LineageMismatch(StateError):
    """A lockfile (or saved plan) belongs to another state history."""


class LeaseHeld(ReconcilerError):
    """Another run holds the lease: exit 3, naming the holder and the lease id."""

    exit_code = 3


class LeaseLost(ReconcilerError):
    """The lease expired, was broken or was taken over while held: nothing more is started, and the
    run exits 3 (the README's exit codes: the lease is held by someone else, or was lost during the run)."""

    exit_code = 3
