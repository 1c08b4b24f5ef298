"""Plan views (reconciler.render.plan): golden plans, redaction, the PR comment limit, colour, JSON.

Golden cases live in tests/golden/plan/<case>/: `manifests/` (evalscripts shared in ../evalscripts/), `live.json`
(a list of LiveJob fields), `lockfile.json` and, optionally, `case.json` with
{"allowReplace": bool, "showUnmanaged": bool, "verbose": bool}. Each runs through the real planner
with the fixed ESTIMATES and ENVIRON below; the text (colour off), JSON and markdown views must equal
plan.txt, plan.json and plan.md byte for byte.

After an intended change to the planner or the views, regenerate the expected files with
    REGENERATE_GOLDEN=1 .venv/bin/pytest -q tests/test_render_plan.py
and review the diff of tests/golden/ like any other change.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.batch.live import LiveJob
from reconciler.engine.actions import Action, JobCard, Kind, Plan, Step, Unmanaged
from reconciler.engine.diff import FieldChange
from reconciler.engine.estimate import Estimator
from reconciler.engine.plan import PlanOptions, plan
from reconciler.manifests.loader import Manifest, load
from reconciler.render.plan import GITHUB_COMMENT_LIMIT, plan_json, plan_markdown, plan_text, show_plan
from reconciler.state.model import Lockfile

GOLDEN = Path(__file__).parent / "golden" / "plan"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "manifests").is_dir())  # evalscripts/ is shared
REGENERATE = os.environ.get("REGENERATE_GOLDEN") == "1"

# The offline PU estimate by manifest name; a geopackage input cannot be estimated offline.
ESTIMATES = {
    "corsica-max-ndvi": 112.3,
    "corsica-max-ndvi-2020": 118.9,
    "corsica-max-ndvi-rerun": 112.3,
    "corsica-max-ndvi-v1": 112.4,
    "corsica-max-ndvi-zarr": 731.2,
    "corsica-ndvi-collection": 98.6,
    "corsica-ndvi-summer": 7250.0,
    "secure-delivery": 45.5,
    "secure-new": 45.5,
    "role-delivery": 45.5,
}
# What ${env:…} references resolve to; the sensitive case asserts none of it is ever shown.
ENVIRON = {
    "RESULTS_BUCKET": "bucket-from-env-7f3a",
    "AWS_KEY_ID": "AKIAFIXEDKEYID00001",
    "AWS_SECRET": "wJalrFIXEDsecretKEY+abc/123",
}
# Credentials that only the live side of the sensitive case holds (the service echoing old values).
LIVE_SECRETS = ("oldSECRETvalue/9876+zz", "AKIAOLDLIVEKEY00009", "liveOnlySecret/ZZZ")
ANSI = re.compile(r"\x1b\[")


def estimate(manifest: Manifest) -> float | None:
    return ESTIMATES.get(manifest.name)


def live_jobs(path: Path) -> list[LiveJob]:
    jobs = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        if item.get("created"):
            item["created"] = datetime.fromisoformat(item["created"])
        jobs.append(LiveJob(**item))
    return jobs


def case_plan(case: str) -> tuple[Plan, dict]:
    folder = GOLDEN / case
    options = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    loaded = load([folder / "manifests"], resolve_env=True, environ=ENVIRON)
    assert loaded.errors == [], loaded.errors
    lockfile = Lockfile.model_validate_json((folder / "lockfile.json").read_text(encoding="utf-8"))
    made = plan(loaded.manifests, live_jobs(folder / "live.json"), lockfile,
                PlanOptions(allow_replace=options.get("allowReplace", False)), estimate, Estimator().card)
    return made, options


def views(made: Plan, options: dict) -> dict[str, str]:
    return {
        "plan.txt": plan_text(made, colour=False, show_unmanaged=options.get("showUnmanaged", False),
                              verbose=options.get("verbose", False)),
        "plan.json": plan_json(made),
        "plan.md": plan_markdown(made),
    }


@pytest.mark.parametrize("case", CASES)
def test_golden_plans(case):
    made, options = case_plan(case)
    for name, produced in views(made, options).items():
        expected_file = GOLDEN / case / name
        if REGENERATE:
            expected_file.write_bytes(produced.encode("utf-8"))
        assert expected_file.exists(), f"{expected_file} is missing: run with REGENERATE_GOLDEN=1"
        assert produced.encode("utf-8") == expected_file.read_bytes(), f"{case}/{name} differs from the golden file"


def test_there_are_golden_cases_for_each_concern():
    assert {"new", "converged", "mixed", "unmanaged", "sensitive", "lifecycle"} <= set(CASES)


def test_the_same_inputs_give_byte_identical_views():
    first, options = case_plan("mixed")
    second, _ = case_plan("mixed")
    assert views(first, options) == views(second, options)


# ---------------------------------------------------------------- what the golden cases hold

def kinds(case: str) -> dict[str, int]:
    return case_plan(case)[0].counts()


def test_the_new_case_creates_all_five_examples():
    made, _ = case_plan("new")
    assert made.counts() == {"create": 5}
    text = plan_text(made, colour=False)
    assert "then analyse, start within budget  · est. 112.3 PU" in text
    assert "Plan: 5 to create · estimated cost" in text


def test_the_converged_case_has_no_changes():
    made, _ = case_plan("converged")
    assert made.changes == () and set(made.counts()) == {"noop"}
    assert plan_text(made, colour=False).endswith("No changes. Live jobs match the manifests.")
    assert json.loads(plan_json(made))["summary"]["changes"] == 0


def test_the_mixed_case_covers_every_attention_kind():
    counts = kinds("mixed")
    assert {"update", "start", "restart", "blocked", "adopt", "forget", "wait"} <= set(counts)
    text = (GOLDEN / "mixed" / "plan.txt").read_text(encoding="utf-8")
    assert "~ tilingGrid.resolution: 60 → 20" in text
    assert "(21 lines) → " in text and "first difference at line" in text


def test_the_unmanaged_case_lists_them_only_when_asked():
    made, _ = case_plan("unmanaged")
    assert len(made.unmanaged) == 3
    hidden = plan_text(made, colour=False)
    shown = plan_text(made, colour=False, show_unmanaged=True)
    assert all(u.id not in hidden for u in made.unmanaged) and all(u.id in shown for u in made.unmanaged)
    assert "3 unmanaged live job(s) not shown" in hidden


def test_markdown_escapes_markup_in_values():
    md = (GOLDEN / "unmanaged" / "plan.md").read_text(encoding="utf-8")
    assert "&#60;b&#62;Corsica&#60;/b&#62;" in md and "&#42;2019&#42;" in md and "&#91;link&#93;" in md
    for raw in ("<b>Corsica", "*2019*", "[link]", "`x`", "$y$", "~~old~~", "NDVI | ", "@octocat", "https://"):
        assert raw not in md  # no markup, and no mention or link either (tests/test_markdown_inert.py)
    assert "<code>" in md  # values sit in <code>, where GitHub mentions no one (md breaks links there too)


def test_the_sensitive_case_never_shows_a_secret():
    made, options = case_plan("sensitive")
    assert any(c.path.endswith("secretAccessKey") for a in made.actions for c in a.changes)
    for name, produced in views(made, options).items():
        for secret in (*ENVIRON.values(), *LIVE_SECRETS):
            assert secret not in produced, f"{secret!r} appears in {name}"
        assert "(sensitive)" in produced, name
    document = json.loads(plan_json(made))
    shown = [c for a in document["actions"] for c in a["changes"] if c["path"].rsplit(".", 1)[-1] in
             ("accessKey", "secretAccessKey")]
    assert shown and all(v in (None, "(sensitive)") for c in shown for v in (c["before"], c["after"]))


def test_redaction_does_not_rely_on_the_planner():
    leaky = Action(Kind.BLOCKED, "job", "v2", "id-1", ("the request changed",), changes=(
        FieldChange("output.delivery.s3.accessKey", "AKIALEAKED", None),
        FieldChange("output.delivery.s3", {"url": "s3://b", "secretAccessKey": "LEAKED/secret"}, None),
        FieldChange("output.delivery.s3.url", "(sensitive:0123456789abcdef)", "s3://b"),
    ), overrides=(("output.delivery.s3.secretAccessKey", "LEAKED2"),))
    made = Plan((leaky,), "lineage", 1, "fp")
    for produced in (plan_text(made, colour=False), plan_json(made), plan_markdown(made)):
        assert "LEAKED" not in produced and "0123456789abcdef" not in produced
        assert "(sensitive)" in produced


# ---------------------------------------------------------------- the PR comment limit

def many_actions(count: int) -> Plan:
    script = "//VERSION=3\n" + "function evaluatePixel(s) { return [s.B04]; }\n" * 40
    actions = tuple(
        Action(Kind.BLOCKED if i % 3 else Kind.CREATE, f"job-{i:05d}", "v2", None if i % 3 == 0 else f"id-{i}",
               ("the request changed; only the description can change in place",
                "set onSpecChange: replace (or --allow-replace) to create a new request"),
               steps=(Step.CREATE, Step.START) if i % 3 == 0 else (),
               changes=(FieldChange("input.resolution", 60, 20),
                        FieldChange("processRequest.evalscript", script, script + "//")),
               cost_pu=12.5, cost_source="estimate")
        for i in range(count))
    return Plan(actions, "lineage", 7, "fingerprint")


def test_a_plan_of_2000_actions_stays_under_githubs_limit_with_a_note():
    made = many_actions(2000)
    md = plan_markdown(made)
    assert len(md) <= 65536
    assert "actions are not shown in full" in md and "`reconciler plan --format json`" in md
    assert "artifact" not in md  # nothing says one exists
    assert md.count("<details") == md.count("</details>") > 0
    shown = md.count("<details")
    assert f"{2000 - shown:,} of 2,000 actions are not shown in full" in md
    blocked = [a.name for a in made.actions if a.kind is Kind.BLOCKED]
    assert len(blocked) == 1333 and all(name in md for name in blocked)  # never cut away, if only by name
    assert "**Also blocked**, not shown in full for room: " in md
    assert "| `+` to create | 667 |" in md  # the summary table always counts everything, as the summary says it


def test_a_plan_that_fits_has_no_note_and_every_limit_is_kept():
    made = many_actions(5)
    assert "not shown" not in plan_markdown(made)
    for limit in (20_000, 5_000, 2_000, 1_000):
        assert len(plan_markdown(many_actions(300), limit=limit)) <= limit


def test_many_warnings_are_counted_not_listed_in_markdown():
    made = Plan((), "lineage", 1, "fp", warnings=tuple(f"job-{i}: more than one live request" for i in range(500)))
    md = plan_markdown(made)
    assert "job-19:" in md and "job-20:" not in md and "and 480 more" in md
    assert len(plan_text(made, colour=False).splitlines()) > 500  # the terminal shows them all


# ---------------------------------------------------------------- colour, JSON, printing

def test_colour_only_when_asked():
    made, _ = case_plan("mixed")
    assert not ANSI.search(plan_text(made, colour=False, show_unmanaged=True, verbose=True))
    coloured = plan_text(made, colour=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", coloured)) == plan_text(made, colour=False)
    assert not ANSI.search(plan_json(made)) and not ANSI.search(plan_markdown(made))


def test_control_characters_from_the_service_cannot_reach_the_terminal():
    made = Plan((), "lineage", 1, "fp", unmanaged=(Unmanaged("id-1", "v2", "DONE", "evil\x1b[2J\nline"),))
    for produced in (plan_text(made, colour=False, show_unmanaged=True), plan_markdown(made)):
        assert "\x1b" not in produced and "evil\nline" not in produced


def test_json_round_trips_with_format_version_1():
    for case in CASES:
        made, _ = case_plan(case)
        document = json.loads(plan_json(made))
        assert document["formatVersion"] == 1
        assert set(document) == {"formatVersion", "lineage", "serial", "fingerprint", "summary", "actions",
                                 "unmanaged", "warnings", "outOfScope"}
        assert document["summary"]["costPU"] == made.cost()
        assert sum(document["summary"]["counts"].values()) == len(document["actions"]) == len(made.actions)
        assert [a["name"] for a in document["actions"]] == [a.name for a in made.actions]
        assert plan_json(made) == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def test_json_actions_carry_every_documented_field():
    made, _ = case_plan("lifecycle")
    fields = {"kind", "symbol", "name", "api", "jobId", "steps", "reasons", "changes", "liveStatus", "desiredState",
              "costPU", "costSource", "specHash", "overrides", "card", "refused"}
    document = json.loads(plan_json(made))
    assert all(set(a) == fields for a in document["actions"])
    assert any(a["overrides"].get("output.skipExisting") is True for a in document["actions"])
    doc = (Path(__file__).parent.parent / "docs" / "plan-json.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in doc for name in fields | set(document) | set(document["summary"]))


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_plan_prints_the_view(fmt, capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    made, _ = case_plan("mixed")
    show_plan(made, fmt)
    expected = {"text": plan_text(made, colour=False), "json": plan_json(made), "markdown": plan_markdown(made)}[fmt]
    assert capsys.readouterr().out == expected + "\n"  # captured output is not a terminal: no colour


# ---------------------------------------------------------------- job cards and the review order

CARD = JobCard(grid_id=0, resolution=60.0, area_km2=1234.5, time_from="2019-04-01T00:00:00Z",
               time_to="2019-06-30T00:00:00Z", collections=("sentinel-2-l2a",), tiles=6, output_type="raster",
               delivery="s3://bucket/prefix/", bounds={"bbox": [9.0, 42.0, 9.3, 42.3]})
TWO_LINE_REASONS = ("the request changed; only the description can change in place",
                    "set onSpecChange: replace (or --allow-replace) to create a new request")


def review_plan(count: int, blocked_every: int = 10) -> Plan:
    """`count` actions of every kind a reviewer meets: one in `blocked_every` blocked (with a diff), as
    many replaced (with a card), the rest creates (with cards), updates and starts."""
    script = "//VERSION=3\n" + "function evaluatePixel(s) { return [s.B04]; }\n" * 40
    diff = (FieldChange("input.resolution", 60, 20), FieldChange("processRequest.evalscript", script, script + "//"))
    actions = []
    for i in range(count):
        name, kind = f"job-{i:05d}", (Kind.BLOCKED, Kind.REPLACE, Kind.CREATE, Kind.CREATE, Kind.UPDATE,
                                      Kind.START)[min(i % blocked_every, 5)]
        carded = kind in (Kind.CREATE, Kind.REPLACE)
        actions.append(Action(kind, name, "v2", None if kind is Kind.CREATE else f"id-{i}",
                              TWO_LINE_REASONS if kind in (Kind.BLOCKED, Kind.REPLACE) else ("new",),
                              steps=(Step.CREATE, Step.START) if carded else (Step.START,) if kind is Kind.START else (),
                              changes=diff if kind in (Kind.BLOCKED, Kind.REPLACE) else (),
                              cost_pu=12.5, cost_source="estimate", card=CARD if carded else None))
    return Plan(tuple(actions), "lineage", 7, "fingerprint")


def test_a_plan_of_1000_actions_has_cards_and_maps_keeps_every_blocked_action_and_fits():
    made = review_plan(1000)
    md = plan_markdown(made)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert "| Job card | |" in md and "```geojson\n{" in md and "| Tiles | 6 tiles |" in md
    blocked = [a.name for a in made.actions if a.kind is Kind.BLOCKED]
    assert len(blocked) == 100 and all(f"<b>blocked</b> {name} " in md for name in blocked)  # all in full
    assert "actions are not shown in full" in md and "artifact" not in md


def test_a_saved_plans_comment_is_the_whole_body_and_fits_at_1000_actions_with_every_part():
    """`show FILE --format markdown` is what a workflow posts, as it is: the marker line first, one
    heading (shard and commit), every part a plan can have, the footer naming the run last, and
    never over GitHub's limit."""
    from dataclasses import replace as with_

    from reconciler.operations.planfile import Options, SavedPlan

    base = review_plan(1000)
    kinds = (Kind.ADOPT, Kind.FORGET, Kind.ANALYSE, Kind.RESTART, Kind.STOP, Kind.WAIT, Kind.NOOP)
    extra = tuple(Action(kind, f"more-{kind.word}-{i}", "v1", f"id-{kind.word}-{i}", ("@someone https://x.example",),
                         steps=(Step.STOP,) if kind is Kind.STOP else ()) for kind in kinds for i in range(3))
    refused = Action(Kind.BLOCKED, "over-budget", "v2", None, ("estimate 13,787.9 PU exceeds maxCostPU 5,000.0",),
                     cost_pu=13787.9, cost_source="estimate", card=CARD, refused=Kind.CREATE)
    made = with_(base, actions=(*base.actions, *extra, refused),
                 unmanaged=tuple(Unmanaged(f"u-{i}", "v2", "DONE", "someone's <b>job</b>") for i in range(50)),
                 warnings=tuple(f"job-{i}: two live requests carry its marker" for i in range(40)),
                 out_of_scope=tuple(f"elsewhere-{i}" for i in range(30)))
    saved = SavedPlan(made, Options(("manifests/agri",), "agri", None, ("team=agri",), False), 3, "ab" * 20)
    url = "https://github.com/team/manifests/actions/runs/7"
    md = plan_markdown(made, saved=saved, run_url=url)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    lines = md.splitlines()
    assert lines[0] == "<!-- reconciler-plan:agri -->"
    assert lines[1] == "### Reconciler plan · shard <code>agri</code> · commit <code>abababababab</code>"
    assert md.count("\n### ") == 1 and not md.startswith("## ") and "\n## " not in md  # one heading
    assert f"[this run]({url})" in lines[-1] and lines[-1].startswith("<sub>Saved plan of commit")
    assert "actions are not shown in full" in md and "| unchanged | 3 |" in md and "| `!` blocked | 101 |" in md
    assert "30 recorded job(s) are out of scope" in md and "live job(s) are not managed" in md and "**Warnings**" in md
    assert "--selector team=agri" in md  # the options it must be applied with
    blocked = [a.name for a in made.actions if a.kind is Kind.BLOCKED]
    assert all(name in md for name in blocked)
    card = md[md.index("over-budget"):]
    assert "| Job card | |" in card[:3000] and "nothing in this run: blocked (est. 13,787.9 PU if it ran)" in card[:3000]
    for limit in (30_000, 5_000):  # every part is kept within any limit, the footer included
        cut = plan_markdown(made, saved=saved, run_url=url, limit=limit)
        assert len(cut) <= limit and cut.startswith("<!-- reconciler-plan:agri -->") and url in cut.splitlines()[-1]
    assert "[this run]" not in plan_markdown(made, saved=saved, run_url="https://x.example/a) [y](https://evil")


