"""Views of a plan (DESIGN §4, §5): the step after the pure planner and before apply.

One renderer turns a `Plan` into the three forms a plan is read in: Terraform-like text for a
terminal, versioned JSON for machines (documented in docs/plan-json.md) and markdown for a pull
request comment. The three are pure functions of the plan, so the same plan gives byte-identical
output (golden tests); only `show_plan` prints. Every value is redacted here once more, whatever
the planner did: a value already hidden as "(sensitive…" or sitting at a credential key is only
ever shown as "(sensitive)".
"""

from __future__ import annotations

import json
import math
from typing import Any

from reconciler.engine.actions import Action, Kind, Plan, Unmanaged
from reconciler.engine.diff import FieldChange
from reconciler import redaction
from reconciler.redaction import SENSITIVE
from reconciler.render import colour_enabled, out, paint, plain

FORMAT_VERSION = 1
GITHUB_COMMENT_LIMIT = 65536
VALUE_WIDTH = 100  # characters of a value shown in text and markdown before it is shortened
MD_WARNINGS = 20  # warnings listed in a PR comment; the rest are counted (the CI log has them all)

_COLOURS = {
    Kind.CREATE: "green", Kind.START: "green", Kind.RESTART: "green", Kind.ANALYSE: "green",
    Kind.UPDATE: "yellow", Kind.WAIT: "yellow",
    Kind.BLOCKED: "red", Kind.FORGET: "red", Kind.STOP: "red", Kind.REPLACE: "red",
    Kind.ADOPT: "cyan",
}
_PHRASES = {Kind.WAIT: "waiting", Kind.BLOCKED: "blocked", Kind.NOOP: "unchanged"}  # others: "to <word>"
_DIFF_COLOURS = {"+": "green", "-": "red", "~": "yellow"}


def show_plan(plan: Plan, fmt: str, show_unmanaged: bool = False, verbose: bool = False) -> None:
    """Print the plan as `text` (coloured on a terminal), `json` or `markdown`."""
    if fmt == "json":
        out(plan_json(plan))
    elif fmt == "markdown":
        out(plan_markdown(plan))
    else:
        out(plan_text(plan, colour=colour_enabled(), show_unmanaged=show_unmanaged, verbose=verbose))


# ---------------------------------------------------------------- shared: redaction, values, summary

def redact(value: Any, path: str = "") -> Any:
    """`value` (found at the dotted `path`) with every sensitive part replaced by "(sensitive)"."""
    return redaction.redact(value, path.rsplit(".", 1)[-1].split("[", 1)[0] or None)


def short_value(value: Any, path: str = "") -> str:
    """One line for a (redacted) value: JSON, a multi-line string as its first line and line count."""
    value = redact(value, path)
    if value == SENSITIVE:
        return SENSITIVE
    if isinstance(value, str) and "\n" in value.strip("\n"):
        lines = value.splitlines()
        return f"{_cut(_json(lines[0]))} … ({len(lines)} lines)"
    return _cut(_json(value))


