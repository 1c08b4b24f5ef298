"""Untrusted text in a pull request comment or a CI job summary does nothing: GitHub decodes
entities before it looks for @mentions, #references and links, so the markdown views (render/
markdown.py, render/reconcile.py) break those too, and never let a manifest or the service write
markup. A reader still sees every character."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest

from reconciler.engine.actions import Action, Kind, Plan
from reconciler.engine.diff import FieldChange
from reconciler.engine.plan import PlanOptions, plan
from reconciler.operations.apply import ActionResult
from reconciler.operations.run import Reconciled
from reconciler.render.markdown import WORD_JOINER, md, md_code, md_item, plan_markdown
from reconciler.render.reconcile import reconcile_markdown
from reconciler.state.model import Lockfile
from tests.test_engine_plan import live, manifest, record

HOSTILE = ("@someone", "#12", "org/repo#3", "GH-7", "https://evil.example/x", "http://evil.example",
           "ftp://evil.example", "www.evil.example", "a@b.example", "mailto:x@evil.example", "<h2>x</h2>",
           "<img src=x onerror=alert(1)>", "<!--", "-->", "<details>", "`", "|", "[x](https://e.example)",
           "**bold**", "~~gone~~", "$math$", "\\")
TEXT = " ".join(HOSTILE)
# What GitHub would act on, as it would stand in the markdown source: none of it may be there. (A
# "#12" may: "&#124;" is a pipe. References are looked for in the decoded text instead.)
IN_SOURCE = ("@someone", "a@b.example", "https://", "http://", "ftp://", "www.", "mailto:x", "GH-7", "repo#3",
             "<h2>", "<img", "<!--", "[x](", "**bold", "~~gone", "$math")
# What GitHub would act on once it has decoded the entities.
ACTED_ON = re.compile(r"@\w|#\d|\bGH-\d|(?:https?|ftp)://|\bwww\.|mailto:\w", re.I)


def visible(markdown: str) -> str:
    """The text a reader sees: entities decoded, word joiners dropped."""
    return html.unescape(markdown).replace(WORD_JOINER, "")


def assert_inert(markdown: str) -> None:
    for raw in IN_SOURCE:
        assert raw not in markdown, raw
    assert not ACTED_ON.search(html.unescape(markdown)), ACTED_ON.search(html.unescape(markdown))


def hostile_plan() -> Plan:
    blocked = Action(Kind.BLOCKED, f"job {TEXT}", "v2", f"id {TEXT}", (f"the service said: {TEXT}", f"- {TEXT}"),
                     changes=(FieldChange("description", "plain", TEXT),
                              FieldChange(f"output.{TEXT}", TEXT, None)),
                     live_status=f"FAILED {TEXT}", overrides=(("output.path", TEXT),))
    update = Action(Kind.UPDATE, "job-b", "v2", "id-2", (TEXT, "1. numbered", "+ plus", "   indented"))
    return Plan((blocked, update), f"lineage {TEXT}", 3, f"fingerprint {TEXT}", warnings=(TEXT, f"- {TEXT}"))


def test_md_breaks_each_pattern_and_keeps_its_characters():
    for raw in HOSTILE:
        escaped = md(raw)
        assert visible(escaped) == raw
        assert not ACTED_ON.search(html.unescape(escaped)), raw
        assert not re.search(r"[<>`|\[\]*~$\\]", escaped), raw  # every markup character an entity
    assert md("a @ b, x@ and C# 5") == "a @ b, x@ and C&#35; 5"  # nothing to break: left as it is
    assert md_code("@x") == f"<code>@{WORD_JOINER}x</code>"


@pytest.mark.parametrize(("text", "item"), [
    ("- a", "- &#45; a"), ("+", "- &#43;"), ("1. a", "- 1&#46; a"), ("12) a", "- 12&#41; a"), (" a", "- &#32;a"),
    ("1.5 PU", "- 1.5 PU"), ("-5", "- -5"), ("plain", "- plain"),
])
def test_a_list_item_cannot_open_a_nested_list_or_a_code_block(text, item):
    assert md_item(text) == item


def test_a_plan_comment_of_hostile_text_does_nothing():
    markdown = plan_markdown(hostile_plan())
    assert_inert(markdown)
    assert TEXT in visible(markdown)  # the reader sees it all
    assert markdown.count("<details") == 2 and markdown.count("</details>") == 2  # the view's own, no more
    assert "- &#45; " in markdown  # a reason or warning that starts like a list item stays text


def test_a_reconcile_report_of_hostile_text_does_nothing():
    made = hostile_plan()
    outcome = Reconciled(plan=made, results=(ActionResult(made.actions[1], False, f"400 Bad Request: {TEXT}"),),
                         deferred=(made.actions[0],), final={})
    markdown = reconcile_markdown(outcome, detect_only=False, shard=f"shard {TEXT}")
    assert_inert(markdown)
    assert f"400 Bad Request: {TEXT}" in visible(markdown) and f"shard {TEXT}" in visible(markdown)
    table = [line for line in markdown.splitlines() if line.startswith("| update |")]
    assert len(table) == 1 and table[0].count("|") == 4  # the message's pipes do not add cells


def test_descriptions_and_errors_through_the_planner_stay_inert(tmp_path):
    m = manifest(tmp_path, description=f"wanted {TEXT}", state="started")
    failed = replace(live(status="FAILED", description="old"), error=f"processing failed: {TEXT}")
    made = plan([m], [failed], Lockfile(lineage="lineage", jobs={"job": record(m, status="FAILED")}), PlanOptions(),
                lambda _: None)
    markdown = plan_markdown(made)
    assert_inert(markdown)
    assert f"processing failed: {TEXT}" in visible(markdown)  # the job's error, as a reason
    assert "wanted @someone #12 org/repo#3" in visible(markdown)  # the description, in the diff
