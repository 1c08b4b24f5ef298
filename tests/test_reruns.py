"""Re-runs that pay only for what is missing (DESIGN §4), against a sandbox whose tiles fail: a
FAILED v2 job is re-run up to maxRestarts times, never blocked by the reconciler's own re-run
settings; each re-run writes where the failed run wrote, so skipExisting skips the tiles done and
the service charges a fraction of the first run; the plan's estimate is within 25 % of the charge."""

from __future__ import annotations

import json

import pytest

from tests.conftest import example_job


@pytest.fixture(params=[("0.1", 1), ("0.03", 2)], ids=["threshold-10%", "threshold-3%"])
def failing(request, own_sandbox):
    """A sandbox where 30 % of tile runs fail; a v2 job FAILS above the threshold of failed tiles.
    At 3 % the first re-run fails too, so re-runs of re-runs are exercised."""
    threshold, least_reruns = request.param
    sandbox = own_sandbox("--speed", "20", "--tile-failure-rate", "0.3", "--v2-failure-threshold", threshold,
                          "--random-seed", "11")
    sandbox.least_reruns = least_reruns
    return sandbox


def test_a_failed_job_is_rerun_where_it_wrote_for_the_tiles_left(failing, tmp_path, run_cli):
    example_job(tmp_path, "    maxRestarts: 3\n")  # with the default delivery layout
    http = failing.http()

    def tasks() -> list[dict]:
        return sorted(http.get("/api/v2/batch/process").json()["data"], key=lambda t: t["created"])

    code, out, _ = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    [first] = tasks()
    assert first["status"] == "FAILED" and code == 1, out  # did not reach spec.state: exit 1
    reruns = 0
    while tasks()[-1]["status"] == "FAILED":
        code, out, _ = run_cli("plan", "--format", "json", "--detailed-exitcode")
        [action] = json.loads(out)["actions"]
        assert action["kind"] == "replace" and code == 2, out  # never blocked by its own re-run settings
        assert json.loads(out)["warnings"] == []  # the failed runs are predecessors, not duplicates
        assert action["overrides"]["output.skipExisting"] is True
        assert action["overrides"]["output.delivery.s3.url"].startswith(f"s3://reconciler-demo-results/corsica-max-ndvi/{first['id']}/")
        estimate = action["costPU"]
        run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
        reruns += 1
        charged = tasks()[-1]["costPU"]
        assert charged < first["costPU"] / 2, (charged, first["costPU"])  # skipExisting found the tiles done
        assert abs(estimate - charged) <= 0.25 * charged, (estimate, charged)
        assert reruns <= 3
    assert tasks()[-1]["status"] == "DONE" and failing.least_reruns <= reruns <= 3
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code == 0, out
