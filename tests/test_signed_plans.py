"""A saved plan carries no authority of its own (DESIGN §4, §8): it is signed with the plan key and
refused by `apply` when unsigned, signed with another key or altered in any value (options,
actions, display text, digests), with nothing changed at the service; every digest in it is keyed,
so two plan keys give plans that share none; the options of `apply FILE` come from its command
line and must equal the plan's. (The file format's own checks: tests/test_show_and_shards.py.)"""

from __future__ import annotations

import json
import re

import pytest

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.engine.identity import owner
from reconciler.settings import api_settings
from tests.test_hostile_inputs import one_job

KEY, OTHER_KEY = "first-plan-key-0123456789abcdef", "second-plan-key-0123456789abcdef"


def service(sandbox, prefix: str) -> list[tuple]:
    """Every live job marked for a name starting with `prefix`, as (id, status, description)."""
    with BatchClient(api_settings(sandbox.env)) as client:
        return sorted((j.id, j.status, j.description) for api in ("v1", "v2") for j in JobsApi(client, api).list_jobs()
                      if (owner(j.description) or "").startswith(prefix))


def lockfile(sandbox, workspace) -> dict:
    key = f"{workspace.name}/state.json"
    return json.loads(sandbox.s3().get_object(Bucket="reconciler-state", Key=key)["Body"].read())


@pytest.fixture
def reviewed(workspace, run_cli, sandbox, monkeypatch):
    """A job that exists, whose manifest then changed in a way policy refuses (so the reviewed plan
    is "blocked, 0 PU"), and a second manifest to create: the plan saved as saved.plan under KEY."""
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    prefix = "signed-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    manifest = one_job(workspace, prefix + "-a")
    assert run_cli("apply", "--auto-approve")[0] == 0
    manifest.write_text(manifest.read_text().replace("maxCloudCoverage: 70.0", "maxCloudCoverage: 30.0"))
    second = manifest.read_text().replace(f"name: {prefix}-a", f"name: {prefix}-b")
    (workspace / "manifests" / "second.yaml").write_text(second.replace("maxCloudCoverage: 30.0", "maxCloudCoverage: 20.0"))
    code, out, err = run_cli("plan", "--out", "saved.plan", "--detailed-exitcode")
    assert code == 4 and "! blocked" in out and "+ create" in out, out + err  # 4: something is blocked
    return prefix


def forge(document: dict) -> None:
    """What the issue saw done offline to a plan reviewed as "blocked": made a replace, with the
    option that allows it."""
    blocked = next(a for a in document["plan"]["actions"] if a["kind"] == "BLOCKED")
    blocked.update(kind="REPLACE", steps=["create", "start"], reasons=["looks fine"])
    document["saved"]["allowReplace"] = True


