"""`reconciler show PLANFILE` (a saved plan, displayed without refreshing: no API call, only the
plan key to check its signature; a damaged one is a one-line error, and text from the service it
carries is shown escaped) and `reconciler shards` (the units every command runs over, JSON for a
CI matrix). How signatures refuse forged plans: tests/test_signed_plans.py."""

from __future__ import annotations

import json
import time

import pytest

from reconciler.operations.planfile import Options, PlanKeys, SavedPlan, load, published, save
from reconciler.render.plan import plan_json, plan_markdown, plan_text
from reconciler.settings import plan_key
from tests.test_render_plan import case_plan

CREDENTIALS = ("SH_CLIENT_ID", "SH_CLIENT_SECRET", "SH_BASE_URL", "SH_TOKEN_URL", "RECONCILER_STATE",
               "RECONCILER_PLAN_KEY")
PLAN_KEY = "a-plan-key-for-these-tests-only"
KEYS = PlanKeys(plan_key({"RECONCILER_PLAN_KEY": PLAN_KEY}))
OPTIONS = Options(("manifests",), None, None, (), False)


@pytest.fixture
def offline(monkeypatch):
    """No credentials and no endpoint, only the plan key: anything that tried to call out would fail."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECONCILER_PLAN_KEY", PLAN_KEY)
    monkeypatch.setenv("NO_COLOR", "1")


def saved(case: str, path: str = "saved.plan") -> tuple:
    made, _ = case_plan(case)
    made = published(made, KEYS)
    save(SavedPlan(made, OPTIONS, 0, "0" * 40), path, KEYS)
    return made, json.loads(open(path).read())


def signed(document: dict, path: str = "saved.plan") -> None:
    """Write `document` signed with the tests' plan key: a plan the trusted side made, whose text
    came from the service (the signature is not what these tests are about)."""
    document = {k: v for k, v in document.items() if k != "signature"}
    document = json.loads(json.dumps(document))
    with open(path, "w") as f:
        json.dump({**document, "signature": KEYS.sign(document)}, f)


@pytest.mark.parametrize("case", ["new", "lifecycle", "mixed", "sensitive"])
def test_show_renders_a_saved_plan_as_plan_did_without_credentials(case, run_cli, offline):
    made, _ = saved(case)
    loaded = load("saved.plan", KEYS)
    assert loaded.plan == made and loaded.options == OPTIONS and loaded.commit == "0" * 40
    views = {"text": plan_text(made, colour=False, saved=loaded), "json": plan_json(made, loaded),
             "markdown": plan_markdown(made, saved=loaded)}
    for fmt, expected in views.items():
        code, out, err = run_cli("show", "saved.plan", "--format", fmt)
        assert (code, err) == (0, "") and out == expected + "\n", fmt
    assert run_cli("show", "saved.plan")[1] == views["text"] + "\n"


def test_show_gives_what_plan_showed_when_it_saved_the_plan(workspace, run_cli, monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", PLAN_KEY)  # kept when the credentials go
    for fmt in ("markdown", "text", "json"):
        code, planned, err = run_cli("plan", "--format", fmt, "--out", "saved.plan")
        assert code == 0, err
        with monkeypatch.context() as offline_now:
            for name in CREDENTIALS[:-1]:
                offline_now.delenv(name, raising=False)
            code, shown, err = run_cli("show", "saved.plan", "--format", fmt)
        assert (code, err) == (0, "") and shown == planned, fmt
    assert "```geojson" in run_cli("show", "saved.plan", "--format", "markdown")[1]


def test_a_saved_plan_carries_the_cards_show_needs(run_cli, offline):
    _, document = saved("new")
    cards = [a["card"] for a in document["plan"]["actions"]]
    assert all(c is not None for c in cards) and cards[1]["tiles"] == 66 and cards[1]["bounds"]
    code, out, _ = run_cli("show", "saved.plan", "--format", "markdown")
    assert code == 0 and "| Job card | |" in out and "```geojson" in out


def test_a_plan_of_the_unsigned_format_is_refused_with_a_way_out(run_cli, offline):
    _, document = saved("new")
    document = {k: v for k, v in document.items() if k not in ("signature", "keyId", "saved")}
    with open("saved.plan", "w") as f:
        json.dump({**document, "formatVersion": 1}, f)
    code, out, err = run_cli("show", "saved.plan")
    assert code == 1 and out == "" and "format version 1" in err and "make the plan again" in err


DAMAGE = {
    "not JSON": lambda d: "{not json",
    "not an object": lambda d: [1, 2],
    "another format": lambda d: {**d, "format": "terraform"},
    "another version": lambda d: {**d, "formatVersion": 3},
    "a duplicate key": lambda d: json.dumps(d)[:-1] + ', "keyId": "0"}',
    "a kind no one knows": lambda d: d["plan"]["actions"][0].update(kind="EXPLODE"),
    "a step no one knows": lambda d: d["plan"]["actions"][0].update(steps=["rm -rf"]),
    "a string for a number": lambda d: d["plan"]["actions"][1]["card"].update(tiles="many"),
    "a negative tile count": lambda d: d["plan"]["actions"][1]["card"].update(tiles=-3),
    "an unknown field": lambda d: d["plan"]["actions"][1]["card"].update(owner="me"),
    "a missing field": lambda d: d["plan"].pop("lineage") and None,
    "a cost of NaN": lambda d: json.dumps(d).replace('"cost_pu": 112.3', '"cost_pu": NaN'),
    "a bool for a serial": lambda d: d["plan"].update(serial=True),
}


@pytest.mark.parametrize("resign", [False, True], ids=["as found", "signed again"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_saved_plan_is_one_line_of_error(damage, resign, run_cli, offline):
    """Damage is refused by the signature; signed again with the key (a file of another version,
    say), by the strict model behind it."""
    _, document = saved("new")
    changed = DAMAGE[damage](document)
    changed = document if changed is None else changed
    if resign and isinstance(changed, dict) and changed.get("formatVersion") == 2:
        signed(changed)
    else:
        with open("saved.plan", "w") as f:
            f.write(changed if isinstance(changed, str) else json.dumps(changed))
    code, out, err = run_cli("show", "saved.plan", "--format", "markdown")
    assert code == 1 and out == "", damage
    assert err.startswith("Error: saved.plan ") and err.count("\n") <= 2 and "Traceback" not in err, err


FORGERIES = {
    "no signature": (lambda d: d.pop("signature"), "is not signed"),
    "options widened": (lambda d: d["saved"].update(allowReplace=True), "was altered since it was signed"),
    "display text changed": (lambda d: d["plan"]["actions"][0].update(reasons=["nothing to see"]), "was altered"),
    "another key id": (lambda d: d.update(keyId="0123456789abcdef"), "was signed with another plan key"),
    "a signature of its own": (lambda d: d.update(signature="hmac-sha256:" + "0" * 64), "was altered"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_show_refuses_a_forged_saved_plan_before_showing_anything(forgery, run_cli, offline):
    _, document = saved("new")
    forge, message = FORGERIES[forgery]
    forge(document)
    with open("saved.plan", "w") as f:
        json.dump(document, f)
    code, out, err = run_cli("show", "saved.plan")
    assert (code, out) == (1, "") and err.startswith(f"Error: saved.plan {message}") and err.count("\n") <= 2, err


def test_text_from_a_saved_plan_is_shown_escaped(run_cli, offline):
    _, document = saved("mixed")
    document["plan"]["lineage"] = "evil\x1b[2J"
    document["plan"]["actions"][0]["name"] = "name\x1b]0;title\x07"
    document["plan"]["actions"][0]["reasons"] = ["line\nbreak <b>bold</b>"]
    signed(document)
    for fmt in ("text", "markdown", "json"):
        code, out, _ = run_cli("show", "saved.plan", "--format", fmt)
        assert code == 0 and "\x1b" not in out and "\x07" not in out, fmt
        assert "<b>bold" not in out or fmt != "markdown"  # markup from a file is never markup in a comment


def test_a_saved_plan_cannot_make_show_tile_the_world(run_cli, offline):
    _, document = saved("new")
    card = document["plan"]["actions"][1]["card"]
    card.update(grid_id=1, resolution=10.0, tiles=3, bounds={"bbox": [-179.9, -79.9, 179.9, 83.9]})
    signed(document)
    start = time.monotonic()
    code, out, _ = run_cli("show", "saved.plan", "--format", "markdown")
    assert code == 0 and time.monotonic() - start < 10
    assert "the map shows the area only" in out


# ---------------------------------------------------------------- shards

CONFIG = """\
[shards.agri]
paths = ["manifests/agri"]
state = "s3://reconciler-state/shards/agri.json"

