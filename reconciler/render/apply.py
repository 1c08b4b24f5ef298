"""Views of an apply: the confirmation prompt, progress while waiting, and what each action did."""

from __future__ import annotations

import sys

import click

from reconciler.engine.actions import Plan
from reconciler.render import colour_enabled, out, paint, plain


def confirm(plan: Plan) -> bool:
    """Ask on a terminal; never assume yes elsewhere (CI must pass --auto-approve)."""
    if not sys.stdin.isatty():
        from reconciler.errors import ReconcilerError

        raise ReconcilerError("the plan has changes and no terminal to confirm them on", "pass --auto-approve")
    out()
    answer = click.prompt("Do you want to perform these actions? Only 'yes' will be accepted", default="",
                          show_default=False)
    return answer.strip() == "yes"


class Progress:
    """A one-line summary per poll on a terminal (rewritten in place), a line per change elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last: dict[str, str] = {}

    def __call__(self, statuses: dict[str, str]) -> None:
        if self.tty:
            done = sum(1 for s in statuses.values() if s in ("DONE", "ANALYSIS_DONE", "STOPPED", "CANCELED"))
            counts = ", ".join(f"{n} {plain(s)}" for s, n in sorted(_count(statuses).items()))
            bar = "#" * int(20 * done / max(1, len(statuses)))
            click.echo(f"\r[{bar:<20}] {done}/{len(statuses)} · {counts}\x1b[K", nl=False, err=True)
        else:
            for name, status in sorted(statuses.items()):
                if self.last.get(name) != status:
                    click.echo(f"{name}: {plain(status)}", err=True)
        self.last = dict(statuses)

    def finish(self) -> None:
        if self.tty and self.last:
            click.echo("", err=True)


def show_results(outcome, waited: dict[str, str] | None = None) -> None:
    """What each action did, then one summary: done, failed, blocked, deferred, not converged."""
    colour = colour_enabled()
    for result in sorted((*outcome.done, *outcome.deferred, *outcome.failed), key=lambda r: r.action.sort_key()):
        mark = paint("✓", colour, fg="green") if result.ok else paint("✗", colour, fg="red")
        what = f"{result.action.kind.word} {result.action.name}"
        out(f"{mark} {what}: {plain(result.message)}" + (f" ({plain(result.job_id)})" if result.job_id else ""))
    for action in outcome.blocked:
        out(f"{paint('!', colour, fg='red')} blocked {action.name}: {plain(action.reasons[-1]) if action.reasons else ''}")
    for result in outcome.deferred:
        out(f"  {result.action.name}: the start is deferred until the service's estimate is known; "
            "run apply --wait, or apply again later")
    if waited:
        out("Final statuses: " + ", ".join(f"{n} {plain(s)}" for n, s in sorted(waited.items())))
    parts = [f"{len(outcome.done)} action(s) done", f"{len(outcome.failed)} failed", f"{len(outcome.blocked)} blocked",
             f"{len(outcome.deferred)} deferred"]
    if outcome.behind:
        parts.append(f"not converged: {', '.join(outcome.behind)} (see `reconciler status`)")
    word = "Apply complete" if outcome.complete else "Apply incomplete"
    out(paint(f"{word}: {', '.join(parts)}.", colour, fg="green" if outcome.complete else "red", bold=True))


def _count(statuses: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return counts
