"""Scope by manifest file (DESIGN §4): the lockfile records the file that declares each job, and a
run acts only on jobs declared inside the paths it was given. Planning another folder against the
same lockfile forgets and stops nothing outside it; a job is removed only when its file, inside
the paths given, no longer declares it."""

from __future__ import annotations

import json

from reconciler.engine.plan import PlanOptions, in_scope, plan
from reconciler.state.model import JobState, Lockfile
from tests.test_engine_chaos import write_manifests
from tests.test_signed_plans import service


def record(file: str | None, name: str = "x") -> JobState:
    return JobState(id=f"id-{name}", api="v2", specHash="0" * 32, status="CREATED", onRemove="stop", file=file)


def test_a_record_is_in_scope_only_when_its_file_is_inside_a_path_given():
    assert in_scope(record("manifests/a/x.yaml"), ("manifests/a",))
    assert in_scope(record("manifests/a/x.yaml"), ("manifests/a/x.yaml",))
    assert in_scope(record("manifests/a/x.yaml"), ("manifests/b", "manifests"))
    assert in_scope(record("manifests/a/x.yaml"), (".",))
    assert not in_scope(record("manifests/ab/x.yaml"), ("manifests/a",))  # a prefix of a name is not a folder
    assert not in_scope(record("manifests/a/x.yaml"), ("manifests/b",))
    assert not in_scope(record(None), ("manifests",))  # written before files were recorded: never removed on a guess
    assert in_scope(record(None), None) and in_scope(None, None)  # no scope given: every record (the pure core's tests)


def test_the_planner_removes_only_records_in_scope_and_says_how_many_it_left():
    jobs = {"inside": record("m4/inside.yaml", "inside"), "outside": record("m2/outside.yaml", "outside"),
            "unknown": record(None, "unknown")}
    lock = Lockfile(jobs=jobs)
    made = plan([], [], lock, PlanOptions(scope=("m4",)))
    assert [(a.name, a.kind.word) for a in made.actions] == [("inside", "forget")]
    assert made.out_of_scope == ("outside", "unknown")
    everything = plan([], [], lock, PlanOptions())
    assert sorted(a.name for a in everything.actions) == ["inside", "outside", "unknown"] and not everything.out_of_scope


def test_planning_another_folder_forgets_and_stops_nothing_outside_it(workspace, run_cli, sandbox):
    prefix = "scope-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    m4 = write_manifests(workspace / "m4", f"{prefix}-four")
    m2 = write_manifests(workspace / "m2", f"{prefix}-two")
    for path in (workspace / "m4").glob("*.yaml"):
        path.write_text(path.read_text().replace("  policy:\n", "  policy:\n    onRemove: stop\n")
                        if "policy:" in path.read_text() else path.read_text() + "  policy:\n    onRemove: stop\n")
    code, out, err = run_cli("apply", "m4", "--auto-approve")
    assert code == 0, out + err
    records = json.loads(run_cli("state", "pull")[1])["jobs"]
    assert {name: records[name]["file"] for name in m4} == {name: f"m4/{name}.yaml" for name in m4}
    before = service(sandbox, f"{prefix}-four")

    code, out, err = run_cli("plan", "m2", "--format", "json")
    planned = json.loads(out)
    assert code == 0 and sorted(planned["outOfScope"]) == sorted(m4), out + err
    assert not [a for a in planned["actions"] if a["name"] in m4]
    code, out, err = run_cli("apply", "m2", "--auto-approve")
    assert code == 0 and "4 recorded job(s) are out of scope" in out, out + err
    after = service(sandbox, f"{prefix}-four")  # the same requests, none stopped (they move on by themselves)
    assert [j[0] for j in after] == [j[0] for j in before] and not {j[1] for j in after} & {"STOPPED", "CANCELED"}
    records = json.loads(run_cli("state", "pull")[1])["jobs"]
    assert set(m4) | set(m2) <= set(records)  # nothing of m4 forgotten

    gone = m4[-1]
    (workspace / "m4" / f"{gone}.yaml").unlink()  # only a run over m4 may remove what m4 declared
    code, out, err = run_cli("plan", "m2", "--format", "json")
    assert code == 0 and gone in json.loads(out)["outOfScope"]
    code, out, err = run_cli("plan", "m4", "--format", "json")
    removed = [a for a in json.loads(out)["actions"] if a["kind"] in ("forget", "stop")]
    assert [a["name"] for a in removed] == [gone] and json.loads(out)["outOfScope"] == sorted(m2)


def test_records_of_an_older_lockfile_get_their_file_on_the_next_apply(workspace, run_cli, sandbox):
    prefix = "older-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    names = write_manifests(workspace / "manifests", prefix)
    for path in (workspace / "manifests").glob("corsica-*.yaml"):
        path.unlink()
    assert run_cli("apply", "--auto-approve")[0] == 0
    document = json.loads(run_cli("state", "pull")[1])
    for job in document["jobs"].values():
        del job["file"]  # as a version-2 lockfile has them
    (workspace / "old.json").write_text(json.dumps({**document, "version": 2}))
    assert run_cli("state", "push", "old.json", "--force")[0] == 0
    assert all("file" not in job for job in json.loads(run_cli("state", "pull")[1])["jobs"].values())
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    records = json.loads(run_cli("state", "pull")[1])["jobs"]
    assert {name: records[name].get("file") for name in names} == {name: f"manifests/{name}.yaml" for name in names}