[shards.forest]
paths = ["manifests/forest", "manifests/shared"]
state = "s3://reconciler-state/shards/forest.json"
"""


def test_shards_lists_reconciler_toml_for_a_ci_matrix(tmp_path, run_cli, offline):
    (tmp_path / "reconciler.toml").write_text(CONFIG)
    for folder in ("agri", "forest", "shared"):
        (tmp_path / "manifests" / folder).mkdir(parents=True)
    code, out, _ = run_cli("shards", "--format", "json")
    assert code == 0 and json.loads(out) == {"shards": [
        {"name": "agri", "paths": ["manifests/agri"], "state": "s3://reconciler-state/shards/agri.json"},
        {"name": "forest", "paths": ["manifests/forest", "manifests/shared"],
         "state": "s3://reconciler-state/shards/forest.json"}]}
    code, out, _ = run_cli("shards")
    assert code == 0 and out.splitlines() == [
        "SHARD   PATHS                               STATE",
        "agri    manifests/agri                      s3://reconciler-state/shards/agri.json",
        "forest  manifests/forest, manifests/shared  s3://reconciler-state/shards/forest.json"]


def test_without_reconciler_toml_there_is_one_default_entry(run_cli, offline, monkeypatch):
    code, out, _ = run_cli("shards", "--format", "json")
    assert code == 0 and json.loads(out) == {"shards": [{"name": None, "paths": ["manifests"], "state": None}]}
    monkeypatch.setenv("RECONCILER_STATE", "s3://bucket/state.json")
    assert json.loads(run_cli("shards", "--format", "json")[1])["shards"][0]["state"] == "s3://bucket/state.json"
    code, out, _ = run_cli("shards")
    assert code == 0 and "No reconciler.toml here" in out and "s3://bucket/state.json" in out


def test_a_broken_reconciler_toml_is_an_error(tmp_path, run_cli, offline):
    (tmp_path / "reconciler.toml").write_text("[shards.agri]\npaths = 'not a list'\nstate = 's3://b/k.json'\n")
    code, _, err = run_cli("shards", "--format", "json")
    assert code == 1 and "shards.agri.paths must be a non-empty list" in err


def test_a_saved_plan_of_100_mb_is_refused_at_once_without_being_read(run_cli, offline):
    with open("saved.plan", "wb") as f:
        f.write(b'{"format": "reconciler-plan", "formatVersion": 2, "plan": "')
        f.truncate(100 * 2**20)  # sparse: 100 MB that cost nothing to make, and would cost to read
    start = time.monotonic()
    code, out, err = run_cli("apply", "saved.plan", "--auto-approve")
    assert (code, out) == (1, "") and "saved.plan is larger than a saved plan can be (64 MiB): not read" in err
    assert time.monotonic() - start < 5 and run_cli("show", "saved.plan")[0] == 1


def test_show_gives_the_whole_comment_body_naming_the_ci_run_that_made_it(run_cli, offline, monkeypatch):
    saved("mixed")
    code, out, _ = run_cli("show", "saved.plan", "--format", "markdown")
    assert code == 0 and out.startswith("<!-- reconciler-plan:default -->\n### Reconciler plan · commit <code>")
    assert "this run" not in out.splitlines()[-1]
    for name, value in (("GITHUB_SERVER_URL", "https://github.com"), ("GITHUB_REPOSITORY", "team/manifests"),
                        ("GITHUB_RUN_ID", "4242")):
        monkeypatch.setenv(name, value)
    code, out, _ = run_cli("show", "saved.plan", "--format", "markdown")
    assert "[this run](https://github.com/team/manifests/actions/runs/4242)" in out.splitlines()[-1]
