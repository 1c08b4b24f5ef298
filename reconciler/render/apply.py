"""Views of an apply: the confirmation prompt, progress while waiting (and the line an interrupt
leaves, both on stderr), and what each action did: as text ending in one summary line, or as the
one JSON document of docs/apply-json.md (whose results part `reconcile --format json` shares)."""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable

import click

from reconciler.engine.actions import Plan, Step
from reconciler.render import colour_enabled, out, paint, plain
from reconciler.render.status import STATUS_COLOURS


def confirm(plan: Plan) -> bool:
    """Ask on a terminal; never assume yes elsewhere (CI must pass --auto-approve)."""
    if not sys.stdin.isatty():
        from reconciler.errors import ReconcilerError

        raise ReconcilerError("the plan has changes and no terminal to confirm them on", "pass --auto-approve")
    out()
    answer = click.prompt("Do you want to perform these actions? Only 'yes' will be accepted", default="",
                          show_default=False)
    return answer.strip() == "yes"


# Without a terminal, a job's line comes again at most this often while only its figures move
# (a CI log of a two-hour job stays readable); a new status is shown at once.
CI_INTERVAL = 10.0


class Progress:
    """The jobs while `apply --wait` (or `reconcile --wait`) waits, from each poll's `JobProgress`
    rows. On a terminal: one line per job (status, % done, tiles done/total, PU so far, time since
    the wait started, which stops when the job settles) and a summary line, redrawn in place;
    colour unless NO_COLOR. Elsewhere: `name: STATUS 42% (28/66 tiles) 47.3 PU · 1m05s` when the
    status changes, or when the figures changed and CI_INTERVAL has passed since the job's last line."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.tty = sys.stderr.isatty()
        self.colour = colour_enabled(sys.stderr)
        self.rows: tuple = ()
        self._clock = clock
        self._drawn = 0  # lines of the last drawing, to go back up over
        self._said: dict[str, tuple[str, str, float]] = {}  # name → (status, figures, when) of its last line

    def __call__(self, rows) -> None:
        self.rows = tuple(rows)
        if self.tty:
            self._draw()
        else:
            self._log()

    def interrupted(self, cause: BaseException) -> None:
        """One line after Ctrl-C or SIGTERM: the lease is released by now (the run's `finally` did
        it), and the batch jobs go on at the service; say which ones are still running."""
        how = "Interrupted" if isinstance(cause, KeyboardInterrupt) else "Terminated"
        running = [row for row in self.rows if row.running]
        if not self.rows:
            text = (f"{how}: any lease this run held was released; jobs it already created or started go on "
                    "at the service (`reconciler status` shows them).")
        elif running:
            jobs = ", ".join(f"{plain(row.name)} ({' '.join(filter(None, (plain(row.status), _figures(row)[0])))})"
                             for row in running)
            text = (f"{how}: the lease was released; still running at the service (stopping reconciler does not "
                    f"stop them): {jobs}.")
        else:
            text = f"{how}: the lease was released; no job of this run is running at the service."
        out(paint(text, self.colour, fg="yellow"), err=True)

    def _draw(self) -> None:
        """Over the last drawing; each ends with a new line, so what follows starts on its own."""
        width, height = shutil.get_terminal_size((100, 24))
        lines = _screen(self.rows, max(20, width - 1), max(2, height - 1), self.colour)
        back = f"\x1b[{self._drawn}F" if self._drawn else "\r"
        out(back + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J", err=True, nl=False)
        self._drawn = len(lines)

    def _log(self) -> None:
        now = self._clock()
        for row in self.rows:
            figures = " ".join(filter(None, _figures(row)))
            said = self._said.get(row.name)
            if said is not None and said[0] == row.status and (said[1] == figures or now - said[2] < CI_INTERVAL):
                continue
            self._said[row.name] = (row.status, figures, now)
            out(f"{plain(row.name)}: {' '.join(filter(None, (plain(row.status), figures)))} · {_duration(row.elapsed)}",
                err=True)


def _screen(rows, width: int, room: int, colour: bool) -> list[str]:
    """The lines of one drawing, at most `room` of them, none wider than `width` (a wrapped line
    would break going back up): jobs still moving first when they do not all fit."""
    shown = list(rows)
    if len(rows) > room - 1:
        shown = sorted(rows, key=lambda row: row.settled)[:max(0, room - 2)]
    lines = []
    if shown:
        name_width = max(8, min(max(len(row.name) for row in shown), width - 60))
        lines = [_line(row, name_width, width, colour) for row in shown]
    if len(shown) < len(rows):
        lines.append(f"  … and {len(rows) - len(shown)} more")
    settled = sum(row.settled for row in rows)
    bar = "#" * int(20 * settled / max(1, len(rows)))
    elapsed = max((row.elapsed for row in rows if row.elapsed is not None), default=None)
    lines.append(f"[{bar:<20}] {settled}/{len(rows)} settled · {_duration(elapsed)}"[:width])
    return lines


def _line(row, name_width: int, width: int, colour: bool) -> str:
    percent, tiles, pu = _figures(row)
    name = plain(row.name)
    name = name if len(name) <= name_width else name[:name_width - 1] + "…"
    status = plain(row.status)[:12]
    rest = f" {percent or '-':>4} {tiles:>17} {pu:>13} {_duration(row.elapsed):>7}"
    text = f"{'✓' if row.settled else '·'} {name:<{name_width}}  {status:<12}{rest}"
    if len(text) > width or not colour:
        return text[:width]
    mark = paint("✓", colour, fg="green") if row.settled else "·"
    hue = STATUS_COLOURS.get(status)
    return f"{mark} {name:<{name_width}}  {paint(f'{status:<12}', colour, fg=hue) if hue else f'{status:<12}'}{rest}"


def _figures(row) -> tuple[str, str, str]:
    """'42%', '(28/66 tiles)', '47.3 PU'; each '' when unknown. The percentage is rounded down:
    99.6% of the tiles is not 100%."""
    percent = f"{math.floor(row.percent)}%" if row.percent is not None else ""
    tiles = f"({row.tiles_done}/{row.tiles_total} tiles)" if row.tiles_done is not None and row.tiles_total else ""
    pu = f"{row.pu_so_far:,.1f} PU" if row.pu_so_far is not None else ""
    return percent, tiles, pu


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def plan_view(fmt: str) -> Callable[[Plan], None]:
    """How apply and reconcile show the plan before they act: as text, or (JSON) only inside the
    document they print at the end, so that stdout holds that one document."""
    from reconciler.render.plan import show_plan

    return (lambda plan: None) if fmt == "json" else (lambda plan: show_plan(plan, "text"))


def show_results(outcome, waited: dict[str, str] | None = None) -> None:
    """What each action did, then one summary: done (a start deferred until the service's
    estimate is known included, and said), failed, blocked, not converged."""
    colour = colour_enabled()
    for result in sorted((*outcome.done, *outcome.failed), key=lambda r: r.action.sort_key()):
        out(result_line(result, colour))
    for action in outcome.blocked:
        out(f"{paint('!', colour, fg='red')} blocked {action.name}: {plain(action.reasons[-1]) if action.reasons else ''}")
    if waited:
        out("Final statuses: " + ", ".join(f"{n} {plain(s)}" for n, s in sorted(waited.items())))
    word = "Apply complete" if outcome.complete else "Apply incomplete"
    out(paint(f"{word}: {summary(outcome)}.", colour, fg="green" if outcome.complete else "red", bold=True))


def summary(outcome) -> str:
    """`1 action(s) done, 0 failed, 0 blocked, 1 start(s) deferred until the service's estimate is
    known`: an action whose start is deferred did its other steps, so it is counted done."""
    deferred = len(outcome.deferred)
    parts = [f"{len(outcome.done)} action(s) done", f"{len(outcome.failed)} failed", f"{len(outcome.blocked)} blocked",
             f"{deferred} start(s) deferred until the service's estimate is known" if deferred else "0 deferred"]
    if outcome.behind:
        parts.append(f"not converged: {', '.join(outcome.behind)} (see `reconciler status`)")
    return ", ".join(parts)


def result_line(result, colour: bool) -> str:
    """`✓ create NAME: create, analyse (request id)`; a deferred start says so, and how to go on."""
    mark = paint("✓", colour, fg="green") if result.ok else paint("✗", colour, fg="red")
    message = plain(result.message)
    if result.pending:
        ran = ", ".join(str(step) for step in result.action.steps if step not in deferred_steps(result))
        message = (f"{ran}; " if ran else "") + ("the start is deferred until the service's estimate is known "
                                                 "(run apply --wait, or apply again later)")
    return (f"{mark} {result.action.kind.word} {plain(result.action.name)}: {message}"
            + (f" ({plain(result.job_id)})" if result.job_id else ""))


def deferred_steps(result) -> tuple[Step, ...]:
    """The steps an action left for a later run: only a start that waits for the service's estimate
    (the last step of its action) is ever deferred."""
    return tuple(step for step in result.action.steps if step is Step.START_WITHIN_BUDGET) if result.pending else ()


# ---------------------------------------------------------------- JSON (docs/apply-json.md)

FORMAT_VERSION = 1


def plan_object(plan: Plan) -> dict:
    """The plan as `plan --format json` gives it (docs/plan-json.md), as an object to nest."""
    import json

    from reconciler.render.plan import plan_json

    return json.loads(plan_json(plan))


def apply_document(plan: Plan, outcome, final: dict[str, tuple[str, str]], waited: bool,
                   plan_file: str | None) -> dict:
    """What `apply --format json` prints: the plan, each action's result, the outcome, where the
    jobs settled (with --wait) and the exit code it leads to."""
    return {
        "formatVersion": FORMAT_VERSION,
        "plan": plan_object(plan),
        "planFile": plan_file,
        "results": results_json((*outcome.done, *outcome.failed)),
        "summary": {"done": len(outcome.done), "failed": len(outcome.failed), "blocked": len(outcome.blocked),
                    "deferred": len(outcome.deferred), "behind": list(outcome.behind)},
        "outcome": outcome.verdict,
        "finalStatuses": final_json(final) if waited else None,
        "exitCode": outcome.exit_code,
    }


def results_json(results) -> list[dict]:
    """Each action that ran: ok, pending (a step deferred) or failed, with its message and request."""
    from reconciler.redaction import scrub

    return [{"name": r.action.name, "kind": r.action.kind.word, "steps": [str(s) for s in r.action.steps],
             "result": "failed" if not r.ok else "pending" if r.pending else "ok",
             "deferredSteps": [str(s) for s in deferred_steps(r)], "message": scrub(r.message), "jobId": r.job_id}
            for r in sorted(results, key=lambda r: r.action.sort_key())]


def final_json(final: dict[str, tuple[str, str]]) -> list[dict]:
    """Where each job waited for settled: its spec.state, its status, and whether that is converged."""
    from reconciler.batch.statuses import converged
    from reconciler.redaction import scrub

    return [{"name": name, "desiredState": wanted, "status": scrub(status), "converged": converged(wanted, status)}
            for name, (wanted, status) in sorted(final.items())]