def test_blocked_and_replace_come_first_and_open_then_the_rest_collapsed_by_severity():
    md = plan_markdown(review_plan(60))
    headings = re.findall(r"^#### `[^`]+` ([\w ]+) \((\d+)\)$", md, re.M)
    assert [h for h, _ in headings] == ["Blocked", "To replace", "To create", "To update", "To start"]
    assert md.count("<details open>") == 12  # 6 blocked, 6 replace
    first_closed = md.index("<details><summary>")
    assert all(m.start() < first_closed for m in re.finditer("<details open>", md))
    assert "<details open><summary><code>+</code>" not in md


def test_a_cut_comment_drops_the_least_risky_first():
    made = review_plan(60)
    md = plan_markdown(made, limit=20_000)
    assert len(md) <= 20_000
    assert all(f"{a.name} " in md for a in made.actions if a.kind in (Kind.BLOCKED, Kind.REPLACE))
    assert "#### `>` To start" not in md  # the last of the review order went first
    assert "not shown in full" in md


def test_when_blocked_actions_alone_overflow_they_are_still_all_named():
    made = review_plan(600, blocked_every=1)  # every action blocked, each with a long diff
    md = plan_markdown(made)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert all(a.name in md for a in made.actions)
    assert "**Also blocked**, not shown in full for room: " in md and "#### `!` Blocked (600)" in md


