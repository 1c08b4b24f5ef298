"""The plan as a pull request comment (`plan --format markdown`, `show --format markdown`): the
markdown view of render/plan.py, read by a reviewer who must not miss the risky part.

- A summary table, then one section per kind in review order: blocked, replace, stop, forget,
  create, update, then the rest. Blocked and replace actions are shown open; the others are
  collapsed `<details>`.
- Each create and replace shows its job card and a ```geojson block of its area and tiles, which
  GitHub draws as a map (render/cardmap.py; made only for the cards a comment shows).
- GitHub refuses a comment over 65,536 characters. Past the limit actions are dropped from the
  end of the review order, with a note; a blocked action is never dropped: those that do not fit
  in full are still named. The note points only to what surely exists: the JSON view of the
  plan and `reconciler show` of a saved plan.
- Text from outside (manifests, the service, lease holders) goes through `md`/`md_code`/`md_item`
  only: it can neither write markup nor mention, reference or link anything (docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from reconciler.engine.actions import Action, Kind, Plan
from reconciler.operations.planfile import SavedPlan
from reconciler.render import plain
from reconciler.render.phrases import (
    card_area,
    card_collections,
    card_estimate,
    card_grid,
    card_tiles,
    card_time,
    change_symbol,
    cost_note,
    first_difference,
    kinds,
    leaf_changes,
    listed,
    phrase,
    pu,
    redact,
    saved_line,
    scope_line,
    short_value,
    state_phrase,
    steps_note,
    summary_line,
    unestimated,
)

GITHUB_COMMENT_LIMIT = 65536
MD_WARNINGS = 20  # warnings listed in a PR comment; the rest are counted (the CI log has them all)
_MD_SPECIAL = set("&<>\\`*_[]|~#$")
WORD_JOINER = "\u2060"  # invisible, and never a line break: the text reads as it was
# Where GitHub would act on plain text, which it does after decoding entities: an @mention or an
# address (`a@b.example`), a reference (`#12`, `GH-12`, `owner/repo#12`), an autolinked URL
# (`https://`, `http://`, `ftp://`, `www.`, `mailto:`, `xmpp:`). A word joiner at each of these
# points breaks the pattern and leaves the characters. Bare commit hashes are left alone: GitHub
# links only hashes of this repository's commits, tells no one, and request ids look like them.
_ACTED_ON = re.compile(r"(?i:@(?=\w)|#(?=\d)|gh-(?=\d)|(?:https?|ftp):(?=//)|mailto:|xmpp:|www(?=\.))")
# At the start of a list item: what would open a nested list or an indented code block.
_BLOCK_START = re.compile(r"^(?:[-+](?= |$)|\d{1,9}(?=[.)](?: |$))| )")


def md(text: str) -> str:
    """Text safe anywhere inline in GitHub markdown or HTML: special characters as numeric entities,
    which markdown shows literally and never reads as markup, and mentions, references and links
    made inert (`_inert`). Every text from outside (service, manifests, lease holders) goes here."""
    return "".join(f"&#{ord(c)};" if c in _MD_SPECIAL else c for c in _inert(plain(text)))


def _inert(text: str) -> str:
    lower = text.lower()  # most texts hold none of the patterns: a few substring tests, not a regex pass
    if "@" in text or "#" in text or ":" in text or "www." in lower or "gh-" in lower:
        return _ACTED_ON.sub(lambda found: found.group(0) + WORD_JOINER, text)
    return text


def md_code(text: str) -> str:
    # HTML <code>, not backticks: it holds any character, and GitHub mentions no one in it (md
    # still breaks links: the autolinker reads the text between HTML tags like any other)
    return f"<code>{md(text)}</code>"


def md_item(text: str) -> str:
    """A list item of `text`: md, and a start that would open a nested list or a code block encoded."""
    escaped = md(text)
    start = _BLOCK_START.match(escaped)
    if start is None:
        return f"- {escaped}"
    at = start.end() if start.group(0)[0].isdigit() else 0  # the "." of "1." or the "-" itself
    return f"- {escaped[:at]}&#{ord(escaped[at])};{escaped[at + 1:]}"


def plan_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT, saved: SavedPlan | None = None,
                  run_url: str | None = None) -> str:
    """A pull request comment of at most `limit` characters (see the module docstring). With
    `saved` (a saved plan), the whole comment body: a marker line a workflow finds the comment by,
    one heading with the shard and commit, and a footer that names the run (`run_url`) that made it."""
    head = _md_head(plan, saved)
    footer = _md_footer(saved, run_url) if saved is not None else ""
    actions = sorted(listed(plan, verbose=False), key=lambda a: (a.kind.value.review, a.sort_key()))
    counts = plan.counts()
    blocked = [a.name for a in actions if a.kind is Kind.BLOCKED]
    room = limit - len(head) - len(_md_note(len(actions), len(actions), limit)) - 2 - _size(footer)
    # while blocked actions are placed, room is kept to name every one that does not fit in full
    reserve = _size(_md_heading(Kind.BLOCKED, counts), _md_also_blocked(blocked)) if blocked else 0
    parts: list[str] = []
    used, shown, headed = 0, 0, set()
    for action in actions:
        heading = "" if action.kind in headed else _md_heading(action.kind, counts)
        keep = reserve if action.kind is Kind.BLOCKED else 0
        block = next((b for b in _md_forms(action) if used + _size(heading, b) + keep <= room), None)
        if block is None:
            break
        parts += [heading, block] if heading else [block]
        used, shown = used + _size(heading, block), shown + 1
        headed.add(action.kind)
    if shown == len(actions):
        return "\n\n".join(p for p in (head, *parts, footer) if p)
    if left := blocked[shown:]:  # blocked actions come first: those not shown are the last ones
        heading = "" if Kind.BLOCKED in headed else _md_heading(Kind.BLOCKED, counts)
        parts += [p for p in (heading, _md_also_blocked(left, room - used - _size(heading) - 2)) if p]
    note = _md_note(len(actions) - shown, len(actions), limit)
    if len(head) + len(note) + 2 + _size(footer) > limit:  # only a tiny limit gets here; the head is a few lines
        head = head[: max(0, limit - len(note) - 2 - _size(footer))]
    return "\n\n".join(p for p in (head, *parts, note, footer) if p)


def _size(*parts: str) -> int:
    """Characters that `parts` add to the comment, with the blank lines between them."""
    return sum(len(p) + 2 for p in parts if p)


def _md_heading(kind: Kind, counts: dict[str, int]) -> str:
    symbol = f"`{kind.symbol}` " if kind.symbol.strip() else ""
    return f"#### {symbol}{phrase(kind).capitalize()} ({counts.get(kind.word, 0):,})"


RUN_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?/[A-Za-z0-9._~/%-]+")  # a CI run's page, nothing that ends a link


def marker(saved: SavedPlan) -> str:
    """The first line of a saved plan's comment: how a workflow finds the comment of a shard again."""
    return f"<!-- reconciler-plan:{saved.options.shard or 'default'} -->"


