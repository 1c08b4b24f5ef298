"""The reduction of each live job as its page arrives (engine/reduce.py): a plan made from reduced
jobs is the plan made from the full ones, on every golden case and on sensitive, re-run, changed
and foreign jobs; a request that echoes its manifest is not kept, one that differs is (the plan
shows the difference), and an unmanaged job keeps none."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from reconciler.engine.estimate import Estimator
from reconciler.engine.plan import PlanOptions, plan
from reconciler.engine.reduce import Reducer
from reconciler.manifests.loader import load
from reconciler.state.model import Lockfile
from tests.test_engine_plan import V2_REQUEST, live, manifest, record
from tests.test_render_plan import CASES, ENVIRON, GOLDEN, estimate, live_jobs


def planned(manifests, jobs, lockfile, **options):
    return plan(manifests, jobs, lockfile, PlanOptions(**options), estimate, Estimator().card)


@pytest.mark.parametrize("case", CASES)
def test_a_plan_of_reduced_jobs_is_the_plan_of_the_full_ones(case):
    folder = GOLDEN / case
    options = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    manifests = load([folder / "manifests"], resolve_env=True, environ=ENVIRON).manifests
    lockfile = Lockfile.model_validate_json((folder / "lockfile.json").read_text(encoding="utf-8"))
    full = live_jobs(folder / "live.json")
    reduced = [Reducer(manifests, lockfile.jobs)(job) for job in full]
    allow = options.get("allowReplace", False)
    assert planned(manifests, reduced, lockfile, allow_replace=allow) == planned(manifests, full, lockfile,
                                                                                   allow_replace=allow)
    if case in ("converged", "lifecycle", "mixed"):  # cases where some jobs echo their manifests exactly
        assert any(job.request is None for job in reduced)  # something was dropped, or the test proves nothing


def test_an_echo_is_reduced_to_its_digest_a_difference_keeps_its_request_and_unmanaged_jobs_keep_none(tmp_path):
    same = manifest(tmp_path, name="same")
    changed = manifest(tmp_path, name="changed")
    edited = copy.deepcopy(V2_REQUEST)
    edited["input"]["resolution"] = 120
    jobs = [live(name="same", job_id="id-same", request={**copy.deepcopy(same.body), "description": "x"}),
            live(name="changed", job_id="id-changed", request=edited),
            live(name=None, job_id="id-stranger", description="someone else's")]
    reduce = Reducer([same, changed], {})
    kept = {job.id: reduce(job) for job in jobs}
    assert kept["id-same"].request is None and kept["id-same"].digest == same.desired[0]
    assert kept["id-changed"].request == edited and kept["id-changed"].digest != changed.desired[0]
    assert kept["id-stranger"].request is None and kept["id-stranger"].digest is None
    lock = Lockfile(lineage="lineage")
    assert planned([same, changed], list(kept.values()), lock) == planned([same, changed], jobs, lock)


def test_recorded_sensitive_paths_reruns_and_removed_jobs_reduce_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKET_URL", "s3://secret-bucket/prefix")
    path = tmp_path / "secret.yaml"
    path.write_text(json.dumps({"apiVersion": "reconciler/v1", "kind": "BatchJob", "metadata": {"name": "secret"},
                                "spec": {"request": {**V2_REQUEST, "output": {"type": "raster", "delivery": {
                                    "s3": {"url": "${env:BUCKET_URL}"}}}}, "policy": {"maxRestarts": 2}}}))
    [secret] = load([path], resolve_env=True).manifests
    plain = manifest(tmp_path, name="plain", policy={"maxRestarts": 2})
    rerun_body = copy.deepcopy(plain.body)
    rerun_body["output"]["skipExisting"] = True
    rerun_body["output"]["delivery"]["s3"]["url"] = "s3://bucket/prefix/first/<tileName>/<outputId>.<format>"
    jobs = [live(name="secret", job_id="id-secret", request=copy.deepcopy(secret.body)),
            live(name="plain", job_id="id-plain", status="PROCESSING", request=rerun_body),
            live(name="gone", job_id="id-gone", status="PROCESSING")]
    records = {"secret": replace(record(secret, job_id="id-secret"), sensitivePaths=[["input", "id"]]),
               "plain": replace(record(plain, job_id="id-plain", status="PROCESSING", restarts=1),
                                rerunOf="first"),
               "gone": record(job_id="id-gone", status="PROCESSING", on_remove="stop")}
    lock = Lockfile(lineage="lineage", jobs=records)
    reduced = [Reducer([secret, plain], records)(job) for job in jobs]
    assert planned([secret, plain], reduced, lock) == planned([secret, plain], jobs, lock)
    assert all(job.request is None for job in reduced)  # each echoes its manifest (or is gone from it)
    assert [(a.name, a.kind.word) for a in planned([secret, plain], reduced, lock).actions] == [
        ("gone", "forget"), ("plain", "wait"), ("secret", "update"), ("secret", "start")]


def test_manifests_and_reduced_jobs_with_nothing_sensitive_share_one_empty_set(tmp_path):
    """A plan holds one set of hidden paths per manifest and per live job: where there are none, it
    is the one shared empty set (an empty frozenset is 216 bytes, and CPython makes one each time)."""
    from reconciler.manifests.manifest import NOT_SENSITIVE

    first, second = manifest(tmp_path, name="first"), manifest(tmp_path, name="second")
    assert first.sensitive is NOT_SENSITIVE and second.sensitive is NOT_SENSITIVE
    assert first.sent_sensitive is NOT_SENSITIVE
    reduce = Reducer([first, second], {"first": record(first, job_id="id-first")})
    for name in ("first", "second"):
        job = reduce(live(name=name, job_id=f"id-{name}", request=copy.deepcopy(first.body)))
        assert job.hidden is NOT_SENSITIVE