def _json(value: Any) -> str:
    return json.dumps(_finite(value), ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become strings rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def pu(value: float) -> str:
    return f"{value:,.1f} PU"


def cost_note(action: Action) -> str:
    if action.cost is None:  # nothing run, nothing spent (or no figure yet: counted in the summary)
        return ""
    if action.cost_source == "estimate":
        return f"est. {pu(action.cost)}"
    return f"{pu(action.cost)} ({action.cost_source or 'service'})"


def steps_note(action: Action) -> str:
    steps = [s.replace("-", " ") for s in action.steps]
    if not steps or steps == [action.kind.word]:
        return ""
    if steps[0] == action.kind.word:
        return "then " + ", ".join(steps[1:])
    return "steps: " + ", ".join(steps)


def unestimated(plan: Plan) -> int:
    """Actions that will spend processing units but have no figure yet (they are not in the total)."""
    return sum(1 for a in plan.actions
               if a.spends and a.cost_pu is None)


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    if not plan.changes and not counts.get("blocked") and not counts.get("wait"):
        return "No changes. Live jobs match the manifests."
    parts = [f"{counts[k.word]} {_PHRASES.get(k, 'to ' + k.word)}" for k in _kinds() if counts.get(k.word)]
    missing = unestimated(plan)
    tail = f" ({missing} action(s) without an estimate)" if missing else ""
    return f"Plan: {', '.join(parts)} · estimated cost {pu(plan.cost())}{tail}"


def _kinds() -> list[Kind]:
    return sorted(Kind, key=lambda k: k.order)


def _listed(plan: Plan, verbose: bool) -> list[Action]:
    return [a for a in plan.actions if verbose or a.kind is not Kind.NOOP]


def leaf_changes(changes: tuple[FieldChange, ...]) -> list[FieldChange]:
    """The changes a person reads: a whole object or same-length list that changed is shown key by
    key (the diff reports an object wholesale when it shares few keys), only where they differ."""
    found: list[FieldChange] = []
    for change in changes:
        found += _leaves(change.path, change.before, change.after)
    return found


def _leaves(path: str, before: Any, after: Any) -> list[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=str)
        return [leaf for k in keys if before.get(k) != after.get(k)
                for leaf in _leaves(f"{path}.{k}", before.get(k), after.get(k))]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [leaf for i, (b, a) in enumerate(zip(before, after)) if b != a for leaf in _leaves(f"{path}[{i}]", b, a)]
    return [FieldChange(path, before, after)]


def _change_symbol(before: Any, after: Any) -> str:
    return "+" if before is None else "-" if after is None else "~"


def first_difference(before: Any, after: Any) -> str:
    """For two multi-line strings (evalscripts), where they start to differ: their first lines
    alone often say nothing."""
    if not (isinstance(before, str) and isinstance(after, str)) or SENSITIVE in (before, after):
        return ""
    if "\n" not in before.strip("\n") and "\n" not in after.strip("\n"):
        return ""
    old, new = before.splitlines(), after.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    return f"first difference at line {line + 1}"


# ---------------------------------------------------------------- text

def plan_text(plan: Plan, *, colour: bool, show_unmanaged: bool = False, verbose: bool = False) -> str:
    """Terraform-like text: header, one block per action that needs attention, warnings, summary."""
    lines = [paint(f"Reconciler plan · state lineage {plan.lineage}, serial {plan.serial} · "
                   f"live fingerprint {plan.fingerprint}", colour, dim=True), ""]
    listed = _listed(plan, verbose)
    if listed:
        kinds = [k for k in _kinds() if any(a.kind is k for a in listed)]
        legend = ", ".join(paint(f"{k.symbol.strip() or '·'} {k.word}", colour, fg=_COLOURS.get(k)) for k in kinds)
        lines += [f"Symbols: {legend}", ""]
    for action in listed:
        lines += _text_block(action, colour) + [""]
    if plan.unmanaged:
        lines += _text_unmanaged(plan.unmanaged, show_unmanaged) + [""]
    for warning in plan.warnings:
        lines.append(paint("Warning: ", colour, fg="yellow", bold=True) + plain(warning))
    if plan.warnings:
        lines.append("")
    lines.append(paint(summary_line(plan), colour, bold=True))
    return "\n".join(lines)


def _text_block(action: Action, colour: bool) -> list[str]:
    k = action.kind
    head = paint(f"{k.symbol:>5} {k.word:<8}", colour, fg=_COLOURS.get(k), bold=k.changes or None)
    where = ", ".join(plain(x) for x in (f"{action.api} {action.job_id}" if action.job_id else action.api,
                                         action.live_status) if x)
    extras = "  ".join(x for x in (steps_note(action), cost_note(action) and "· " + cost_note(action)) if x)
    lines = [f"{head} {paint(action.name, colour, bold=True)} ({where})" + (f"  {extras}" if extras else "")]
    lines += [f"      {plain(reason)}" for reason in action.reasons]
    for path, value in action.overrides:
        lines.append(f"      with {plain(path)} = {short_value(value, path)}")
    for change in leaf_changes(action.changes):
        symbol = _change_symbol(change.before, change.after)
        before, after = short_value(change.before, change.path), short_value(change.after, change.path)
        shown = f"{before} → {after}" if symbol == "~" else (after if symbol == "+" else before)
        if where := first_difference(redact(change.before, change.path), redact(change.after, change.path)):
            shown += f"  ({where})"
        lines.append(f"      {paint(symbol, colour, fg=_DIFF_COLOURS[symbol])} {plain(change.path)}: {shown}")
    return lines


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

def plan_json(plan: Plan) -> str:
    """The plan as JSON, format version 1 (docs/plan-json.md): keys sorted, values redacted."""
    counts = plan.counts()
    document = {
        "formatVersion": FORMAT_VERSION,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "fingerprint": plan.fingerprint,
        "summary": {
            "counts": {k.word: counts.get(k.word, 0) for k in _kinds()},
            "costPU": plan.cost(),
            "changes": len(plan.changes),
            "withoutEstimate": unestimated(plan),
        },
        "actions": [_action_json(a) for a in plan.actions],
        "unmanaged": [{"id": u.id, "api": u.api, "status": u.status, "description": u.description, "note": u.note}
                      for u in plan.unmanaged],
        "warnings": list(plan.warnings),
    }
    return json.dumps(_finite(document), indent=2, sort_keys=True, ensure_ascii=False, default=str)


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
    }


