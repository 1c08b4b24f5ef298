"""View of a scheduled reconcile: what it did, what waits for review, as text, as JSON
(docs/apply-json.md) and as markdown for a CI job summary (`$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

from reconciler.engine.actions import Plan
from reconciler.render import colour_enabled, out, paint
from reconciler.render.apply import FORMAT_VERSION, final_json, plan_object, result_line, results_json
from reconciler.render.plan import md, md_code, plan_markdown


def show_reconciled(outcome, detect_only: bool) -> None:
    colour = colour_enabled()
    for result in outcome.results:
        out(result_line(result, colour))
    if outcome.deferred:
        verb = "found" if detect_only else "left for review"
        out(paint(f"{len(outcome.deferred)} change(s) {verb}: " +
                  ", ".join(f"{a.kind.word} {a.name}" for a in outcome.deferred), colour, fg="yellow"))
    elif not outcome.results:
        out(paint("In sync: nothing to do.", colour, fg="green"))


def verdict(outcome, detect_only: bool) -> str:
    """One word for the run: failed (an action failed), drift (detecting only, changes found),
    review (changes left for review), converged."""
    if any(not r.ok for r in outcome.results):
        return "failed"
    if outcome.deferred:
        return "drift" if detect_only else "review"
    return "converged"


def reconcile_document(plan: Plan, outcome, detect_only: bool, waited: bool, exit_code: int) -> dict:
    """What `reconcile --format json` prints (docs/apply-json.md): the plan, what was applied with
    its results, what was left for review, where the jobs settled (with --wait), the exit code."""
    return {
        "formatVersion": FORMAT_VERSION,
        "detectOnly": detect_only,
        "plan": plan_object(plan),
        "results": results_json(outcome.results),
        "leftForReview": [{"name": a.name, "kind": a.kind.word, "api": a.api, "jobId": a.job_id,
                           "reasons": list(a.reasons)} for a in outcome.deferred],
        "outcome": verdict(outcome, detect_only),
        "finalStatuses": final_json(outcome.final) if waited and not detect_only else None,
        "exitCode": exit_code,
    }


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
