"""`sandbox serve --seed N`: an account of N ready jobs without N requests, and the N manifests
they belong to; recovered by `state rebuild`, they plan as nothing to do. The sandbox lists them
page by page in creation order (the kept order, not a sort per page), and still searches and sorts."""

from __future__ import annotations

import json

from reconciler.sandbox.seed import manifests, name_of

SEEDED = 230  # three pages of 100


def test_a_seeded_account_is_listed_searched_and_planned_as_nothing_to_do(own_sandbox, tmp_path, run_cli,
                                                                              monkeypatch):
    sandbox = own_sandbox("--seed", str(SEEDED), "--seed-dir", str(tmp_path / "m"))
    files = sorted(path.name for path in (tmp_path / "m").glob("*.yaml"))
    assert files == [f"{name_of(i)}.yaml" for i in range(SEEDED)]
    assert (tmp_path / "m" / "evalscripts" / "ndvi.js").is_file()

    http = sandbox.http()
    listed, url, pages = [], "/api/v2/batch/process", 0
    while url:
        answer = http.get(url).json()
        listed += answer["data"]
        pages += 1
        url = answer.get("links", {}).get("next")
    assert pages == 3 and [job["request"]["description"] for job in listed] == [
        f"Seeded job {i:,} [reconciler:{name_of(i)}]" for i in range(SEEDED)]
    assert {job["status"] for job in listed} == {"CREATED"}
    assert http.get("/api/v1/batch/process").json()["data"] == []  # seeded jobs are v2 only

    found = http.get("/api/v2/batch/process", params={"search": name_of(117)}).json()["data"]
    assert [job["id"] for job in found] == [listed[117]["id"]]
    newest = http.get("/api/v2/batch/process", params={"sort": "created:desc", "count": 2}).json()["data"]
    assert [job["id"] for job in newest] == [listed[-1]["id"], listed[-2]["id"]]

    monkeypatch.setenv("RECONCILER_STATE", "s3://reconciler-state/seeded/state.json")
    code, out, err = run_cli("state", "rebuild", "m")
    assert code == 0, out + err
    code, out, err = run_cli("plan", "m", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out + err


def test_a_smaller_seed_leaves_no_manifest_of_a_larger_one(tmp_path):
    folder = tmp_path / "m"
    assert len(list(manifests(folder, 8))) == 8
    (folder / "seed-notes.yaml").write_text("kept: not a seeded manifest\n")
    written = [name for name, _, _ in manifests(folder, 5)]
    assert written == [name_of(i) for i in range(5)]
    assert sorted(p.name for p in folder.glob("*.yaml")) == sorted([f"{n}.yaml" for n in written] + ["seed-notes.yaml"])
    document = json.loads((folder / "seed-000004.yaml").read_text())
    assert document["metadata"]["name"] == "seed-000004" and document["spec"]["state"] == "created"