# ---------------------------------------------------------------- markdown

_MD_SPECIAL = set("&<>\\`*_[]|~#$")


def md(text: str) -> str:
    """Text safe anywhere in GitHub markdown or HTML: special characters as numeric entities, which
    markdown shows literally and never reads as markup."""
    return "".join(f"&#{ord(c)};" if c in _MD_SPECIAL else c for c in plain(text))


def md_code(text: str) -> str:
    # HTML <code>, not backticks: it holds any character, and GitHub links no @mention or URL in it
    return f"<code>{md(text)}</code>"


def plan_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A pull request comment of at most `limit` characters: details are dropped from the end,
    with a note, when the whole plan would not fit."""
    head = _md_head(plan)
    blocks = [_md_details(a) for a in _listed(plan, verbose=False)]
    full = "\n\n".join([head, *blocks])
    if len(full) <= limit:
        return full
    longest_note = _md_note(len(blocks), len(blocks), limit)
    room = limit - len(head) - len(longest_note) - 4  # the two separators around the kept details
    kept: list[str] = []
    used = 0
    for block in blocks:
        if used + len(block) > room:
            break
        kept.append(block)
        used += len(block) + 2
    note = _md_note(len(blocks) - len(kept), len(blocks), limit)
    if len(head) + len(note) + 2 > limit:  # only a tiny limit gets here; the head is a few lines
        head = head[: max(0, limit - len(note) - 2)]
    return "\n\n".join([head, *kept, note])


def _md_note(left_out: int, total: int, limit: int) -> str:
    return (f"> **Truncated:** {left_out:,} of {total:,} actions are not shown, to keep this comment under "
            f"{limit:,} characters. See the full plan in the CI log or the JSON artifact (`--format json`).")


def _md_head(plan: Plan) -> str:
    counts = plan.counts()
    rows = ["| Action | Jobs |", "| :-- | --: |"]
    for k in _kinds():
        if counts.get(k.word):
            symbol = f"`{k.symbol}` " if k.symbol.strip() else ""
            rows.append(f"| {symbol}{k.word} | {counts[k.word]} |")
    missing = unestimated(plan)
    extra = f" ({missing} action(s) without an estimate)" if missing else ""
    rows.append(f"| **Estimated cost** | **{pu(plan.cost())}**{extra} |")
    parts = ["### Reconciler plan", f"**{md(summary_line(plan))}**", "\n".join(rows),
             f"<sub>state lineage {md_code(plan.lineage)}, serial {plan.serial} · live fingerprint "
             f"{md_code(plan.fingerprint)}</sub>"]
    if plan.unmanaged:
        parts.append(f"{len(plan.unmanaged)} live job(s) are not managed by these manifests and are never touched; "
                     "`reconciler plan --show-unmanaged` lists them.")
    if plan.warnings:
        items = [f"- {md(w)}" for w in plan.warnings[:MD_WARNINGS]]
        if len(plan.warnings) > MD_WARNINGS:
            items.append(f"- … and {len(plan.warnings) - MD_WARNINGS:,} more (see the CI log)")
        parts.append("**Warnings**\n\n" + "\n".join(items))
    return "\n\n".join(parts)


def _md_details(action: Action) -> str:
    k = action.kind
    where = ", ".join(md(x) for x in (action.api, action.live_status) if x)
    extras = " · ".join(md(x) for x in (steps_note(action), cost_note(action)) if x)
    summary = f"<code>{md(k.symbol)}</code> <b>{k.word}</b> {md(action.name)} ({where})"
    summary += f" · {extras}" if extras else ""
    body = [f"- {md(reason)}" for reason in action.reasons]
    if action.job_id:
        body.append(f"- request {md_code(action.job_id)}")
    body += [f"- with {md_code(path)} = {md_code(short_value(value, path))}" for path, value in action.overrides]
    parts = [f"<details><summary>{summary}</summary>", "\n".join(body)]
    if action.changes:
        rows = ["| | Field | Live | Desired |", "| :-: | :-- | :-- | :-- |"]
        for c in leaf_changes(action.changes):
            before = md_code(short_value(c.before, c.path)) if c.before is not None else ""
            after = md_code(short_value(c.after, c.path)) if c.after is not None else ""
            if where := first_difference(redact(c.before, c.path), redact(c.after, c.path)):
                after += f" ({where})"
            rows.append(f"| `{_change_symbol(c.before, c.after)}` | {md_code(c.path)} | {before} | {after} |")
        parts.append("\n".join(rows))
    parts.append("</details>")
    return "\n\n".join(p for p in parts if p)
