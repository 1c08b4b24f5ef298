"""Views of a plan (docs/plan-json.md for the JSON): the step after the pure planner and before apply.

One renderer turns a `Plan` into the three forms a plan is read in: Terraform-like text for a
terminal, versioned JSON for machines (documented in docs/plan-json.md) and markdown for a pull
request comment (render/markdown.py). The three are pure functions of the plan, so the same plan
gives byte-identical output (golden tests); only `show_plan` prints. How each part is said, and
redacted, is shared by the three (render/phrases.py). A plan may come from a saved file
(`reconciler show`): text from it is shown escaped, like text from the service.
"""

from __future__ import annotations

import json

from reconciler.engine.actions import Action, Plan, Unmanaged
from reconciler.operations.planfile import SavedPlan
from reconciler.render import colour_enabled, out, paint, plain
from reconciler.render.markdown import GITHUB_COMMENT_LIMIT, md, md_code, plan_markdown
from reconciler.render.phrases import (
    card_area,
    card_collections,
    card_estimate,
    card_grid,
    card_json,
    card_output,
    card_tiles,
    card_time,
    change_symbol,
    cost_note,
    finite,
    first_difference,
    kinds,
    leaf_changes,
    listed,
    redact,
    saved_line,
    scope_line,
    short_value,
    state_phrase,
    steps_note,
    summary_line,
    unestimated,
)

__all__ = ["GITHUB_COMMENT_LIMIT", "FORMAT_VERSION", "md", "md_code", "plan_json", "plan_markdown", "plan_text",
           "show_plan"]

FORMAT_VERSION = 1

_DIFF_COLOURS = {"+": "green", "-": "red", "~": "yellow"}


def show_plan(plan: Plan, fmt: str, show_unmanaged: bool = False, verbose: bool = False,
              saved: SavedPlan | None = None, run_url: str | None = None) -> None:
    """Print the plan as `text` (coloured on a terminal), `json` or `markdown`; with `saved`, also
    what it was made from and with (a saved plan's commit and options; in markdown the whole
    comment body, its footer naming `run_url`)."""
    if fmt == "json":
        out(plan_json(plan, saved))
    elif fmt == "markdown":
        out(plan_markdown(plan, saved=saved, run_url=run_url))
    else:
        out(plan_text(plan, colour=colour_enabled(), show_unmanaged=show_unmanaged, verbose=verbose, saved=saved))


# ---------------------------------------------------------------- text

def plan_text(plan: Plan, *, colour: bool, show_unmanaged: bool = False, verbose: bool = False,
              saved: SavedPlan | None = None) -> str:
    """Terraform-like text: header, one block per action that needs attention, warnings, summary."""
    lines = [paint(f"Reconciler plan · {plain(state_phrase(plan))} · live fingerprint {plain(plan.fingerprint)}",
                   colour, dim=True)]
    if saved is not None:
        lines.append(paint(plain(saved_line(saved)), colour, dim=True))
    lines.append("")
    shown = listed(plan, verbose)
    if shown:
        present = [k for k in kinds() if any(a.kind is k for a in shown)]
        legend = ", ".join(paint(f"{k.symbol.strip() or '·'} {k.word}", colour, fg=k.value.colour) for k in present)
        lines += [f"Symbols: {legend}", ""]
    for action in shown:
        lines += _text_block(action, colour) + [""]
    if plan.unmanaged:
        lines += _text_unmanaged(plan.unmanaged, show_unmanaged) + [""]
    if plan.out_of_scope:
        lines += [scope_line(plan), ""]
    for warning in plan.warnings:
        lines.append(paint("Warning: ", colour, fg="yellow", bold=True) + plain(warning))
    if plan.warnings:
        lines.append("")
    lines.append(paint(summary_line(plan), colour, bold=True))
    return "\n".join(lines)


