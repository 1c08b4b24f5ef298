"""The v1 client and `JobsApi` against the sandbox over real HTTP: the v1 lifecycle with its tiles,
cancel, restartpartial (refused outside PARTIAL, re-processing failed tiles inside it), delete,
and one listing of live jobs per API version."""

from __future__ import annotations

import time

import pytest

from reconciler.api.client import BatchClient
from reconciler.api.errors import BadRequest, NotFound
from reconciler.api.jobs import JobsApi, UnsupportedAction
from reconciler.batch.models import v1
from tests.conftest import SandboxProcess
from tests.test_client_sandbox import client_for
from tests.test_sandbox_v2 import example_body

CORSICA_TILES = 66  # the Corsica bbox on grid 0 (see test_geo_tiles)


def wait(client: BatchClient, request_id: str, statuses: set[str], timeout: float = 60) -> v1.BatchRequest:
    deadline = time.monotonic() + timeout
    while (found := client.v1.get(request_id)).status.value not in statuses:
        assert time.monotonic() < deadline, found.status
        time.sleep(0.05)
    return found


def test_create_analyse_tiles_start_done(sandbox):
    with client_for(sandbox) as client:
        created = client.v1.create(example_body("corsica-max-ndvi-v1", "v1 lifecycle"))
        assert created.status is v1.RequestStatus.CREATED and created.description == "v1 lifecycle"
        assert created.bucketName == "reconciler-demo-results"
        client.v1.analyse(created.id)
        analysed = wait(client, created.id, {"ANALYSIS_DONE"})
        assert analysed.tileCount == CORSICA_TILES and analysed.valueEstimate and analysed.valueEstimate > 0
        tiles = list(client.v1.iter_tiles(created.id, page_size=25))  # three pages
        assert len({t.id for t in tiles}) == CORSICA_TILES and {t.status for t in tiles} == {v1.TileStatus.PENDING}
        client.v1.start(created.id)
        done = wait(client, created.id, {"DONE", "PARTIAL", "FAILED"})
        assert done.status is v1.RequestStatus.DONE
        processed = list(client.v1.iter_tiles(created.id, status=v1.TileStatus.PROCESSED))
        assert len(processed) == CORSICA_TILES and list(client.v1.iter_tiles(created.id, status="FAILED")) == []
        one = client.v1.get_tile(created.id, processed[0].id)
        assert one.status is v1.TileStatus.PROCESSED and one.cost and one.cost > 0
        with pytest.raises(BadRequest, match="PARTIAL"):
            client.v1.restart_partial(created.id)


def test_update_cancel_and_delete(sandbox):
    with client_for(sandbox) as client:
        created = client.v1.create(example_body("corsica-max-ndvi-v1", "to be cancelled"))
        assert client.v1.update_description(created.id, "renamed").description == "renamed"
        client.v1.cancel(created.id)
        assert client.v1.get(created.id).status is v1.RequestStatus.CANCELED
        with pytest.raises(BadRequest):
            client.v1.start(created.id)
        client.v1.delete(created.id)
        with pytest.raises(NotFound):
            client.v1.get(created.id)
        with pytest.raises(NotFound):
            client.v1.delete(created.id)


def test_restart_partial_reprocesses_the_failed_tiles(tmp_path):
    # Failures are drawn per job id (a fresh uuid) and attempt, so runs differ: at 15% some of the
    # 66 tiles fail the first time (all but certainly), and ten restarts all but certainly clear them.
    flaky = SandboxProcess(tmp_path, "--speed", "10", "--tile-failure-rate", "0.15")
    try:
        with client_for(flaky) as client:
            jobs = JobsApi(client, "v1")
            job = jobs.create(example_body("corsica-max-ndvi-v1", "flaky tiles"))
            jobs.start(job.id)
            status = wait(client, job.id, {"DONE", "PARTIAL", "FAILED"}).status.value
            restarts = 0
            while status == "PARTIAL" and restarts < 10:
                failed = list(jobs.tiles(job.id, status="FAILED"))
                assert 0 < len(failed) < CORSICA_TILES
                jobs.restart(job.id)
                restarts += 1
                status = wait(client, job.id, {"DONE", "PARTIAL", "FAILED"}).status.value
            assert restarts >= 1 and status == "DONE"
            assert jobs.get(job.id).tile_count == CORSICA_TILES
    finally:
        assert flaky.stop() == 0


def test_jobs_api_lists_live_jobs_of_both_versions(sandbox):
    marker = f"[reconciler:jobs-{time.time_ns()}]"
    with client_for(sandbox) as client:
        v2_ids = [JobsApi(client, "v2").create(example_body("corsica-max-ndvi", f"v2 {i} {marker}")).id
                  for i in range(2)]
        v1_ids = [JobsApi(client, "v1").create(example_body("corsica-max-ndvi-v1", f"v1 {i} {marker}")).id
                  for i in range(3)]
        listed = {api: list(JobsApi(client, api).list_jobs(search=marker)) for api in ("v1", "v2")}
        assert [j.id for j in listed["v2"]] == v2_ids and [j.id for j in listed["v1"]] == v1_ids
        for api, found in listed.items():
            assert {(j.api, j.status) for j in found} == {(api, "CREATED")}
            assert all(j.description and j.description.endswith(marker) for j in found)
        v1_job, v2_job = listed["v1"][0], listed["v2"][0]
        assert v1_job.request == example_body("corsica-max-ndvi-v1", f"v1 0 {marker}")  # the body, echoed
        assert v2_job.request["description"] == f"v2 0 {marker}" and v2_job.completion == 0
        JobsApi(client, "v1").update_description(v1_job.id, f"renamed {marker}")
        assert JobsApi(client, "v1").get(v1_job.id).description == f"renamed {marker}"
        with pytest.raises(UnsupportedAction):
            JobsApi(client, "v2").delete(v2_job.id)
