"""View of a scheduled reconcile: what it did, what waits for review, as text and as markdown for
a CI job summary (`$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

from reconciler.render import colour_enabled, out, paint
from reconciler.render.plan import md, md_code, plan_markdown


def show_reconciled(outcome, detect_only: bool) -> None:
    colour = colour_enabled()
    for result in outcome.results:
        mark = paint("✓", colour, fg="green") if result.ok else paint("✗", colour, fg="red")
        out(f"{mark} {result.action.kind.word} {result.action.name}: {result.message}")
    if outcome.deferred:
        verb = "found" if detect_only else "left for review"
        out(paint(f"{len(outcome.deferred)} change(s) {verb}: " +
                  ", ".join(f"{a.kind.word} {a.name}" for a in outcome.deferred), colour, fg="yellow"))
    elif not outcome.results:
        out(paint("In sync: nothing to do.", colour, fg="green"))


def reconcile_markdown(outcome, detect_only: bool, shard: str | None = None) -> str:
    title = "## Reconcile " + ("(detect only)" if detect_only else "report") + (f" · shard {md(shard)}" if shard else "")
    lines = [title, ""]
    if outcome.results:
        lines += ["| action | job | result |", "|---|---|---|"]
        lines += [f"| {md(r.action.kind.word)} | {md_code(r.action.name)} | {'✅' if r.ok else '❌'} {md(r.message)} |"
                  for r in outcome.results]
        lines.append("")
    if outcome.deferred:
        lines.append(f"**{len(outcome.deferred)} change(s) {'found' if detect_only else 'need review'}:** "
                     + ", ".join(f"{md(a.kind.word)} {md_code(a.name)}" for a in outcome.deferred))
        lines.append("")
    elif not outcome.results:
        lines += ["Live jobs match the manifests.", ""]
    lines.append(plan_markdown(outcome.plan, limit=60000))
    return "\n".join(lines) + "\n"