def _md_footer(saved: SavedPlan, run_url: str | None) -> str:
    made = f", made by [this run]({run_url})" if run_url and RUN_URL.fullmatch(run_url) else ""
    return (f"<sub>Saved plan of commit {md_code(saved.commit or '(not in git)')}{made}. Applying it applies exactly "
            "these actions, and only while nothing they rest on has moved.</sub>")


def _md_also_blocked(names: list[str], room: float = float("inf")) -> str:
    """The blocked actions not shown in full, by name, within `room` characters (when even their
    names do not fit, the rest are counted)."""
    lead = "**Also blocked**, not shown in full for room: "
    text = lead + ", ".join(md(n) for n in names)
    if len(text) <= room:
        return text
    tail = len(f", and {len(names):,} more")
    if len(lead) + tail > room:
        return ""
    kept, length = [], len(lead)
    for name in names:
        if length + len(md(name)) + 2 + tail > room:
            break
        kept.append(md(name))
        length += len(kept[-1]) + 2
    return lead + ", ".join(kept) + f"{', ' if kept else ''}and {len(names) - len(kept):,} more"


def _md_note(left_out: int, total: int, limit: int) -> str:
    return (f"> **Truncated:** {left_out:,} of {total:,} actions are not shown in full, to keep this comment under "
            f"{limit:,} characters. The full plan: `reconciler plan --format json`, or `reconciler show PLANFILE` "
            "for a plan saved with `--out`.")


