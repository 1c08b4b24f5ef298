"""`reconciler status` against the sandbox: manifests whose variables are unset, the versioned
camelCase JSON, the two cost figures (PU so far, estimate; a v1 job's PU so far estimated), jobs
chosen by NAME beside PATHS (in --map mode too), jobs declared outside the paths read, and progress
while jobs process — v2 from its percentage and the offline tiles (all of them once DONE), v1 from
its tiles."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import EXAMPLES, copy_evalscripts

JOB_KEYS = {"name", "api", "manifest", "file", "desiredState", "jobId", "status", "percentDone", "tilesDone",
            "tilesTotal", "costPU", "costPUEstimated", "estimatePU", "estimateSource", "lastAction"}
SMALL_BBOX = "bbox: [9.0, 42.0, 9.05, 42.05]"  # a tile or two: processed in a moment


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


def test_finished_jobs_show_their_tiles_done_and_v1_an_estimate_of_pu_so_far(here, tmp_path, run_cli):
    v2, v1 = f"done-{here}", f"done-v1-{here}"
    small = {"bbox: [8.44, 41.31, 9.66, 43.1]": SMALL_BBOX}
    write(tmp_path, v2, **small, **{"  policy:\n    maxCostPU: 5000\n": ""})
    write(tmp_path, v1, "corsica-max-ndvi-v1", **small, **{"    maxCostPU: 5000\n": ""})
    code, out, err = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    assert code == 0, out + err

    jobs = rows(run_cli)
    assert jobs[v2]["status"] == "DONE" and jobs[v2]["tilesTotal"] and jobs[v2]["tilesDone"] == jobs[v2]["tilesTotal"]
    assert jobs[v2]["percentDone"] == 100 and jobs[v2]["costPU"] is not None and jobs[v2]["costPUEstimated"] is None
    assert jobs[v2]["file"] == f"manifests/{v2}.yaml" and jobs[v2]["estimatePU"] is None  # its costPU is what it cost
    assert jobs[v1]["status"] == "DONE" and jobs[v1]["tilesDone"] == jobs[v1]["tilesTotal"] > 0
    assert jobs[v1]["costPU"] is None and jobs[v1]["estimateSource"] == "service"  # v1 reports no spending
    assert jobs[v1]["costPUEstimated"] == round(jobs[v1]["estimatePU"], 1) > 0  # all its tiles: the whole estimate

    code, out, _ = run_cli("status")
    [v2_line] = [line for line in out.splitlines() if line.startswith(v2 + " ")]
    [v1_line] = [line for line in out.splitlines() if line.startswith(v1 + " ")]
    total = jobs[v2]["tilesTotal"]
    assert f" 100%      {total}/{total} " in v2_line and " est. " not in v2_line
    assert f" {jobs[v1]['costPUEstimated']:,.1f} est. " in v1_line and "est.: a v1 job's PU so far, estimated" in out

    code, out, err = run_cli("status", v2, "manifests", "--map", "tiles.geojson")  # a PATH beside the NAME
    assert code == 0 and out.startswith("Wrote tiles.geojson"), out + err
    code, _, err = run_cli("status", v2, "no/such/dir", "--map", "tiles.geojson")
    assert code == 1 and "no/such/dir: no such file or directory" in err
    code, _, err = run_cli("status", "manifests", "--map", "tiles.geojson")
    assert code == 1 and "--map needs exactly one job NAME" in err


def test_pu_so_far_of_a_v1_job_is_its_share_of_the_estimate():
    from reconciler.batch.live import LiveJob
    from reconciler.operations.status import _pu_estimated

    partial = LiveJob("id", "v1", "PARTIAL", None, {}, cost_pu=80.0, tile_count=66)
    assert _pu_estimated(partial, 25.0, 80.0, "service") == 20.0
    analysed = LiveJob("id", "v1", "ANALYSIS_DONE", None, {}, cost_pu=80.0, tile_count=66)
    assert _pu_estimated(analysed, 0.0, 80.0, "service") is None  # nothing processed yet: no figure, as for v2
    v2 = LiveJob("id", "v2", "PROCESSING", None, {}, cost_pu=12.0, completion=50.0)
    assert _pu_estimated(v2, 50.0, 112.3, "offline") is None  # v2 reports its spending


def test_a_job_declared_outside_the_paths_read_is_read_from_its_recorded_file(here, tmp_path, run_cli):
    name = f"elsewhere-{here}"
    (tmp_path / "jobs").mkdir()
    copy_evalscripts(tmp_path / "jobs")
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace("name: corsica-max-ndvi\n", f"name: {name}\n")
    (tmp_path / "jobs" / "job.yaml").write_text(text.replace("  state: started", "  state: created"))
    code, out, err = run_cli("apply", "--auto-approve", "jobs")
    assert code == 0, out + err

    [job] = rows(run_cli, name).values()  # the default paths (manifests/) do not declare it
    assert (job["manifest"], job["desiredState"], job["file"]) == ("loaded", "created", "jobs/job.yaml")
    assert (job["estimatePU"], job["estimateSource"]) == (112.3, "offline")  # priced from the file read
    code, out, _ = run_cli("status", name)
    assert code == 0 and re.search(rf"^{name} +v2 +created +CREATED ", out, re.M) and "(removed)" not in out
    assert f"read from the file the lockfile records: {name} (jobs/job.yaml)" in out

    (tmp_path / "jobs" / "job.yaml").write_text(text.replace("  state: started", "  state: sideways"))
    [job] = rows(run_cli, name).values()
    assert (job["manifest"], job["desiredState"], job["file"]) == ("unreadable", None, "jobs/job.yaml")
    code, out, _ = run_cli("status", name)
    assert code == 0 and re.search(rf"^{name} +v2 +\(not read\) +CREATED ", out, re.M)
    assert f"{name}: declared in jobs/job.yaml, not read here: it has errors" in out

    (tmp_path / "jobs" / "job.yaml").write_text(text.replace(f"name: {name}\n", "name: another\n"))
    assert rows(run_cli, name)[name]["manifest"] == "removed"  # the file no longer declares it
    (tmp_path / "jobs" / "job.yaml").unlink()
    assert rows(run_cli, name)[name]["manifest"] == "removed"