FORGERIES = {
    "blocked made a replace": (forge, "altered"),
    "paths narrowed": (lambda d: d["saved"].update(paths=["manifests/elsewhere"]), "altered"),
    "display text changed": (lambda d: next(a for a in d["plan"]["actions"] if a["changes"])["changes"][0].update(
        after="(unchanged)"), "altered"),
    "an action added": (lambda d: d["plan"]["actions"].append({**d["plan"]["actions"][0], "name": "someone-else"}),
                        "altered"),
    "an action dropped": (lambda d: d["plan"]["actions"].pop(), "altered"),
    "a digest recomputed": (lambda d: next(a for a in d["plan"]["actions"] if a["sends"]).update(sends="0" * 32),
                            "altered"),
    "the fingerprint recomputed": (lambda d: d["plan"].update(fingerprint="1" * 32), "altered"),
    "unsigned": (lambda d: d.pop("signature"), "is not signed"),
    "another key id": (lambda d: d.update(keyId="f" * 16), "signed with another plan key"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_apply_refuses_every_forged_plan_and_changes_nothing(forgery, reviewed, workspace, run_cli, sandbox):
    before, recorded = service(sandbox, reviewed), lockfile(sandbox, workspace)
    document = json.loads((workspace / "saved.plan").read_text())
    change, message = FORGERIES[forgery]
    change(document)
    (workspace / "saved.plan").write_text(json.dumps(document, indent=1))
    options = ("--allow-replace",) if forgery == "blocked made a replace" else ()
    code, out, err = run_cli("apply", "saved.plan", *options)
    assert code == 1 and out == "" and message in err and err.count("\n") <= 2, (out, err)
    assert service(sandbox, reviewed) == before and lockfile(sandbox, workspace) == recorded
    assert run_cli("show", "saved.plan")[0] == 1  # show refuses it too


def test_a_plan_signed_with_another_key_is_refused(reviewed, workspace, run_cli, sandbox, monkeypatch):
    before = service(sandbox, reviewed)
    monkeypatch.setenv("RECONCILER_PLAN_KEY", OTHER_KEY)
    code, out, err = run_cli("apply", "saved.plan")
    assert (code, out) == (1, "") and "saved.plan was signed with another plan key" in err
    monkeypatch.delenv("RECONCILER_PLAN_KEY")  # the key derived from SH_CLIENT_SECRET is another key too
    assert "signed with another plan key" in run_cli("apply", "saved.plan")[2]
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "k3y-9z")  # (hidden in any output like any key: not a word here)
    code, _, err = run_cli("show", "saved.plan")
    assert code == 1 and "RECONCILER_PLAN_KEY is too short" in err
    assert service(sandbox, reviewed) == before
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    code, out, err = run_cli("apply", "saved.plan")  # the reviewed plan itself: blocked stays blocked, b is created
    assert code == 1 and "Apply incomplete" in out and "1 blocked" in out, out + err
    assert len(service(sandbox, reviewed)) == len(before) + 1


DIGEST = re.compile(r"\b(?=[0-9]*[a-f])[0-9a-f]{16,}\b")  # 16 hex digits or more, not a decimal number


def test_two_plan_keys_give_plans_that_share_no_digest(reviewed, workspace, run_cli, monkeypatch):
    first = json.loads((workspace / "saved.plan").read_text())
    monkeypatch.setenv("RECONCILER_PLAN_KEY", OTHER_KEY)
    assert run_cli("plan", "--out", "other.plan")[0] == 0
    second = json.loads((workspace / "other.plan").read_text())
    assert first["saved"] == second["saved"] and len(first["plan"]["actions"]) == len(second["plan"]["actions"]) == 2
    pairs = [(first["plan"]["fingerprint"], second["plan"]["fingerprint"]), (first["keyId"], second["keyId"]),
             (first["signature"], second["signature"])]
    for mine, theirs in zip(first["plan"]["actions"], second["plan"]["actions"], strict=True):
        assert mine["name"] == theirs["name"]
        pairs += [(mine["spec_hash"], theirs["spec_hash"]), (mine["sends"], theirs["sends"])]
    present = [(a, b) for a, b in pairs if a is not None]
    assert len(present) >= 6 and all(a != b for a, b in present), pairs
    found = set(DIGEST.findall(json.dumps(first)))  # request ids (UUIDs) have no run of 16 hex digits
    assert found and not found & set(DIGEST.findall(json.dumps(second))), found & set(DIGEST.findall(json.dumps(second)))


def test_apply_takes_its_options_from_its_command_line_and_they_must_be_the_plans(workspace, run_cli, sandbox,
                                                                                 monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    prefix = "options-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    manifest = one_job(workspace, prefix)
    manifest.write_text(manifest.read_text().replace("region: corsica", "region: corsica\n    team2: forest"))
    assert run_cli("plan", "--out", "saved.plan", "--target", prefix, "--selector", "team2=forest",
                   "--allow-replace")[0] == 0
    code, out, _ = run_cli("show", "saved.plan")
    assert code == 0 and f"--target {prefix}" in out and "--selector team2=forest" in out
    assert "--allow-replace yes" in out and "paths manifests" in out
    for given, named in (((), "--target"), (("--target", prefix, "--selector", "team2=forest"), "--allow-replace"),
                         (("--target", prefix, "--allow-replace"), "--selector"),
                         (("manifests/job.yaml", "--target", prefix, "--selector", "team2=forest", "--allow-replace"),
                          "paths: the plan has manifests, this apply manifests/job.yaml")):
        code, out, err = run_cli("apply", "saved.plan", *given)
        assert code == 1 and "the saved plan was made with other options" in err and named in err, (given, err)
    assert service(sandbox, prefix) == []
    code, out, err = run_cli("apply", "saved.plan", "--target", prefix, "--selector", "team2=forest", "--allow-replace")
    assert code == 0, out + err
    assert len(service(sandbox, prefix)) == 1
