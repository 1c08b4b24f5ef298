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


def show_results(results, waited: dict[str, str] | None = None, behind: list[str] = ()) -> None:
    colour = colour_enabled()
    failed = [r for r in results if not r.ok]
    for result in results:
        mark = paint("✓", colour, fg="green") if result.ok else paint("✗", colour, fg="red")
        what = f"{result.action.kind.word} {result.action.name}"
        out(f"{mark} {what}: {plain(result.message)}" + (f" ({plain(result.job_id)})" if result.job_id else ""))
    for result in results:
        if result.pending:
            out(f"  {result.action.name}: the start waits for the service's estimate; run apply --wait or apply again later")
    if waited:
        out("Final statuses: " + ", ".join(f"{n} {plain(s)}" for n, s in sorted(waited.items())))
    if behind:
        out(paint(f"Did not converge: {', '.join(behind)} (see `reconciler status` and `reconciler state show NAME`)",
                  colour, fg="red"))
    summary = f"Apply complete: {len(results) - len(failed)} action(s) done, {len(failed)} failed."
    out(paint(summary, colour, fg="red" if failed else "green", bold=True))


def _count(statuses: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return counts