def test_the_text_card_is_two_lines_and_json_carries_the_documented_card():
    made, _ = case_plan("new")
    text = plan_text(made, colour=False)
    assert ("      job: grid 0 (20km grid) at 60 m · 20,031.4 km² · 66 tiles · 2019-04-01 → 2019-06-30 · sentinel-2-l2a\n"
            "           raster → s3://reconciler-demo-results/corsica-max-ndvi · est. 112.3 PU") in text
    assert "job: no tiling grid · 20,031.4 km² · GeoPackage input: no offline tiles" in text
    cards = {a["name"]: a["card"] for a in json.loads(plan_json(made))["actions"]}
    assert cards["corsica-max-ndvi-zarr"] == {
        "api": "v2", "grid": {"id": 6, "name": "LAEA 100km grid"}, "resolution": 100.0, "areaKm2": 20031.4,
        "timeRange": {"from": "2019-04-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"},
        "collections": ["sentinel-2-l2a"], "tiles": 6, "output": {"type": "zarr", "delivery": "s3://reconciler-demo-results/zarr/"},
        "estimatePU": 731.2, "note": ""}
    assert cards["corsica-geopackage"]["tiles"] is None and cards["corsica-geopackage"]["grid"] is None
    doc = (Path(__file__).parent.parent / "docs" / "plan-json.md").read_text(encoding="utf-8")
    assert all(f"`{key}`" in doc for card in cards.values() for key in card)


