"""`reconciler status` against the sandbox: manifests whose variables are unset, the versioned
camelCase JSON, the two cost figures (PU so far, estimate), jobs chosen by NAME beside PATHS, and
progress while jobs process — v2 from its percentage and the offline tiles, v1 from its tiles."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import EXAMPLES, copy_evalscripts

JOB_KEYS = {"name", "api", "manifest", "desiredState", "jobId", "status", "percentDone", "tilesDone", "tilesTotal",
            "costPU", "estimatePU", "estimateSource", "lastAction"}


@pytest.fixture
def here(sandbox, tmp_path, monkeypatch):
    """The shared sandbox, a lockfile of this test's own, and a suffix that keeps its job names apart."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECONCILER_STATE", f"s3://reconciler-state/status/{tmp_path.name}.json")
    monkeypatch.setenv("NO_COLOR", "1")
    (tmp_path / "manifests").mkdir()
    copy_evalscripts(tmp_path / "manifests")
    return tmp_path.name[-10:].lower().replace("_", "-").strip("-")


def write(folder, name: str, example: str = "corsica-max-ndvi", **replace: str) -> None:
    """An example as manifests/NAME.yaml, renamed, with `replace` ({old line: new line}) applied."""
    text = (EXAMPLES / f"{example}.yaml").read_text().replace(f"name: {example}\n", f"name: {name}\n")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    (folder / "manifests" / f"{name}.yaml").write_text(text)


def rows(run_cli, *args: str) -> dict[str, dict]:
    code, out, err = run_cli("status", "--format", "json", *args)
    assert code == 0, out + err
    document = json.loads(out)
    assert document["formatVersion"] == 1 and all(set(job) == JOB_KEYS for job in document["jobs"])
    return {job["name"]: job for job in document["jobs"]}


def test_status_lists_manifests_whose_variables_are_unset(here, tmp_path, run_cli, monkeypatch):
    plain, deferred = f"env-desc-{here}", f"env-state-{here}"
    write(tmp_path, plain, **{"  description: Max NDVI over Corsica": "  description: ${env:STATUS_DESCRIPTION}",
                              "  state: started": "  state: created"})
    write(tmp_path, deferred, **{"  state: started": "  state: ${env:STATUS_STATE}"})  # valid only once resolved
    monkeypatch.setenv("STATUS_DESCRIPTION", "described")
    monkeypatch.setenv("STATUS_STATE", "created")
    assert run_cli("apply", "--auto-approve")[0] == 0
    monkeypatch.delenv("STATUS_DESCRIPTION")
    monkeypatch.delenv("STATUS_STATE")
    assert run_cli("plan")[0] == 1  # planning needs them: they decide what is sent

    code, out, err = run_cli("status")
    assert code == 0, out + err
    [plain_line] = [line for line in out.splitlines() if line.startswith(plain + " ")]
    [deferred_line] = [line for line in out.splitlines() if line.startswith(deferred + " ")]
    assert plain_line.split()[2:4] == ["created", "CREATED"] and re.search(r" \(needs env\) +CREATED ", deferred_line)
    assert "${env:…} variables are set" in out
    jobs = rows(run_cli)
    assert jobs[plain]["manifest"] == "loaded" and jobs[plain]["desiredState"] == "created"
    assert jobs[deferred]["manifest"] == "unresolved" and jobs[deferred]["desiredState"] is None
    assert jobs[deferred]["api"] == "v2" and jobs[deferred]["jobId"] and jobs[deferred]["status"] == "CREATED"


def test_status_json_costs_and_names(here, tmp_path, run_cli):
    v2, v1 = f"created-{here}", f"analysed-{here}"
    write(tmp_path, v2, **{"  state: started": "  state: created"})
    write(tmp_path, v1, "corsica-max-ndvi-v1", **{"  state: started": "  state: analysed"})
    code, out, err = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    assert code == 0, out + err

    jobs = rows(run_cli)
    assert jobs[v2]["status"] == "CREATED" and jobs[v2]["costPU"] is None  # never analysed: no 0.0
    assert (jobs[v2]["estimatePU"], jobs[v2]["estimateSource"]) == (112.3, "offline")  # the plan's figure
    assert jobs[v2]["lastAction"]["action"] == "create" and jobs[v2]["lastAction"]["result"] == "ok"
    assert jobs[v1]["status"] == "ANALYSIS_DONE" and jobs[v1]["costPU"] is None  # v1 reports no PU spent
    assert jobs[v1]["estimateSource"] == "service" and jobs[v1]["estimatePU"] > 0
    assert (jobs[v1]["percentDone"], jobs[v1]["tilesDone"], jobs[v1]["tilesTotal"]) == (0, 0, 66)

    code, out, _ = run_cli("status")
    header, *lines = out.splitlines()
    assert "PU SO FAR" in header and "ESTIMATE PU" in header
    assert any(line.startswith(v2 + " ") and " 112.3 offline " in line for line in lines)
    assert any(line.startswith(v1 + " ") and " service " in line for line in lines)

    assert set(rows(run_cli, v2)) == {v2}  # a NAME (no such path here) filters
    assert set(rows(run_cli, "manifests", v1)) == {v1}  # a PATH and a NAME
    assert set(rows(run_cli, "manifests")) == {v1, v2}  # an existing path is a path
    code, _, err = run_cli("status", "no-such-job")
    assert code == 1 and "no-such-job: no such file or folder, and no job of that name" in err
    code, _, err = run_cli("status", "no/such/dir")  # cannot be a name: a path, as before
    assert code == 1 and "no/such/dir: no such file or directory" in err

    (tmp_path / "manifests" / f"{v1}.yaml").unlink()
    code, out, _ = run_cli("status", v1)
    assert code == 0 and "(removed)  ANALYSIS_DONE" in out


def test_progress_of_processing_jobs_v2_from_its_percentage_v1_from_its_tiles(tmp_path, run_cli, own_sandbox):
    own_sandbox("--tile-seconds", "0.1", "--workers", "2")
    (tmp_path / "manifests").mkdir()
    copy_evalscripts(tmp_path / "manifests")
    write(tmp_path, "corsica-max-ndvi", **{"  policy:\n    maxCostPU: 5000\n": ""})  # started at once, not
    write(tmp_path, "corsica-max-ndvi-v1", "corsica-max-ndvi-v1", **{"    maxCostPU: 5000\n": ""})  # after analysis
    assert run_cli("apply", "--auto-approve")[0] == 0

    midway, deadline = {}, time.monotonic() + 60
    while len(midway) < 2:  # each seen part-way through (not necessarily at the same time)
        assert time.monotonic() < deadline, midway
        jobs = rows(run_cli)
        for name, job in jobs.items():
            if job["status"] == "PROCESSING" and 0 < (job["tilesDone"] or 0) < 66:
                midway.setdefault(name, job)
        assert len(midway) == 2 or any(job["status"] != "DONE" for job in jobs.values()), "never seen part-way"
        time.sleep(0.05)
    v2, v1 = midway["corsica-max-ndvi"], midway["corsica-max-ndvi-v1"]
    assert v2["tilesTotal"] == 66 and v2["tilesDone"] == round(v2["percentDone"] * 66 / 100)
    assert v2["costPU"] is not None and (v2["estimatePU"], v2["estimateSource"]) == (112.3, "offline")
    assert v1["tilesTotal"] == 66 and v1["percentDone"] == round(100 * v1["tilesDone"] / 66, 2)
    assert v1["costPU"] is None and v1["estimateSource"] == "service"
