"""The polling triggers over real HTTP against the emulator, in an asyncio loop as the
triggerer runs them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.triggers.base import (
    BatchInferenceJobTrigger,
    DatasetTrigger,
    DeploymentTrigger,
    FinetuningJobTrigger,
    PredibasePollingTrigger,
)
from tests.taskkit import STUCK_PROFILE, needs_trigger_on_kill, upload

ROWS = [{"prompt": "a b c", "completion": "x"}, {"prompt": "d e f", "completion": "y"}]


@pytest.fixture
def job_id(client: Any) -> str:
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    return str(job.id)


def trigger(job_id: str, **kwargs: Any) -> FinetuningJobTrigger:
    params: dict[str, Any] = {"poll_interval": 0.05, "first_poll_delay": 0.0}
    params.update(kwargs)
    return FinetuningJobTrigger(resource_id=job_id, **params)


async def first_event(t: PredibasePollingTrigger) -> dict[str, Any]:
    async for event in t.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("no event")


@pytest.mark.parametrize(
    "cls", [FinetuningJobTrigger, BatchInferenceJobTrigger, DeploymentTrigger, DatasetTrigger]
)
def test_serialize_round_trips_with_json_scalars_only(cls: type[PredibasePollingTrigger]):
    original = cls(resource_id="x", predibase_conn_id="c", poll_interval=7, deadline=123.5)
    classpath, kwargs = original.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert all(v is None or isinstance(v, str | int | float | bool) for v in kwargs.values())
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


async def test_trigger_yields_success_for_a_completed_job(emulator: Any, job_id: str):
    event = await first_event(trigger(job_id))
    assert event["status"] == "success"
    assert event["remote_status"] == "completed"
    # The triggerer logs each event: it carries the status, not the whole job.
    assert event["resource"] is None
    assert len(json.dumps(event)) < 300
    assert emulator.token not in json.dumps(event)


async def test_transient_faults_do_not_end_the_wait(emulator: Any, job_id: str):
    emulator.admin.add_fault(
        "status", method="GET", path="/v2/finetuning/jobs/*", count=3, status=503, retry_after=0
    )
    emulator.admin.add_fault(
        "non_json", method="GET", path="/v2/finetuning/jobs/*", count=2, status=502
    )
    event = await first_event(trigger(job_id, max_consecutive_errors=20))
    assert event["status"] == "success"


async def test_a_run_of_failures_past_the_bound_ends_with_a_clear_event(emulator, job_id):
    emulator.admin.add_fault(
        "status", method="GET", path="/v2/finetuning/jobs/*", count=100, status=500
    )
    event = await first_event(trigger(job_id, max_consecutive_errors=2))
    assert event["status"] == "failed"
    assert "2 times in a row" in event["message"]


async def test_deadline_yields_timeout(emulator: Any, job_id: str):
    import time

    emulator.admin.set_profile(STUCK_PROFILE)
    event = await first_event(trigger(job_id, deadline=time.time() + 0.3))
    assert event["status"] == "timeout"


@needs_trigger_on_kill
async def test_on_kill_cancels_the_job(emulator: Any, client: Any, job_id: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    await trigger(job_id).on_kill()
    assert client.get_finetuning_job(job_id).status in ("stopping", "canceled")


@needs_trigger_on_kill
async def test_on_kill_leaves_the_job_alone_when_told_to(emulator, client: Any, job_id: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    await trigger(job_id, cancel_on_kill=False).on_kill()
    assert not client.get_finetuning_job(job_id).status.is_terminal
    assert client.get_finetuning_job(job_id).status != "stopping"


async def test_missing_job_fails_at_once(emulator: Any):
    event = await first_event(trigger("no-such-job"))
    assert event["status"] == "failed"
    assert "no-such-job" in event["message"]


@needs_trigger_on_kill
@pytest.mark.parametrize(
    ("task_state", "cancelled"),
    [("failed", True), ("success", True), (None, False), ("scheduled", False), ("deferred", False)],
)
async def test_on_kill_cancels_only_when_the_task_is_finished(
    emulator: Any, client: Any, job_id: str, monkeypatch, task_state, cancelled: bool
):
    """A clear re-queues the task (its next try re-attaches), and a stale triggerer's copy
    is killed while the task still waits elsewhere: neither may cancel the job."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    emulator.admin.set_profile(STUCK_PROFILE)
    asked: list[dict[str, Any]] = []

    def get_task_states(**query: Any) -> dict[str, Any]:  # Airflow's supervisor seam
        asked.append(query)
        return {"run_1": {"finetune": task_state}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(get_task_states))
    t = trigger(job_id)
    t.task_instance = SimpleNamespace(
        dag_id="dag", task_id="finetune", run_id="run_1", map_index=-1
    )
    await t.on_kill()
    assert asked == [
        {"dag_id": "dag", "map_index": -1, "task_ids": ["finetune"], "run_ids": ["run_1"]}
    ]
    status = client.get_finetuning_job(job_id).status
    assert (status in ("stopping", "canceled")) is cancelled


async def test_a_slow_poll_cannot_carry_the_wait_past_the_deadline(emulator: Any, job_id: str):
    import time

    emulator.admin.set_profile(STUCK_PROFILE)
    emulator.admin.add_fault("slow", method="GET", path="/v2/finetuning/jobs/*", delay=20)
    event = await first_event(trigger(job_id, deadline=time.time() + 0.5))
    assert event["status"] == "timeout"
    # Cut off mid-poll: the 20 s answer (status "training") was never waited for.
    assert event["remote_status"] is None