def test_cards_only_on_creates_and_replaces_and_never_with_a_secret():
    made, _ = case_plan("lifecycle")
    assert {a.kind for a in made.actions if a.card is not None} == {Kind.CREATE, Kind.REPLACE, Kind.BLOCKED}
    assert all(a.refused in (Kind.CREATE, Kind.REPLACE) for a in made.actions if a.card and a.kind is Kind.BLOCKED)
    assert not any(a.card for a in made.actions if a.refused is Kind.START)  # a refused start runs nothing new
    made, _ = case_plan("sensitive")
    cards = [a.card for a in made.actions if a.card is not None]
    assert cards and all(card.delivery in ("(sensitive)", "s3://results-bucket/role-delivery") for card in cards)
    assert any(card.delivery == "(sensitive)" for card in cards)


def test_the_map_rounds_coordinates_and_draws_the_tiles():
    from reconciler.render.cardmap import card_map

    drawn = card_map(CARD)
    collection = json.loads(drawn.geojson)
    area, tiles = collection["features"]
    assert area["geometry"]["type"] == "Polygon" and tiles["properties"] == {"kind": "tiles", "tiles": 6}
    numbers = re.findall(r"-?\d+\.\d+", drawn.geojson)
    assert numbers and all(len(n.split(".")[1]) <= 5 for n in numbers)
    assert all(len(ring[0]) == 5 for ring in tiles["geometry"]["coordinates"])  # corners only