def _text_block(action: Action, colour: bool) -> list[str]:
    k = action.kind
    head = paint(f"{k.symbol:>5} {k.word:<8}", colour, fg=k.value.colour, bold=k.changes or None)
    where = ", ".join(plain(x) for x in (f"{action.api} {action.job_id}" if action.job_id else action.api,
                                         action.live_status) if x)
    refused = f"refused: {action.refused.word}" if action.refused is not None else ""
    extras = "  ".join(x for x in (refused, steps_note(action), cost_note(action) and "· " + cost_note(action)) if x)
    lines = [f"{head} {paint(plain(action.name), colour, bold=True)} ({where})" + (f"  {extras}" if extras else "")]
    lines += [f"      {plain(reason)}" for reason in action.reasons]
    for path, value in action.overrides:
        lines.append(f"      with {plain(path)} = {short_value(value, path)}")
    for change in leaf_changes(action.changes):
        symbol = change_symbol(change.before, change.after)
        before, after = short_value(change.before, change.path), short_value(change.after, change.path)
        shown = f"{before} → {after}" if symbol == "~" else (after if symbol == "+" else before)
        if where := first_difference(redact(change.before, change.path), redact(change.after, change.path)):
            shown += f"  ({where})"
        lines.append(f"      {paint(symbol, colour, fg=_DIFF_COLOURS[symbol])} {plain(change.path)}: {shown}")
    return lines + _text_card(action)


def _text_card(action: Action) -> list[str]:
    """The job card in two lines: what the job covers, then where it writes and what it costs."""
    card = action.card
    if card is None:
        return []
    covers = " · ".join((card_grid(card), card_area(card), card_tiles(card), card_time(card), card_collections(card)))
    writes = " · ".join((card_output(card), card_estimate(action)))
    return [f"      job: {plain(covers)}", f"           {plain(writes)}"]


def _text_unmanaged(unmanaged: tuple[Unmanaged, ...], show: bool) -> list[str]:
    count = len(unmanaged)
    if not show:
        return [f"{count} unmanaged live job(s) not shown; `--show-unmanaged` lists them."]
    lines = [f"Unmanaged live jobs ({count}): never touched; `reconciler import NAME ID` adopts one."]
    for u in unmanaged:
        note = f"  ({plain(u.note)})" if u.note else ""
        lines.append(f"      {plain(u.id)} ({u.api}, {plain(u.status)})  {short_value(u.description)}{note}")
    return lines


# ---------------------------------------------------------------- JSON

def plan_json(plan: Plan, saved: SavedPlan | None = None) -> str:
    """The plan as JSON, format version 1 (docs/plan-json.md): keys sorted, values redacted."""
    counts = plan.counts()
    document = {
        "formatVersion": FORMAT_VERSION,
        "lineage": plan.lineage if plan.serial else None,  # no lockfile yet: none to name
        "serial": plan.serial,
        "fingerprint": plan.fingerprint,
        "summary": {
            "counts": {k.word: counts.get(k.word, 0) for k in kinds()},
            "costPU": plan.cost(),
            "changes": len(plan.changes),
            "withoutEstimate": unestimated(plan),
        },
        "actions": [_action_json(a) for a in plan.actions],
        "unmanaged": [{"id": u.id, "api": u.api, "status": u.status, "description": u.description, "note": u.note}
                      for u in plan.unmanaged],
        "warnings": list(plan.warnings),
        "outOfScope": list(plan.out_of_scope),
    }
    if saved is not None:
        o = saved.options
        document["saved"] = {"commit": saved.commit, "shard": o.shard, "paths": list(o.paths),
                             "targets": list(o.targets) if o.targets is not None else None,
                             "selectors": list(o.selectors), "allowReplace": o.allow_replace}
    return json.dumps(finite(document), indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _action_json(a: Action) -> dict:
    return {
        "kind": a.kind.word,
        "symbol": a.kind.symbol,
        "name": a.name,
        "api": a.api,
        "jobId": a.job_id,
        "steps": [str(s) for s in a.steps],
        "reasons": list(a.reasons),
        "changes": [{"path": c.path, "before": redact(c.before, c.path), "after": redact(c.after, c.path)}
                    for c in a.changes],
        "liveStatus": a.live_status,
        "desiredState": a.desired_state,
        "costPU": a.cost,
        "costSource": a.cost_source if a.cost is not None else None,
        "specHash": a.spec_hash,
        "overrides": {path: redact(value, path) for path, value in a.overrides},
        "card": card_json(a),
        "refused": a.refused.word if a.refused is not None else None,
    }
