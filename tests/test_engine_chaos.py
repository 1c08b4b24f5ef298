"""Fault tolerance of apply against the sandbox: 20 % injected 5xx (some after the write took
effect) and a rate limit still converge without duplicates. The helpers here also serve
`make chaos` (bench/chaos.py), which kills applies at random points: minutes of work, kept out of
`make test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.engine.identity import owner
from reconciler.settings import api_settings
from reconciler.state.operations import open_state
from tests.conftest import EXAMPLES, SandboxProcess, copy_evalscripts

SMALL_BBOX = "bbox: [9.0, 42.0, 9.05, 42.05]"  # one tile of grid 0: jobs finish in a moment


def write_manifests(folder, prefix: str) -> list[str]:
    """Three jobs of one tile each, wanting created, analysed and started (one of them with a budget)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace("bbox: [8.44, 41.31, 9.66, 43.1]", SMALL_BBOX)
    copy_evalscripts(folder)
    names = []
    for state, budget in (("created", False), ("analysed", False), ("started", True), ("started", False)):
        name = f"{prefix}-{state}{'-budget' if budget else ''}"
        text = source.replace("name: corsica-max-ndvi", f"name: {name}").replace("state: started", f"state: {state}")
        if not budget:
            text = text.replace("  policy:\n    maxCostPU: 5000\n", "")
        (folder / f"{name}.yaml").write_text(text)
        names.append(name)
    return names


def reconciler(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def marked_jobs(env: dict) -> dict[str, list]:
    """Live jobs (v1 and v2) by the name in their ownership marker."""
    found: dict[str, list] = {}
    with BatchClient(api_settings(env)) as client:
        for api in ("v1", "v2"):
            for job in JobsApi(client, api).list_jobs():
                if (name := owner(job.description)) is not None:
                    found.setdefault(name, []).append(job)
    return found


def marked(env: dict) -> dict[str, list[str]]:
    return {name: [job.id for job in jobs] for name, jobs in marked_jobs(env).items()}


def assert_exactly_one_each(env: dict, state_url: str, names: list[str]) -> None:
    live = marked(env)
    saved = dict(os.environ)
    os.environ.update(env)  # the lockfile is on the sandbox's S3
    try:
        records = open_state(state_url).read().lockfile.jobs
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for name in names:
        assert len(live.get(name, [])) == 1, (name, live.get(name))  # no duplicate, none lost
        assert records[name].id == live[name][0], name  # and the lockfile knows it


def apply_seconds(sandbox_env: dict, folder) -> float:
    """How long one apply of `write_manifests`' jobs takes here, start-up included, uninterrupted:
    kills are spread over that span, so that most land mid-run however fast this machine is."""
    names = write_manifests(folder / "manifests", "calibrate")
    env = {**os.environ, **sandbox_env, "RECONCILER_STATE": "s3://reconciler-state/chaos/calibrate.json", "NO_COLOR": "1"}
    start = time.perf_counter()
    out, err = reconciler(env, "apply", "--auto-approve", "--wait", "--poll-interval", "50ms",
                          cwd=folder).communicate(timeout=120)
    seconds = time.perf_counter() - start
    assert set(names) <= set(marked(sandbox_env)), f"{out}\n{err}"
    return seconds


def test_faults_still_converge_without_duplicates(tmp_path):
    hostile = SandboxProcess(tmp_path / "sandbox", "--speed", "20", "--error-rate", "0.2", "--lost-response-rate", "0.1",
                             "--rate-limit", "20", "--random-seed", "5")
    try:
        names = write_manifests(tmp_path / "manifests", "faults")
        state_url = "s3://reconciler-state/chaos/faults.json"
        env = {**os.environ, **hostile.env, "RECONCILER_STATE": state_url, "NO_COLOR": "1"}
        for _ in range(8):
            run = reconciler(env, "apply", "--auto-approve", "--wait", "--poll-interval", "100ms", cwd=tmp_path)
            run.communicate(timeout=300)
            check = reconciler(env, "plan", "--detailed-exitcode", cwd=tmp_path)
            out, err = check.communicate(timeout=120)
            if check.returncode == 0:
                break
        assert check.returncode == 0, out + err
        assert_exactly_one_each(hostile.env, state_url, names)
        stats = json.loads(subprocess.run(["curl", "-s", hostile.env["SH_BASE_URL"] + "/sandbox/stats"],
                                          capture_output=True, text=True).stdout or "{}")
        assert stats.get("jobs", 0) == len(names)  # nothing created twice, even where an answer was lost
    finally:
        hostile.stop()
