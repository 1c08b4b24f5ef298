"""An apply whose lease is broken while it runs (force-unlock elsewhere) notices within one heartbeat
interval, starts nothing more, leaves its journal for the next holder (folding it in could count
another run's entries as folded) and exits 3 saying so (DESIGN §3, §5). Against a sandbox on a
manual clock, so the job waits for its analysis exactly as long as the test says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.conftest import example_job
from tests.test_engine_chaos import marked_jobs


def test_an_apply_that_loses_its_lease_starts_nothing_more_and_exits_3(own_sandbox, tmp_path, monkeypatch, run_cli):
    sandbox = own_sandbox("--manual-clock")
    monkeypatch.chdir(tmp_path)
    name = "lease-lost-" + tmp_path.name[-6:].lower().replace("_", "-").strip("-")
    job = example_job(tmp_path, "    maxCostPU: 100000\n")  # started within budget: waits for the service's estimate
    job.write_text(job.read_text().replace("name: corsica-max-ndvi", f"name: {name}"))
    state = f"s3://reconciler-state/{tmp_path.name}/state.json"
    env = {**os.environ, **sandbox.env, "RECONCILER_STATE": state, "NO_COLOR": "1"}
    apply = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--wait", "--lease-ttl", "3s",
                              "--poll-interval", "100ms"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not [j for j in marked_jobs(sandbox.env).get(name, []) if j.status == "ANALYSING"]:
            assert apply.poll() is None and time.monotonic() < deadline, apply.communicate()
            time.sleep(0.1)
        lease = json.loads(sandbox.s3().get_object(Bucket="reconciler-state", Key=f"{tmp_path.name}/state.json.lease")
                           ["Body"].read())
        monkeypatch.setenv("RECONCILER_STATE", state)
        assert run_cli("force-unlock", lease["id"])[0] == 0
        broken = time.monotonic()
        out, err = apply.communicate(timeout=30)
        noticed = time.monotonic() - broken
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode == 3, out + err
    assert f"the lease {lease['id']} was lost" in err and "nothing more was started" in err and "Traceback" not in err
    assert noticed < 1.0 + 5.0  # one heartbeat (ttl/3), and time for a loaded machine to poll and exit

    sandbox.advance(3600)  # the analysis ends: the run that lost its lease must not start the job now
    [live] = marked_jobs(sandbox.env)[name]
    assert live.status == "ANALYSIS_DONE"
    code, out, err = run_cli("apply", "--auto-approve")  # the next holder folds the journal in: no second create
    assert code == 0, out + err
    assert [j.id for j in marked_jobs(sandbox.env)[name]] == [live.id]
    assert json.loads(run_cli("state", "pull")[1])["jobs"][name]["id"] == live.id
