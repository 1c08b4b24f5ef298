"""The sandbox's job store: the index of jobs the worker must look at follows every save, also
across a restart from the SQLite file."""

from __future__ import annotations

from reconciler.sandbox.jobs import Job
from reconciler.sandbox.store import SandboxState


def job(sequence: int, status: str = "CREATED") -> Job:
    return Job(id=f"job-{sequence}", api="v2", request={}, created=0.0, sequence=sequence, status=status)


def test_only_analysing_and_processing_jobs_are_active_in_creation_order(tmp_path):
    state = SandboxState(tmp_path)
    first, second, third = job(1), job(2), job(3, "DONE")
    for j in (first, second, third):
        state.add(j)
    assert state.active() == []
    second.status = "ANALYSING"
    state.save(second)
    first.status = "PROCESSING"
    state.save(first)
    assert [j.id for j in state.active()] == ["job-1", "job-2"]
    first.status = "DONE"
    state.save(first)
    state.remove("job-2")
    assert state.active() == []
    third.status = "PROCESSING"
    state.save(third)
    state.close()
    reopened = SandboxState(tmp_path)
    assert [j.id for j in reopened.active()] == ["job-3"]
    reopened.close()


def test_saving_a_job_that_is_not_stored_indexes_nothing():
    state = SandboxState()
    stray = job(1, "PROCESSING")
    state.save(stray)
    assert state.active() == [] and state.get("job-1") is None