def test_the_map_never_tiles_an_area_too_large_to_draw_even_from_a_lying_plan_file():
    import time

    from reconciler.render.cardmap import card_map

    world = JobCard(grid_id=1, resolution=10.0, area_km2=1.0, time_from=None, time_to=None, collections=(), tiles=3,
                    output_type="raster", delivery=None, bounds={"bbox": [-179, -79, 179, 83]})
    start = time.monotonic()
    drawn = card_map(world)  # a saved plan may claim 3 tiles for the world on the 10 km grid
    assert time.monotonic() - start < 2
    assert len(json.loads(drawn.geojson)["features"]) == 1 and "area only" in drawn.note
    many = JobCard(**{**vars(CARD), "tiles": 5000})
    assert "5,000 tiles are too many" in card_map(many).note
    assert card_map(JobCard(**{**vars(CARD), "bounds": None})).geojson is None
    assert card_map(JobCard(**{**vars(CARD), "bounds": {"bbox": "nonsense"}})).geojson is None


def test_every_kind_and_step_carries_every_fact_and_every_view_and_table_covers_them():
    """Everything about a kind lives on the enum (engine/actions.py): a kind added there is sorted,
    coloured, ranked for review, counted and shown by every view, and every step has its handler."""
    from reconciler.engine.actions import Step
    from reconciler.operations.apply import _STEPS

    kinds = list(Kind)
    assert sorted(k.order for k in kinds) == list(range(len(kinds)))
    assert sorted(k.value.review for k in kinds) == list(range(len(kinds)))
    assert len({k.symbol for k in kinds}) == len({k.value.phrase for k in kinds}) == len(kinds)
    assert all(k.value.colour for k in kinds if k is not Kind.NOOP)
    assert {k for k in kinds if k.value.unattended} == {Kind.UPDATE, Kind.ANALYSE, Kind.START, Kind.RESTART, Kind.STOP,
                                                          Kind.ADOPT}
    assert set(_STEPS) == set(Step) and {s for s in Step if s.spends} == {Step.START, Step.START_WITHIN_BUDGET,
                                                                          Step.RESTART}
    made = Plan(tuple(Action(k, f"job-{k.word}", "v2", None, (f"why {k.word}",)) for k in kinds), "lineage", 3, "fp")
    text, document, md = plan_text(made, colour=True), json.loads(plan_json(made)), plan_markdown(made)
    assert set(document["summary"]["counts"]) == {k.word for k in kinds}
    for k in kinds:
        if k is not Kind.NOOP:  # a no-op is listed only when asked (verbose), and counted everywhere
            assert f"job-{k.word}" in text and f"job-{k.word}" in md
        assert k.value.phrase in md
