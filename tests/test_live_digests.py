"""The digests of live requests that matched their manifest, kept between plans: used only for the
same v2 job at the same lastUpdated, never for v1, and a kept digest never hides a manifest's change."""

from __future__ import annotations

import marshal
from datetime import datetime, timedelta, timezone

import pytest

from reconciler.api.digests import LiveDigests
from reconciler.api.jobs import LiveJob
from tests.conftest import rename_examples

BASE = "https://services.example.test"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def job(job_id: str, api: str = "v2", updated: datetime | None = T0) -> LiveJob:
    return LiveJob(id=job_id, api=api, status="DONE", description=None, request={}, last_updated=updated)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(folder))
    return folder


def test_a_kept_digest_is_known_while_the_job_is_not_updated(cache_dir):
    live = [job("a"), job("b"), job("old-v1", api="v1"), job("no-stamp", updated=None)]
    LiveDigests.open(BASE).save(live, {"a": "digest-a", "old-v1": "digest-v1", "no-stamp": "digest-x"})
    assert LiveDigests.open(BASE).known(live) == {"a": "digest-a"}  # v1 and jobs without lastUpdated are not kept
    assert LiveDigests.open(BASE).known([job("a", updated=T0 + timedelta(seconds=1))]) == {}
    assert LiveDigests.open("http://127.0.0.1:1").known(live) == {}  # another service, another file
    assert [p.name.startswith("live-") for p in cache_dir.iterdir()] == [True]


def test_saving_keeps_unplanned_jobs_and_drops_gone_or_updated_ones(cache_dir):
    LiveDigests.open(BASE).save([job("a"), job("b"), job("c")], {"a": "1", "b": "2", "c": "3"})
    later = T0 + timedelta(minutes=5)
    # a plan of --target a: b was not planned (kept), c is gone (dropped), a was updated and matched again
    LiveDigests.open(BASE).save([job("a", updated=later), job("b")], {"a": "1b"})
    assert LiveDigests.open(BASE).known([job("a", updated=later), job("b"), job("c")]) == {"a": "1b", "b": "2"}
    LiveDigests.open(BASE).save([job("a", updated=later + timedelta(seconds=1)), job("b")], {})
    assert LiveDigests.open(BASE).known([job("a", updated=later), job("b")]) == {"b": "2"}


def test_a_missing_damaged_or_foreign_file_is_an_empty_cache(cache_dir, monkeypatch):
    kept = LiveDigests.open(BASE)
    kept.save([job("a")], {"a": "1"})
    assert kept.path.exists()
    kept.path.write_bytes(b"\x00not marshal")
    assert LiveDigests.open(BASE).known([job("a")]) == {}
    kept.path.write_bytes(marshal.dumps((1, "other code", {"a": (T0.isoformat(), "1")})))
    assert LiveDigests.open(BASE).known([job("a")]) == {}
    monkeypatch.setenv("RECONCILER_CACHE_DIR", "off")
    off = LiveDigests.open(BASE)
    off.save([job("a")], {"a": "1"})
    assert off.path is None and off.known([job("a")]) == {}


def test_plans_keep_the_digests_and_still_see_a_changed_manifest(workspace, run_cli, sandbox, cache_dir):
    rename_examples(workspace, workspace.name[-10:].lower().replace("_", "-").strip("-"))
    code, out, err = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    assert code == 0, out + err
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    [path] = cache_dir.glob("live-*.marshal")
    kept = marshal.loads(path.read_bytes())[2]
    assert len(kept) == 3  # the three v2 examples, all matched (the other two are v1)

    target = workspace / "manifests" / "corsica-max-ndvi.yaml"
    target.write_text(target.read_text().replace("maxCloudCoverage: 70.0", "maxCloudCoverage: 40"))
    code, out, _ = run_cli("plan", "--detailed-exitcode")
    assert code == 2 and "maxCloudCoverage" in out and "70" in out and "40" in out, out
    assert marshal.loads(path.read_bytes())[2] == kept  # the changed job keeps the digest of its live request, which did not change