def _md_head(plan: Plan, saved: SavedPlan | None = None) -> str:
    counts = plan.counts()
    rows = ["| Action | Jobs |", "| :-- | --: |"]
    for k in kinds():
        if counts.get(k.word):
            symbol = f"`{k.symbol}` " if k.symbol.strip() else ""
            rows.append(f"| {symbol}{phrase(k)} | {counts[k.word]} |")
    missing = unestimated(plan)
    extra = f" ({missing} action(s) without an estimate)" if missing else ""
    rows.append(f"| **Estimated cost** | **{pu(plan.cost())}**{extra} |")
    state = (f"state lineage {md_code(plan.lineage)}, serial {plan.serial}" if plan.serial
             else md(state_phrase(plan)))
    title = "### Reconciler plan"
    if saved is not None:
        shard = f" · shard {md_code(saved.options.shard)}" if saved.options.shard else ""
        title = f"{marker(saved)}\n{title}{shard} · commit {md_code((saved.commit or '(not in git)')[:12])}"
    parts = [title, f"**{md(summary_line(plan))}**", "\n".join(rows),
             f"<sub>{state} · live fingerprint {md_code(plan.fingerprint)}</sub>"]
    if saved is not None:
        parts.append(f"<sub>{md(saved_line(saved))}</sub>")
    if plan.out_of_scope:
        parts.append(md(scope_line(plan)))
    if plan.unmanaged:
        parts.append(f"{len(plan.unmanaged)} live job(s) are not managed by these manifests and are never touched; "
                     "`reconciler plan --show-unmanaged` lists them.")
    if plan.warnings:
        items = [md_item(w) for w in plan.warnings[:MD_WARNINGS]]
        if len(plan.warnings) > MD_WARNINGS:
            items.append(f"- … and {len(plan.warnings) - MD_WARNINGS:,} more (see the CI log)")
        parts.append("**Warnings**\n\n" + "\n".join(items))
    return "\n\n".join(parts)


def _md_forms(action: Action) -> Iterator[str]:
    """The action's block, then (for a card with a map) the same without its map, which is large."""
    if action.card is None:
        yield _md_details(action, None)
        return
    from reconciler.render.cardmap import card_map

    drawn = card_map(action.card)
    yield _md_details(action, drawn)
    if drawn.geojson is not None:
        yield _md_details(action, None)


def _md_details(action: Action, drawn) -> str:
    """One action as `<details>` (open for blocked and replace): reasons, changes, job card, map."""
    k = action.kind
    where = ", ".join(md(x) for x in (action.api, action.live_status) if x)
    refused = f"refused: {action.refused.word}" if action.refused is not None else ""
    extras = " · ".join(md(x) for x in (refused, steps_note(action), cost_note(action)) if x)
    summary = f"<code>{md(k.symbol)}</code> <b>{k.word}</b> {md(action.name)} ({where})"
    summary += f" · {extras}" if extras else ""
    body = [md_item(reason) for reason in action.reasons]
    if action.job_id:
        body.append(f"- request {md_code(action.job_id)}")
    body += [f"- with {md_code(path)} = {md_code(short_value(value, path))}" for path, value in action.overrides]
    parts = [f"<details{' open' if k.value.open else ''}><summary>{summary}</summary>", "\n".join(body),
             _md_changes(action), *_md_card(action, drawn), "</details>"]
    return "\n\n".join(p for p in parts if p)


def _md_changes(action: Action) -> str:
    if not action.changes:
        return ""
    rows = ["| | Field | Live | Desired |", "| :-: | :-- | :-- | :-- |"]
    for c in leaf_changes(action.changes):
        before = md_code(short_value(c.before, c.path)) if c.before is not None else ""
        after = md_code(short_value(c.after, c.path)) if c.after is not None else ""
        if where := first_difference(redact(c.before, c.path), redact(c.after, c.path)):
            after += f" ({where})"
        rows.append(f"| `{change_symbol(c.before, c.after)}` | {md_code(c.path)} | {before} | {after} |")
    return "\n".join(rows)


def _md_card(action: Action, drawn) -> list[str]:
    """The job card as a table, and its map (`drawn`; None: left out for room)."""
    card = action.card
    if card is None:
        return []
    rows = ["| Job card | |", "| :-- | :-- |", f"| API | {md(action.api)} |", f"| Grid | {md(card_grid(card))} |",
            f"| Area | {md(card_area(card))} |", f"| Tiles | {md(card_tiles(card))} |",
            f"| Time range | {md(card_time(card))} |", f"| Collections | {md(card_collections(card))} |",
            f"| Output | {md(card.output_type or '–')} |",
            f"| Delivery | {md_code(card.delivery) if card.delivery else '–'} |",
            f"| Estimate | {md(card_estimate(action))} |"]
    parts = ["\n".join(rows)]
    if drawn is None:
        parts.append("<sub>map left out to keep this comment short</sub>")
    else:
        if drawn.geojson is not None:
            parts.append(f"```geojson\n{drawn.geojson}\n```")
        if drawn.note:
            parts.append(f"<sub>{md(drawn.note)}</sub>")
    return parts
